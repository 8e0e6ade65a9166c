"""`vm --help` is served from vmops.cli.help_text without importing invoke; the text stays what the real
program renders (regenerate with `python -m vmops.cli.program`)."""

import json
import subprocess
import sys


def test_help_text_is_current() -> None:
    from vmops.cli.program import HELP_MODULE, help_module_source

    with open(HELP_MODULE) as f:
        assert f.read() == help_module_source(), "run `python -m vmops.cli.program` to regenerate vmops/cli/help_text.py"


def test_help_imports_no_invoke_and_prints_every_command() -> None:
    code = (
        "import sys, json, io, contextlib\n"
        "from vmops.cli.main import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(['vm', '--help'])\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "print(json.dumps({'help': buf.getvalue(), 'code': code, 'mods': sorted(sys.modules)}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["code"] == 0
    assert not [m for m in out["mods"] if m == "invoke" or m.startswith("invoke.")]
    for cmd in ("fleet create", "fleet destroy", "sim up", "list", "config show", "--version"):
        assert cmd in out["help"]


def test_other_commands_still_go_through_invoke() -> None:
    v = subprocess.run([sys.executable, "-m", "vmops.cli.main", "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and "0.1.0" in v.stdout
    h = subprocess.run([sys.executable, "-m", "vmops.cli.main", "fleet", "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "fleet create" in h.stdout
