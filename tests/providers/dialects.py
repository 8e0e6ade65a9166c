"""Adapters for either dialect, built the way `vm` builds them (environment -> Config -> get_provider), and the
names each dialect's simulator uses, so one test body runs against both (see tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import POLL, cloud_env, sim_env
from vmops.config import load_config
from vmops.providers import get_provider
from vmops.providers.base import Provider, Timing

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
