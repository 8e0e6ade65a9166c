"""Where the recorded wire exchanges (the contract vectors) are.

The contract lives in ../shared/wire beside the repo; tests/vectors/ holds a copy so a clone elsewhere
still has them, and tests/sim/test_vectors_current.py fails when the copy drifts from ../shared.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDORED = REPO / "tests" / "vectors"
SHARED = REPO.parent / "shared" / "wire"


def wire_file(name: str) -> Path:
    """Path of ``<name>.jsonl`` (name: crusoe, lambda or nebius)."""
    for d in (os.environ.get("VMOPS_WIRE_DIR"), SHARED, VENDORED):
        if d and (Path(d) / f"{name}.jsonl").exists():
            return Path(d) / f"{name}.jsonl"
    raise FileNotFoundError(f"{name}.jsonl not found in $VMOPS_WIRE_DIR, {SHARED} or {VENDORED}")
