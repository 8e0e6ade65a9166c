"""Adapters for either dialect, built the way `vm` builds them (environment -> Config -> get_provider), and the
names each dialect's simulator uses, so one test body runs against both (see tests/conftest.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import POLL, cloud_env, sim_env
from vmops.config import load_config
from vmops.providers import get_provider
from vmops.providers.base import Provider, Timing
from vmops.sim.common import Fault

TIMING = Timing(poll_interval=POLL, op_timeout=10, retry_base_delay=0.01)


@dataclass(frozen=True)
class World:
    """What one dialect's simulator offers, by role."""

    small: str  # a 1-GPU type with capacity in ``region`` and ``region2``
    big: str  # an 8-GPU type
    region: str
    region2: str
    seed_name: str


WORLDS: dict[tuple[str, str], World] = {
    ("crusoe", "reference"): World("h100.1x", "h100.8x", "us-west1", "us-east1", "gpu-worker-1"),
    ("crusoe", "cloud"): World("a100-80gb.1x", "h100-80gb-sxm-ib.8x", "us-northcentral1-a", "us-east1-a",
                               "gpu-worker-1"),
    ("lambda", "reference"): World("gpu_1x_a100", "gpu_8x_h100", "us-west-1", "us-east-1", "training-node-1"),
    ("lambda", "cloud"): World("gpu_1x_a100_sxm4", "gpu_8x_h100_sxm5", "us-west-1", "us-east-1", "training-node-1"),
}


def make_provider(name: str, dialect: str, sim: object, public_key: str, home: Path, timing: Timing = TIMING,
                  **env: str) -> Provider:
    variables = sim_env(home, {name: sim})
    if dialect == "cloud":
        variables.update(cloud_env({name: sim}, public_key))
    variables.update(env)
    config = load_config(variables)
    assert config.settings(name).dialect == dialect
    return get_provider(name, config, timing)


def remove_during_page_2(sim: Any, vm_id: str) -> threading.Thread:
    """Remove VM ``vm_id`` from the Crusoe cloud simulator while the next instance listing fetches its second
    page (held 1 s), so the VM that moves up from page 2 onto page 1 is in no page: the skip a paged listing
    shows when VMs go while it is read. Returns the started thread (join it after the listing)."""
    lists = sim.requests.count("list_instances")
    sim.faults.add(Fault("list_instances", "latency", latency_s=1.0, nth=(lists + 2,)))

    def remove() -> None:
        until = time.monotonic() + 10
        while sim.requests.count("list_instances") < lists + 2 and time.monotonic() < until:
            time.sleep(0.005)
        with sim.lock:
            del sim.vms[vm_id]

    t = threading.Thread(target=remove)
    t.start()
    return t
