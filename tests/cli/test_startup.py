"""The `vm` command starts lean: importing the CLI (and building its namespace) loads no heavy library."""

import json
import subprocess
import sys

HEAVY = ("grpc", "httpx", "pandas", "sqlite_utils", "fastapi", "uvicorn", "google.protobuf", "numpy", "matplotlib")


def test_cli_import_loads_no_heavy_library():
    code = (
        "import sys, json; import vmops.cli.main as m; m.vm_namespace(); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    offenders = sorted(m for m in loaded for h in HEAVY if m == h or m.startswith(h + "."))
    assert offenders == [], f"CLI start-up imports heavy modules: {offenders}"
    assert "vmops.cli.vm_cmds" in loaded  # the check really looked at a loaded CLI


def test_help_runs_without_heavy_imports_or_invoke():
    """`vm --help` is served from vmops.cli.help_text: no heavy library and not even invoke is imported."""
    code = (
        "import sys, json, io, contextlib\n"
        "from vmops.cli.main import main\n"
        "buf = io.StringIO()\n"
        "code = None\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(['vm', '--help'])\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "print(json.dumps({'help': buf.getvalue(), 'code': code, 'mods': sorted(sys.modules)}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["code"] in (0, None)
    for cmd in ("create", "fleet create", "fleet destroy", "sim up", "list", "config show", "--version"):
        assert cmd in out["help"]
    assert not [m for m in out["mods"] for h in (*HEAVY, "invoke") if m == h or m.startswith(h + ".")]


def test_closed_stdout_is_no_traceback(tmp_path):
    """`vm --help | head -1`: when the reader is gone, vm exits quietly (141), never with a traceback."""
    import os

    r, w = os.pipe()
    os.close(r)  # the reader has already left: every write to stdout fails with EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "vmops.cli.main", "--help"], stdout=w, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "VMOPS_HOME": str(tmp_path)})
    finally:
        os.close(w)
    assert p.returncode == 141, p.stderr
    assert "Traceback" not in p.stderr
