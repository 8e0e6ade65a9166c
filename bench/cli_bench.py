"""Figure 4: CLI overhead, whole processes, median of ``runs``.

Floors: `python -c pass` (bare interpreter start) for `vm --help` and `vm fleet list` (which only reads the
local state file), and a process making one raw list request per provider (bench.floors.RAW_LIST_SCRIPT)
for `vm list`.
"""

from __future__ import annotations

import sys
from typing import Callable

from bench.floors import RAW_LIST_SCRIPT
from bench.procs import VM, median_wall, run
from bench.result import Figure
from bench.simhost import SimHost

HELP_TARGET = 3.0
LIST_TARGET = 1.3  # issue 15 (was 1.5)
FLEET_LIST_TARGET = 3.0  # issue 15: `vm fleet list` within 3x a bare interpreter


def run_cli(host: SimHost, runs: int, log: Callable[[str], None]) -> list[Figure]:
    env = host.env()
    host.reset()
    run(VM + ["--help"], env)  # warm the file cache once for everyone
    bare, _ = median_wall([sys.executable, "-c", "pass"], env, runs)
    raw, _ = median_wall([sys.executable, "-c", RAW_LIST_SCRIPT], env, runs)
    help_s, _ = median_wall(VM + ["--help"], env, runs)
    list_s, _ = median_wall(VM + ["list"], env, runs)
    fleet_s, _ = median_wall(VM + ["fleet", "list"], env, runs)
    log(f"python -c pass {bare * 1000:.0f} ms; raw lists {raw * 1000:.0f} ms; vm --help {help_s * 1000:.0f} ms; "
        f"vm list {list_s * 1000:.0f} ms; vm fleet list {fleet_s * 1000:.0f} ms")
    return [
        Figure("4 CLI overhead", "vm --help", help_s, "s", bare, "python -c pass", HELP_TARGET),
        Figure("4 CLI overhead", "vm list (3 providers)", list_s, "s", raw,
               "python: one raw list per provider", LIST_TARGET),
        Figure("4 CLI overhead", "vm fleet list", fleet_s, "s", bare, "python -c pass", FLEET_LIST_TARGET,
               note="local state file only"),
    ]
