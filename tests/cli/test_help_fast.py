"""`vm --help` is served from vmops.cli.help_text (no invoke import: tests/cli/test_startup.py); the text stays
what the real program renders (regenerate with `python -m vmops.cli.program`)."""

import subprocess
import sys


def test_help_text_is_current() -> None:
    from vmops.cli.program import HELP_MODULE, help_module_source

    with open(HELP_MODULE) as f:
        assert f.read() == help_module_source(), "run `python -m vmops.cli.program` to regenerate vmops/cli/help_text.py"


def test_other_commands_still_go_through_invoke() -> None:
    v = subprocess.run([sys.executable, "-m", "vmops.cli.main", "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and "0.1.0" in v.stdout
    h = subprocess.run([sys.executable, "-m", "vmops.cli.main", "fleet", "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "fleet create" in h.stdout
