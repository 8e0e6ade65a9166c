"""Test rig for the reliability scenarios: an in-process fleet manager with explicit timing, the fault mixes,
and the real `vm` program as a subprocess (the thing users run, and the thing a crash kills)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping

from vmops.config import Config, load_config
from vmops.fleet.manager import FleetManager
from vmops.fleet.spec import FleetSpec, Limits
from vmops.model import GpuShape
from vmops.providers.base import Timing
from vmops.session import Session
from vmops.sim.base import Simulator
from vmops.sim.common import Fault

from tests.cli.helpers import VM, Result
from tests.cli.helpers import vm as run_vm


#: A client deadline shorter than the slow answers of the ``latency`` faults below, so those are timeouts.
REQUEST_TIMEOUT = 0.5
SLOW = 0.7


def manager(config: Config, *, request_timeout: float = 5.0, op_timeout: float | None = None,
            env: Mapping[str, str] | None = None) -> FleetManager:
    """A fleet manager on the simulators with short retry delays (the retry *counts* stay the defaults)."""
    if env:
        from tests.conftest import config_env

        config = load_config({**config_env(config), **env})
    timing = Timing(poll_interval=config.poll_interval,
                    op_timeout=config.op_timeout if op_timeout is None else op_timeout,
                    retry_base_delay=0.01, retry_max_delay=0.05, request_timeout=request_timeout)
    return FleetManager(Session(config, timing=timing), limits=Limits(retry_delay=0.02))


def close(mgr: FleetManager) -> None:
    mgr.close()
    mgr.session.close()


def spec(gpu: str, count: int, name: str, **kw: object) -> FleetSpec:
    return FleetSpec(GpuShape.parse(gpu), count, name, **kw)  # type: ignore[arg-type]


def transient_faults(sims: Mapping[str, Simulator], rate: float = 0.20) -> None:
    """``rate`` of every provider call fails transiently, spread evenly over the kinds each wire has.

    REST: HTTP 500, 503, 429 with Retry-After, and an answer slower than the client's deadline (a timeout;
    for a create the change still lands after the client gave up). gRPC: UNAVAILABLE, INTERNAL,
    RESOURCE_EXHAUSTED (rate limited) and the same slow answer (DEADLINE_EXCEEDED). The rules are drawn
    independently, so each gets the share that makes the union ``rate``.
    """
    per = 1 - (1 - rate) ** (1 / 4)
    for name, sim in sims.items():
        if name == "nebius":
            kinds = [Fault("*", "error", grpc_code="UNAVAILABLE", rate=per),
                     Fault("*", "error", grpc_code="INTERNAL", rate=per),
                     Fault("*", "error", grpc_code="RESOURCE_EXHAUSTED", message="rate limit exceeded", rate=per)]
        else:
            kinds = [Fault("*", "error", status=500, rate=per),
                     Fault("*", "error", status=503, rate=per / 2),
                     Fault("*", "error", status=429, retry_after=1, rate=per / 2)]
        kinds.append(Fault("*", "latency", latency_s=SLOW, rate=per))
        for f in kinds:
            sim.faults.add(f)


# ---- the real `vm` program ---------------------------------------------------------------------------
def env_for(vm_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    full.update(vm_env)
    full.update(extra)
    return full


def vm(vm_env: Mapping[str, str], *args: str, timeout: float = 120) -> Result:
    """Run `vm ARGS` to completion with the simulators' environment (tests/cli/helpers.vm)."""
    return run_vm(list(args), {**vm_env}, timeout=timeout)


def start(vm_env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(VM + list(args), env=env_for(vm_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_until(cond: Callable[[], bool], timeout: float = 60.0, step: float = 0.002) -> bool:
    """Poll ``cond`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def kill(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` if the process still runs; wait for it; return its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.communicate(timeout=120)
    return proc.returncode


def state_path(vm_env: Mapping[str, str]) -> Path:
    return Path(vm_env["VMOPS_HOME"]) / "state.db"

