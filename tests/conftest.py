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


# --- the cloud dialect: simulators of the providers' real public APIs (../shared/cloud-apis.md) ---------------

#: Lambda's documented limits (1 request/s, 1 launch/12 s) as the tests run them: the simulator enforces them
#: scaled by TEST_SCALE and the adapter's pacer is configured to the same spacing.
LAMBDA_CLOUD_SCENARIO = {"request_interval_s": 1.0, "request_burst": 3, "launch_interval_s": 4.0}
CLOUD_PACING = {"lambda": (1.0 * TEST_SCALE, 4.0 * TEST_SCALE), "crusoe": (0.0, 0.0)}
CRUSOE_CLOUD_KEY = ("vmopsTestAccessKey01", "AAECAwQFBgcICQoLDA0ODw")
LAMBDA_CLOUD_KEY = "lambda-cloud-test-key-001"
#: the Nebius cloud simulator's static IAM token and its (first) project: what its ``client_env`` names too
NEBIUS_CLOUD_TOKEN = "nebius-iam-token-001"
NEBIUS_CLOUD_PARENT = "project-e00vmopssim01"
TEST_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJvmopsTestKeyOnlyForSimulators0000000000 vmops-test"


def _cloud_server(cls_path: str, scenario: dict | None = None):
    import importlib

    from vmops.sim.common import SimOptions

    mod, _, cls = cls_path.partition(":")
    sim = getattr(importlib.import_module(mod), cls)(SimOptions(time_scale=TEST_SCALE, scenario=scenario or {}))
    sim.start(0)
    return sim


@pytest.fixture(scope="session")
def _crusoe_cloud_server():
    sim = _cloud_server("vmops.sim.crusoe_cloud:CrusoeCloudSim")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def _lambda_cloud_server():
    sim = _cloud_server("vmops.sim.lambda_cloud:LambdaCloudSim", LAMBDA_CLOUD_SCENARIO)
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def _nebius_cloud_server():
    sim = _server("vmops.sim.nebius_cloud:NebiusCloudSim")
    yield sim
    sim.stop()


@pytest.fixture
def crusoe_cloud_sim(_crusoe_cloud_server):
    _crusoe_cloud_server.reset()
    return _crusoe_cloud_server


@pytest.fixture
def lambda_cloud_sim(_lambda_cloud_server):
    _lambda_cloud_server.reset()
    return _lambda_cloud_server


@pytest.fixture(scope="session")
def public_key_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519.pub"
    path.write_text(TEST_PUBLIC_KEY + "\n")
    return str(path)


def cloud_env(sims: dict, public_key: str) -> dict[str, str]:
    """Variables that switch the given providers' simulators to the cloud dialect (credentials, pacing, key)."""
    env: dict[str, str] = {}
    for name in sims:
        p = f"VMOPS_{name.upper()}_"
        env[p + "DIALECT"] = "cloud"
        if name in CLOUD_PACING:
            env[p + "REQUEST_INTERVAL"], env[p + "LAUNCH_INTERVAL"] = (str(x) for x in CLOUD_PACING[name])
    if "crusoe" in sims:
        env["VMOPS_CRUSOE_ACCESS_KEY_ID"], env["VMOPS_CRUSOE_SECRET_KEY"] = CRUSOE_CLOUD_KEY
        env["VMOPS_CRUSOE_SSH_PUBLIC_KEY_FILE"] = public_key
    if "lambda" in sims:
        env["VMOPS_LAMBDA_API_KEY"] = LAMBDA_CLOUD_KEY
    if "nebius" in sims:  # the test simulator is plaintext (the adapter's default is TLS)
        env.update({"VMOPS_NEBIUS_TLS": "0", "VMOPS_NEBIUS_IAM_TOKEN": NEBIUS_CLOUD_TOKEN,
                    "VMOPS_NEBIUS_PARENT": NEBIUS_CLOUD_PARENT, "VMOPS_NEBIUS_SSH_PUBLIC_KEY_FILE": public_key})
    return env


DIALECTS = ("reference", "cloud")
#: run a test (or, as ``pytestmark``, a module) against both dialects' simulators
both_dialects = pytest.mark.parametrize("dialect", DIALECTS)


@pytest.fixture
def dialect() -> str:
    """The dialect the ``sims``/``vm_env``/``config`` fixtures speak: reference unless a test parametrizes it
    (``both_dialects``); "cloud" means every provider's simulator of its real public API."""
    return "reference"


def config_env(config) -> dict[str, str]:
    """The variables that rebuild ``config`` (for a variant of it: ``load_config({**config_env(c), ...})``)."""
    env = {"VMOPS_HOME": str(config.home), "VMOPS_POLL_INTERVAL": str(config.poll_interval),
           "VMOPS_OP_TIMEOUT": str(config.op_timeout), "VMOPS_PROVIDERS": ",".join(config.enabled)}
    for n, st in config.providers.items():
        env[f"VMOPS_{n.upper()}_{'ENDPOINT' if n == 'nebius' else 'URL'}"] = st.url
    if config.db_url:
        env["VMOPS_DB_URL"] = config.db_url
    cloud = {n: None for n, st in config.providers.items() if st.dialect == "cloud"}
    if cloud:
        pub = next((st.ssh_public_key_file for st in config.providers.values() if st.ssh_public_key_file), "")
        env.update(cloud_env(cloud, pub or ""))
    return env


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
def sims(dialect, request):
    """All three simulators, reset, in the dialect under test."""
    suffix = "_cloud_sim" if dialect == "cloud" else "_sim"
    return {name: request.getfixturevalue(name + suffix) for name in ("crusoe", "lambda", "nebius")}


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


# --- the state store: SQLite by default, a throwaway PostgreSQL server on request ----------------------

#: VMOPS_TEST_STATE=postgresql runs every test that uses vm_env/config against PostgreSQL.
TEST_STATE = os.environ.get("VMOPS_TEST_STATE", "sqlite")


@pytest.fixture(scope="session")
def pg_cluster():
    """One PostgreSQL server per test session (per xdist worker), on a free loopback port; removed after."""
    from tests.pgserver import PgCluster

    cluster = PgCluster()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return pg_cluster.new_database()


@pytest.fixture
def state_db(request) -> str | None:
    """VMOPS_DB_URL for the test's vmops (None: the default SQLite file). Modules parametrise it with
    ``@pytest.mark.parametrize("state_db", ["sqlite", "postgresql"], indirect=True)``."""
    kind = getattr(request, "param", TEST_STATE)
    return request.getfixturevalue("pg_url") if kind == "postgresql" else None


@pytest.fixture
def vm_env(tmp_path, sims, state_db, dialect, public_key_file) -> Iterator[dict[str, str]]:
    """Environment (for subprocesses) pointing at all three simulators, with a fresh VMOPS_HOME."""
    home = tmp_path / "vmops-home"
    home.mkdir()
    env = sim_env(home, sims)
    if state_db:
        env["VMOPS_DB_URL"] = state_db
    if dialect == "cloud":
        env.update(cloud_env(sims, public_key_file))
    yield env


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
