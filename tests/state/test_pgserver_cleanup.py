"""The suite's own PostgreSQL server never outlives the test process: pg_ctl daemonizes it, so a run killed by
a CI timeout (SIGKILL: no teardown runs) used to leave servers listening and temporary clusters behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MAKE = """
import sys
sys.path.insert(0, {root!r})
from tests.pgserver import PgCluster
c = PgCluster()
print(c.base, c.port, flush=True)
import time
time.sleep(600)
"""


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_killed_test_process_leaves_no_server_behind() -> None:
    root = str(Path(__file__).resolve().parents[2])
    p = subprocess.Popen([sys.executable, "-c", MAKE.format(root=root)], stdout=subprocess.PIPE, text=True)
    try:
        base, port = p.stdout.readline().split()  # type: ignore[union-attr]
        assert _listening(int(port)) and Path(base).exists()
    finally:
        os.kill(p.pid, signal.SIGKILL)  # as a CI timeout does: no teardown, no atexit
        p.wait()
    deadline = time.monotonic() + 30
    while (_listening(int(port)) or Path(base).exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(int(port)), f"the server on port {port} outlived its test process"
    assert not Path(base).exists(), f"{base} was left behind"
