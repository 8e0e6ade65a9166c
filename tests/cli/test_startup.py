"""The `vm` command starts lean: building the whole command tree, `vm --help` and `vm list --json` load no heavy
library (nor rich, nor invoke); a closed stdout is a quiet exit."""

import json
import os
import subprocess
import sys

HEAVY = ("grpc", "httpx", "pandas", "sqlite_utils", "fastapi", "uvicorn", "google.protobuf", "numpy", "matplotlib")
NEVER_AT_START = (*HEAVY, "rich", "invoke")

RUN_AND_LIST_MODULES = (
    "import sys, json, io, contextlib\n"
    "from vmops.cli.main import run\n"
    "buf = io.StringIO()\n"
    "with contextlib.redirect_stdout(buf):\n"
    "    code = run(['vm', *sys.argv[1:]])\n"
    "print(json.dumps({'out': buf.getvalue(), 'code': code, 'mods': sorted(k for k, v in sys.modules.items() if v is not None)}))\n"
)


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
    assert _offenders(out["mods"], ("rich", "pandas", "invoke", "numpy")) == []


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
