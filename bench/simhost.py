"""The three simulators as one real background process (``python -m vmops.sim.host``) for the benchmarks.

Ephemeral loopback ports, its own ``VMOPS_HOME`` in a temp dir, a scenario file; the environment for the
`vm` processes points at the ports it bound (like `inv demo`). The host is stopped (SIGTERM, then SIGKILL)
on exit, on an exception and on Ctrl-C: the process runs in its own session so a terminal Ctrl-C reaches
only the benchmark, whose ``finally`` stops it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from vmops.catalogue import PROVIDERS

START_TIMEOUT_S = 60.0

_LIVE: list["SimHost"] = []


class SimHostError(RuntimeError):
    """The simulator host did not come up (message says why, with the end of its log)."""


class SimHost:
    """One ``vmops.sim.host`` process; use as a context manager."""

    def __init__(self, scenario: dict[str, Any], *, scale: float = 1.0, label: str = "sims") -> None:
        self.scenario = scenario
        self.scale = scale
        self.label = label
        self.dir = Path(tempfile.mkdtemp(prefix=f"vmops-bench-{label}-"))
        self.home = self.dir / "home"
        self.home.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {}

    # ---- life cycle ------------------------------------------------------------------------------
    def start(self) -> "SimHost":
        scen = self.dir / "scenario.json"
        scen.write_text(json.dumps(self.scenario))
        state_file = self.dir / "sim.json"
        log = open(self.dir / "sim.log", "wb")
        cmd = [sys.executable, "-m", "vmops.sim.host", "--state-file", str(state_file), "--crusoe-port", "0",
               "--lambda-port", "0", "--nebius-port", "0", "--control-port", "0", "--scale", str(self.scale),
               "--scenario", str(scen)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"}, preexec_fn=_die_with_parent)
        log.close()
        _LIVE.append(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not state_file.exists():
            if self.proc.poll() is not None:
                raise SimHostError(f"simulator host exited with {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise SimHostError(f"simulator host did not start within {START_TIMEOUT_S:g}s: {tail}")
            time.sleep(0.05)
        self.state = json.loads(state_file.read_text())
        return self

    def stop(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
        if self in _LIVE:
            _LIVE.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)  # VMOPS_HOME, scenario, log: nothing is kept

    def __enter__(self) -> "SimHost":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join((self.dir / "sim.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- what clients need -----------------------------------------------------------------------
    @property
    def addresses(self) -> dict[str, str]:
        return dict(self.state["addresses"])

    def env(self, home: Path | None = None) -> dict[str, str]:
        """Environment for a `vm` process: VMOPS_HOME and every provider pointed at this host."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("VMOPS_CRUSOE_", "VMOPS_LAMBDA_", "VMOPS_NEBIUS_"))
               and k not in ("VMOPS_PROVIDERS", "VMOPS_POLL_INTERVAL", "VMOPS_OP_TIMEOUT", "VMOPS_DEBUG")}
        env["VMOPS_HOME"] = str(home or self.home)
        env["PYTHONWARNINGS"] = "ignore"
        for name, address in self.addresses.items():
            env[f"VMOPS_{name.upper()}_{PROVIDERS[name].url_var}"] = address
        return env

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.state["control"] + path, method=method, data=data)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def counts(self) -> dict[str, int]:
        """Total requests served so far, per provider."""
        return {n: int(s["requests"]["total"]) for n, s in self._control("GET", "/status").items()}

    def counts_and_mutating(self) -> tuple[dict[str, int], dict[str, int]]:
        """(total requests, mutating requests) served so far, per provider."""
        status = self._control("GET", "/status").items()
        return ({n: int(s["requests"]["total"]) for n, s in status},
                {n: int(s["requests"]["mutating"]) for n, s in status})

    def reset(self) -> None:
        self._control("POST", "/reset")

    def add_fault(self, provider: str, fault: dict[str, Any]) -> None:
        """Add a fault (vmops.sim.common.Fault fields) to one simulator, e.g. ``{"endpoint": "*", "kind": "hang"}``."""
        self._control("POST", f"/faults/{provider}", fault)

    def clear_faults(self, provider: str) -> None:
        """Drop that simulator's faults (calls held by a ``hang`` are let go)."""
        self._control("DELETE", f"/faults/{provider}")


def _die_with_parent() -> None:
    """Linux: the host gets SIGTERM (a clean shutdown) if the benchmark process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_all() -> None:
    for h in list(_LIVE):
        h.stop()
