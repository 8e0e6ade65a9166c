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


def dialect_seeds(full: int, ci: int, base: int = 1000, *, cloud: tuple[int, int]) -> list:
    """``(dialect, seed)`` parameters for a seeded scenario run on both dialects: ``seeds(full, ci, base)`` on
    the reference dialect and the first ``cloud = (full, ci)`` of the same seeds on the cloud dialect (its
    simulators pace requests like the real services, so a trial costs more; the CI budget stays bounded).
    Ids read ``reference-seed-1007``: ``-k seed-1007`` reruns a seed on both, ``-k cloud-seed-1007`` on one."""
    import pytest

    runs = (("reference", trials(full, ci)), ("cloud", trials(*cloud)))
    return [pytest.param(d, s, id=f"{d}-seed-{s}") for d, n in runs for s in seeds(full, ci, base)[:n]]
