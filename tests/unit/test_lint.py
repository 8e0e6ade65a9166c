"""pyflakes-level lint (via ruff) over the whole tree: no unused imports, undefined names or dead variables."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "vmops", "tests", "playbooks", "bench", "tasks.py"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
