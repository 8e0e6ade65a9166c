"""Shared fixtures: the three simulators on loopback ephemeral ports, time-scaled for speed, reset
before every test; and a vmops Config / environment pointing at them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.reliability import summary as reliability_summary

#: Every simulator delay is multiplied by this in tests (create 2.5 s -> 0.125 s).
TEST_SCALE = float(os.environ.get("VMOPS_TEST_SCALE", "0.05"))
POLL = 0.02


def _server(cls_path: str, scale: float = TEST_SCALE):
    import importlib

    from vmops.sim.common import SimOptions

    mod, _, cls = cls_path.partition(":")
    sim = getattr(importlib.import_module(mod), cls)(SimOptions(time_scale=scale))
    sim.start(0)
    return sim


@pytest.fixture(scope="session")
def _crusoe_server():
    sim = _server("vmops.sim.crusoe:CrusoeSim")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def _lambda_server():
    sim = _server("vmops.sim.lambdalabs:LambdaSim")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def _nebius_server():
    sim = _server("vmops.sim.nebius:NebiusSim")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def _nebius_cloud_server():
    sim = _server("vmops.sim.nebius_cloud:NebiusCloudSim")
    yield sim
    sim.stop()


@pytest.fixture
def nebius_cloud_sim(_nebius_cloud_server):
    """The simulator of Nebius' public API (cloud dialect), reset; plaintext, static token ``nebius-iam-token-001``."""
    _nebius_cloud_server.reset()
    return _nebius_cloud_server


@pytest.fixture
def crusoe_sim(_crusoe_server):
    _crusoe_server.reset()
    return _crusoe_server


@pytest.fixture
def lambda_sim(_lambda_server):
    _lambda_server.reset()
    return _lambda_server


@pytest.fixture
def nebius_sim(_nebius_server):
    _nebius_server.reset()
    return _nebius_server


@pytest.fixture
def sims(crusoe_sim, lambda_sim, nebius_sim):
    """All three simulators, reset."""
    return {"crusoe": crusoe_sim, "lambda": lambda_sim, "nebius": nebius_sim}


def sim_env(home: Path, sims: dict) -> dict[str, str]:
    """Environment variables that point vmops at the given simulators (and nowhere else)."""
    env = {"VMOPS_HOME": str(home), "VMOPS_POLL_INTERVAL": str(POLL), "VMOPS_OP_TIMEOUT": "30"}
    if "crusoe" in sims:
        env["VMOPS_CRUSOE_URL"] = sims["crusoe"].address
    if "lambda" in sims:
        env["VMOPS_LAMBDA_URL"] = sims["lambda"].address
    if "nebius" in sims:
        env["VMOPS_NEBIUS_ENDPOINT"] = sims["nebius"].address
    env["VMOPS_PROVIDERS"] = ",".join(sims)
    return env


@pytest.fixture
def vm_env(tmp_path, sims) -> Iterator[dict[str, str]]:
    """Environment (for subprocesses) pointing at all three simulators, with a fresh VMOPS_HOME."""
    home = tmp_path / "vmops-home"
    home.mkdir()
    yield sim_env(home, sims)


@pytest.fixture
def config(vm_env):
    from vmops.config import load_config

    return load_config(vm_env)


# --- the reliability scoreboard (tests/reliability/summary.py) ------------------------------------------


def pytest_configure(config):
    """The controller (or a plain run) names one scoreboard file before any xdist worker starts."""
    if hasattr(config, "workerinput") or os.environ.get(reliability_summary.ENV):
        return
    import tempfile

    fd, path = tempfile.mkstemp(prefix="vmops-reliability-", suffix=".jsonl")
    os.close(fd)
    os.environ[reliability_summary.ENV] = path
    config._vmops_reliability_log = path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = getattr(config, "_vmops_reliability_log", None)
    if not path:
        return
    rows = reliability_summary.load(Path(path))
    os.unlink(path)
    if not rows:
        return
    text = reliability_summary.table(rows)
    terminalreporter.write_sep("=", "reliability summary")
    terminalreporter.write_line(text)
    out = os.environ.get("VMOPS_RELIABILITY_SUMMARY")
    if out:  # `inv stress` keeps the table (bench/results-style) for the README
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        import datetime
        import platform

        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        budget = os.environ.get("VMOPS_STRESS_BUDGET", "ci")
        Path(out).write_text(
            "# Reliability suite: latest run\n\n"
            f"{when}, `{budget}` budget (`inv stress`), {os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"pytest exit status {int(exitstatus)}. Every trial is judged at the providers (the simulators' own "
            "lists), not from vmops' records. Scenarios: tests/reliability/.\n\n" + text + "\n")
