"""The `vm` command starts lean: building the whole command tree, `vm --help` and `vm list --json` load no heavy
library (nor rich, nor invoke); `vm fleet list` and `vm fleet status --no-refresh` read the state file without
sqlite-utils, the fleet manager or any adapter; the configuration is loaded once; a closed stdout is a quiet
exit, and the fast exit (no interpreter teardown) still flushes everything and runs the exit handlers."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("grpc", "httpx", "pandas", "sqlite_utils", "fastapi", "uvicorn", "google.protobuf", "numpy", "matplotlib")
NEVER_AT_START = (*HEAVY, "rich", "invoke")

RUN_AND_LIST_MODULES = (
    "import sys, json, io, contextlib\n"
    "import vmops.config\n"
    "loads = []\n"
    "real_load = vmops.config.load_config\n"
    "def counting_load(*a, **k):\n"
    "    loads.append(1)\n"
    "    return real_load(*a, **k)\n"
    "vmops.config.load_config = counting_load\n"
    "from vmops.cli.main import run\n"
    "buf = io.StringIO()\n"
    "with contextlib.redirect_stdout(buf):\n"
    "    code = run(['vm', *sys.argv[1:]])\n"
    "print(json.dumps({'out': buf.getvalue(), 'code': code, 'loads': len(loads), "
    "'mods': sorted(k for k, v in sys.modules.items() if v is not None)}))\n"
)
#: what a command that only reads the state file never needs (the record is enough)
NOT_FOR_THE_RECORD = (*HEAVY, "rich", "invoke", "vmops.fleet.manager", "vmops.session", "vmops.providers.http",
                      "vmops.providers.crusoe", "vmops.providers.nebius", "vmops.providers.base",
                      "vmops.fleet.policies", "vmops.fleet.planner")


def _run(args: list[str], env: dict[str, str] | None = None) -> dict:
    p = subprocess.run([sys.executable, "-c", RUN_AND_LIST_MODULES, *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _offenders(mods: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in mods for h in names if m == h or m.startswith(h + "."))


def test_command_tree_loads_no_heavy_library():
    code = ("import sys, json; from vmops.cli.inv import walk; from vmops.cli.app import cli; list(walk(cli)); "
            "print(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert _offenders(loaded, (*HEAVY, "rich")) == [], "CLI start-up imports heavy modules"
    assert "vmops.cli.vm_cmds" in loaded and "vmops.cli.fleet_cmds" in loaded  # the check looked at a real tree


def test_registry_and_tree_agree():
    """vmops.cli.registry (what `vm --help` lists without loading anything) names every command of the tree."""
    import click

    from vmops.cli import registry
    from vmops.cli.app import cli
    from vmops.cli.inv import walk

    paths = {" ".join(p) for p, cmd in walk(cli) if not isinstance(cmd, click.Group)}
    assert paths == {e.path for e in registry.ENTRIES}
    groups = {" ".join(p) for p, cmd in walk(cli) if isinstance(cmd, click.Group)}
    assert groups == set(registry.GROUPS)
    ctx = cli.make_context("vm", [], resilient_parsing=True)
    shown = [(", ".join(p.opts + p.secondary_opts), p.help) for p in cli.get_params(ctx)]
    assert sorted(shown) == sorted(registry.ROOT_OPTIONS)


def test_a_command_loads_only_its_own_module(tmp_path):
    out = _run(["types", "--json"], {"VMOPS_HOME": str(tmp_path)})
    assert out["code"] == 0 and json.loads(out["out"])
    assert "vmops.cli.vm_cmds" in out["mods"]
    assert not {"vmops.cli.fleet_cmds", "vmops.cli.sim_cmds", "vmops.cli.playbook_cmds"} & set(out["mods"])


def test_help_runs_without_heavy_imports():
    out = _run(["--help"])
    assert out["code"] == 0
    assert "click" not in out["mods"] and "vmops.cli.vm_cmds" not in out["mods"]  # the registry is enough
    for cmd in ("create", "fleet create", "fleet destroy", "sim up", "list", "config show", "types", "--version"):
        assert cmd in out["out"]
    assert _offenders(out["mods"], NEVER_AT_START) == []


def test_list_json_imports_no_rich_or_pandas(tmp_path, vm_env):
    out = _run(["list", "--json"], {**vm_env, "VMOPS_HOME": str(tmp_path)})
    assert out["code"] == 0 and json.loads(out["out"])
    assert _offenders(out["mods"], ("rich", "pandas", "invoke", "numpy", "sqlite_utils", "vmops.fleet")) == []
    assert "httpx" in out["mods"] and "grpc" in out["mods"]  # it did talk to the providers
    assert out["loads"] == 1  # the configuration is loaded once per command


def test_list_table_not_on_a_terminal_imports_no_rich(tmp_path, vm_env):
    out = _run(["list"], {**vm_env, "VMOPS_HOME": str(tmp_path)})
    assert out["code"] == 0 and out["out"].startswith("PROVIDER")
    assert _offenders(out["mods"], ("rich", "pandas", "numpy", "sqlite_utils")) == []


def _state_with_a_fleet(home, env: dict[str, str]) -> None:
    """A state file holding fleet `train` with one member (through the store, as vmops writes it)."""
    from vmops.config import load_config
    from vmops.state import store_for

    with store_for(load_config({**env, "VMOPS_HOME": str(home)})) as store:
        fleet, _ = store.claim_fleet("train", gpu="h100:1", count=1, min_count=1, policy="spread")
        store.add_member(fleet.id, name="train-0", provider="lambda", region="us-west-1", native_type="gpu_1x_h100",
                         idempotency_key="k-0")


def _record_env(tmp_path, db_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    return {**env, "VMOPS_HOME": str(tmp_path / "home"), **({"VMOPS_DB_URL": db_url} if db_url else {})}


@pytest.mark.parametrize("state_db", ["sqlite", "postgresql"], indirect=True)
def test_fleet_list_reads_the_record_without_sqlite_utils_manager_or_adapters(tmp_path, state_db):
    env = _record_env(tmp_path, state_db)
    _state_with_a_fleet(tmp_path / "home", env)
    out = _run(["fleet", "list", "-o", "json"], env)
    assert out["code"] == 0
    assert [f["name"] for f in json.loads(out["out"])] == ["train"]  # it did read the store
    assert ("psycopg" if state_db else "sqlite3") in out["mods"] and "vmops.state.store" in out["mods"]
    assert _offenders(out["mods"], NOT_FOR_THE_RECORD) == []
    assert out["loads"] == 1


def test_fleet_status_no_refresh_reads_the_record_without_sqlite_utils_manager_or_adapters(tmp_path):
    env = _record_env(tmp_path)
    _state_with_a_fleet(tmp_path / "home", env)
    out = _run(["fleet", "status", "train", "--no-refresh", "--events"], env)
    assert out["code"] == 0
    assert "Fleet train:" in out["out"] and "train-0" in out["out"] and "member" in out["out"]
    assert _offenders(out["mods"], NOT_FOR_THE_RECORD) == []


def test_fleet_list_without_a_state_file_makes_none(tmp_path):
    env = _record_env(tmp_path)
    out = _run(["fleet", "list"], env)
    assert out["code"] == 0 and "(no fleets)" in out["out"]
    assert not (tmp_path / "home" / "state.db").exists()
    assert _offenders(out["mods"], NOT_FOR_THE_RECORD) == []


def test_the_fast_exit_flushes_output_and_runs_exit_handlers(tmp_path):
    """`vm` ends without the interpreter's teardown (vmops.cli.main.exit_now): every byte written still
    arrives, exit handlers (logging's flush among them) still run, and the exit code is the command's."""
    marker = tmp_path / "atexit-ran"
    env = _record_env(tmp_path)
    _state_with_a_fleet(tmp_path / "home", env)
    script = ("import atexit, pathlib, sys\n"
              f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('yes'))\n"
              "from vmops.cli.main import main\n"
              "sys.stdout.write('x' * 200000)\n"  # more than any pipe buffer: must be flushed before the exit
              "main(['vm', *sys.argv[1:]])\n")
    p = subprocess.run([sys.executable, "-c", script, "fleet", "list", "-o", "json"], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("x" * 200000) and json.loads(p.stdout[200000:])[0]["name"] == "train"
    assert marker.read_text() == "yes"
    p = subprocess.run([sys.executable, "-c", script, "fleet", "status", "nope", "--no-refresh"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 5 and "no fleet named 'nope'" in p.stderr


def test_closed_stdout_is_no_traceback(tmp_path):
    """`vm --help | head -1`: when the reader is gone, vm exits quietly (141), never with a traceback."""
    r, w = os.pipe()
    os.close(r)  # the reader has already left: every write to stdout fails with EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "vmops.cli.main", "--help"], stdout=w, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "VMOPS_HOME": str(tmp_path)})
    finally:
        os.close(w)
    assert p.returncode == 141, p.stderr
    assert "Traceback" not in p.stderr


def test_the_record_path_shows_what_the_fleet_manager_reads(tmp_path):
    """`fleet status --no-refresh` and `fleet list` read the store in the front end (without importing the
    manager): what they show is exactly the manager's own record view, so the two cannot drift apart."""
    from vmops.config import load_config
    from vmops.fleet.manager import FleetManager
    from vmops.session import Session

    env = _record_env(tmp_path)
    _state_with_a_fleet(tmp_path / "home", env)
    status = _run(["fleet", "status", "train", "--no-refresh", "-o", "json"], env)
    listed = _run(["fleet", "list", "-o", "json"], env)
    with FleetManager(Session(load_config(env))) as mgr:
        view = mgr.status("train", refresh=False)
        views = mgr.list()
    assert json.loads(status["out"]) == json.loads(json.dumps(view.to_dict(), default=str))
    assert [(f["name"], f["state"], f["running"], f["price_per_hour"]) for f in json.loads(listed["out"])] == \
        [(v.fleet.name, v.state, v.counts.running, v.counts.price_per_hour) for v in views]


def test_fleet_destroy_loads_no_create_pipeline_or_planner(tmp_path, vm_env):
    """A destroy observes, decides and deletes: the create pipeline, the planner and the placement policies (a
    dozen dataclasses: ~10 ms of its start-up) stay unloaded."""
    env = {**vm_env, "VMOPS_HOME": str(tmp_path / "home")}
    _state_with_a_fleet(tmp_path / "home", env)  # `train`: one member whose create never answered
    out = _run(["fleet", "destroy", "train", "-y", "--json"], env)
    assert out["code"] == 0, out
    view = json.loads(out["out"])
    assert (view.get("fleet") or view)["state"] == "destroyed"
    assert "vmops.fleet.manager" in out["mods"]  # it did go through the manager
    assert _offenders(out["mods"], ("vmops.fleet.create", "vmops.fleet.planner", "vmops.fleet.policies",
                                    "vmops.fleet.timing")) == []
