"""Is a process still alive? Shared by the state store (fleet owners) and `vm sim` (the simulator host).
Standard library only, so the CLI can use it without importing anything heavy."""

from __future__ import annotations

import os
import socket


def pid_alive(pid: int | None, host: str | None = None) -> bool:
    """Is process ``pid`` (on ``host``, default this one) still running?

    Only decidable on this host: for another host the answer is "assume yes". A zombie child of this
    process counts as dead (it is reaped here).
    """
    if not pid:
        return False
    if host is not None and host != socket.gethostname():
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:  # not our child: kill(0) said it exists
        return True
