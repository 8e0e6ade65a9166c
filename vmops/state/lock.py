"""Per-fleet operation lock: an OS file lock under ``$VMOPS_HOME/locks``.

The kernel drops the lock when its process dies (also on SIGKILL), so a crashed ``fleet create`` never
leaves a stale lock behind and the next command can resume or reconcile at once.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from vmops.errors import StateError
from vmops.state.identity import hostname, operator


def refusal(fleet_name: str, pid: object, op: object, host: object) -> StateError:
    who = f"pid {pid}" + (f", operator {op}" if op else "") + (f", host {host}" if host else "")
    return StateError(f"fleet {fleet_name!r} is being worked on by another vm process ({who})",
                      hint="Wait for it to finish, or pick another --name")


class LockBase:
    """What every fleet lock does the same way from its own ``acquire``/``release`` (file or advisory lock)."""

    def acquire(self) -> "LockBase":
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def try_acquire(self) -> bool:
        try:
            self.acquire()
            return True
        except StateError:
            return False

    def __enter__(self) -> "LockBase":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class FleetLock(LockBase):
    """Held while one process creates, destroys or reconciles one fleet."""

    def __init__(self, home: Path, fleet_name: str) -> None:
        self.path = Path(home) / "locks" / f"{fleet_name}.lock"
        self._fd: int | None = None

    def acquire(self) -> "FleetLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StateError(f"cannot make the lock file {self.path} ({e.strerror or e})",
                             hint=f"vmops needs to write in {self.path.parent.parent} (VMOPS_HOME); "
                                  "check its permissions") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder: list[str] = []
            try:
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip().split("\n")
            except OSError:
                pass
            os.close(fd)
            pid, op, host = (holder + ["", "", ""])[:3]
            raise refusal(self.path.stem, pid or "?", op, host) from None
        os.ftruncate(fd, 0)  # the holder's label: pid, operator, host (one a line)
        os.pwrite(fd, f"{os.getpid()}\n{operator()}\n{hostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
