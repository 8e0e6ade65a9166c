"""The reliability suite's scoreboard: every scenario records its trials here, and the pytest run prints one
table at the end (scenario, trials, passed, VMs leaked, duplicates, VMs destroyed that nobody asked to destroy).

Rows are appended as JSON lines to the file named by ``VMOPS_RELIABILITY_LOG``. The pytest controller sets
it before any xdist worker starts (workers and the `vm` subprocesses they run inherit it), so the table
covers every worker. A test calls :func:`record` once per trial (or once with totals) and then asserts on
the same numbers, so a leak shows up both as a failed test and in the table.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

ENV = "VMOPS_RELIABILITY_LOG"


@dataclass(frozen=True)
class Row:
    scenario: str
    trials: int
    passed: int
    leaked: int = 0  # VMs left at a provider that should not be there
    duplicates: int = 0  # more than one VM for one member / request
    detail: str = ""  # one line: the first failure, seeds, counts
    #: VMs destroyed that the user did not ask to destroy (every VM outside the fleet under test is snapshotted
    #: before and compared after); None where a scenario does not measure it (shown as "-")
    unasked: int | None = None


def record(scenario: str, *, trials: int = 1, passed: int | bool = 1, leaked: int = 0, duplicates: int = 0,
           detail: str = "", unasked: int | None = None) -> Row:
    """Add a row to the scoreboard (no-op when the log is not set up, e.g. a single test run by hand)."""
    row = Row(scenario, trials, int(passed), leaked, duplicates, detail, unasked)
    path = os.environ.get(ENV)
    if path:
        line = json.dumps(asdict(row)) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())  # one write per row: O_APPEND keeps concurrent writers' lines whole
        finally:
            os.close(fd)
    return row


def load(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def totals(rows: list[Row]) -> list[Row]:
    """One row per scenario, in first-seen order."""
    acc: OrderedDict[str, list] = OrderedDict()
    for r in rows:
        a = acc.setdefault(r.scenario, [0, 0, 0, 0, "", None])
        a[0] += r.trials
        a[1] += r.passed
        a[2] += r.leaked
        a[3] += r.duplicates
        if r.detail and (not a[4] or r.passed < r.trials):
            a[4] = r.detail
        if r.unasked is not None:
            a[5] = (a[5] or 0) + r.unasked
    return [Row(name, *vals) for name, vals in acc.items()]


def table(rows: list[Row]) -> str:
    """A Markdown table of the totals (what the README quotes)."""
    lines = ["| scenario | trials | passed | VMs leaked | duplicates | destroyed unasked |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in totals(rows):
        unasked = "-" if r.unasked is None else r.unasked
        lines.append(f"| {r.scenario} | {r.trials} | {r.passed} | {r.leaked} | {r.duplicates} | {unasked} |")
    return "\n".join(lines)
