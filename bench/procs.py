"""Run a whole process and measure it: wall time, peak resident memory (from wait4), exit code, output."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

VM = [sys.executable, "-m", "vmops.cli.main"]
DEFAULT_TIMEOUT_S = 300.0


class ProcFailed(RuntimeError):
    """A measured process exited non-zero or timed out (message: command, code, end of its stderr)."""


@dataclass(frozen=True)
class Run:
    wall_s: float
    max_rss_mib: float
    stdout: str
    stderr: str
    exit_code: int = 0


def run(cmd: list[str], env: dict[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
        check: bool = True) -> Run:
    """Run ``cmd`` to completion; kill its whole process group on timeout or Ctrl-C."""
    err_path = f"/tmp/vmops-bench-{os.getpid()}-{time.monotonic_ns()}.err"
    with open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True)
    try:
        out, _ = _communicate(p, timeout)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        p.returncode = code
    except BaseException:
        _kill(p)
        raise
    finally:
        try:
            err_text = open(err_path, errors="replace").read()
            os.unlink(err_path)
        except OSError:
            err_text = ""
    if check and code != 0:
        tail = "\n".join(err_text.splitlines()[-8:])
        raise ProcFailed(f"`{' '.join(_short(cmd))}` exited with {code}:\n{tail}")
    return Run(wall, usage.ru_maxrss / 1024, out.decode(errors="replace"), err_text, code)


def _communicate(p: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, None]:
    """Read stdout without reaping the child (so wait4 can still collect its resource usage)."""
    import selectors

    assert p.stdout is not None
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill(p)
            raise ProcFailed(f"`{' '.join(_short(p.args))}` did not finish within {timeout:g}s")  # type: ignore[arg-type]
        if sel.select(min(left, 1.0)):
            data = os.read(p.stdout.fileno(), 65536)
            if not data:
                break
            chunks.append(data)
    sel.close()
    p.stdout.close()
    return b"".join(chunks), None


def _kill(p: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(p.pid, 0)
    except ChildProcessError:
        pass


def _short(cmd: list[str]) -> list[str]:
    return ["vm" if c == "vmops.cli.main" else c for c in cmd if c not in (sys.executable, "-m")]


def median_wall(cmd: list[str], env: dict[str, str] | None, runs: int) -> tuple[float, list[float]]:
    samples = [run(cmd, env).wall_s for _ in range(runs)]
    return statistics.median(samples), samples
