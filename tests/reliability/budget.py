"""How many seeded trials a reliability scenario runs.

`inv test` (the README test command, and CI) runs the suite with the ``ci`` budget so the whole test command
stays well inside its time limit; `inv stress` runs the ``full`` budget (the figures the issue and the README
quote). Set ``VMOPS_STRESS_BUDGET=full`` to get the full budget from plain pytest.
"""

from __future__ import annotations

import os


def budget() -> str:
    return os.environ.get("VMOPS_STRESS_BUDGET", "ci")


def trials(full: int, ci: int) -> int:
    """``full`` trials under `inv stress`, ``ci`` otherwise."""
    return full if budget() == "full" else ci


def seeds(full: int, ci: int, base: int = 1000) -> list[int]:
    """Deterministic seeds: the same trials every run, so a failure names a seed that reproduces it."""
    return list(range(base, base + trials(full, ci)))
