"""Figure 4: CLI overhead, whole processes, median of ``runs``.

Floors: `python -c pass` (bare interpreter start) for `vm --help`, `vm fleet list` and `vm fleet status NAME
--no-refresh` (which only read the local state file), and a process making one raw list request per provider
(bench.floors.RAW_LIST_SCRIPT) for `vm list`.

How it measures, so that a shared, noisy machine moves every figure and its floor alike:

* **Interleaved**: each round runs every command (floors included) once, in an order that rotates from round
  to round, and each figure is the median of its rounds; a burst of load lands on all of them, not on one.
* **A real state file**: the fleet commands read their own state directory holding ``FLEETS`` fleets of
  bench.state_bench's shape (figure 6 does the same at 1,000 fleets), not whatever an earlier figure left or
  no file at all (`vm fleet list` without a state file opens nothing and measures nothing).
* **Compiled like an install**: vmops' modules are byte-compiled first (what `pip install` does for a
  regular install). A checkout run with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile every vmops
  module from source in every `vm` process (~30-40 ms of `vm list`), a cost no installed vmops has.
"""

from __future__ import annotations

import compileall
import statistics
import sys
from pathlib import Path
from typing import Callable

import vmops
from bench.floors import RAW_LIST_SCRIPT
from bench.procs import VM, run
from bench.result import Figure
from bench.simhost import SimHost

HELP_TARGET = 3.0
LIST_TARGET = 1.3  # issue 15 (was 1.5)
FLEET_LIST_TARGET = 3.0  # issue 15: `vm fleet list` within 3x a bare interpreter
FLEETS = 20  # fleets in figure 4's state file (10 members each)


def compile_vmops() -> None:
    """Byte-compile vmops' modules, as a regular install has them (quietly; an unwritable tree is left as is)."""
    compileall.compile_dir(str(Path(vmops.__file__).parent), quiet=2)


def interleaved_medians(cmds: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """The median wall time of each command over ``runs`` rounds; every round runs each command once, the
    order rotating by one each round."""
    names = list(cmds)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        for n in names[r % len(names):] + names[:r % len(names)]:
            samples[n].append(run(cmds[n], env).wall_s)
    return {n: statistics.median(s) for n, s in samples.items()}


def run_cli(host: SimHost, runs: int, log: Callable[[str], None]) -> list[Figure]:
    from bench.state_bench import seed

    compile_vmops()
    host.reset()
    home = host.dir / "cli-home"
    home.mkdir(exist_ok=True)
    if not (home / "state.db").exists():
        seed(home / "state.db", FLEETS)
    env = host.env(home)
    last = f"bench-{FLEETS - 1:04d}"
    listed = run(VM + ["fleet", "list"], env)  # also warms the file cache once for everyone
    if listed.stdout.count("bench-") != FLEETS:
        raise RuntimeError(f"vm fleet list showed {listed.stdout.count('bench-')} of {FLEETS} fleets")
    m = interleaved_medians({
        "bare": [sys.executable, "-c", "pass"],
        "raw": [sys.executable, "-c", RAW_LIST_SCRIPT],
        "help": VM + ["--help"],
        "list": VM + ["list"],
        "fleet list": VM + ["fleet", "list"],
        "fleet status": VM + ["fleet", "status", last, "--no-refresh"],
    }, env, runs)
    bare, raw = m["bare"], m["raw"]
    log(f"python -c pass {bare * 1000:.0f} ms; raw lists {raw * 1000:.0f} ms; vm --help {m['help'] * 1000:.0f} ms; "
        f"vm list {m['list'] * 1000:.0f} ms; vm fleet list {m['fleet list'] * 1000:.0f} ms; "
        f"vm fleet status --no-refresh {m['fleet status'] * 1000:.0f} ms")
    record = f"local state file only ({FLEETS} fleets x 10)"
    return [
        Figure("4 CLI overhead", "vm --help", m["help"], "s", bare, "python -c pass", HELP_TARGET),
        Figure("4 CLI overhead", "vm list (3 providers)", m["list"], "s", raw,
               "python: one raw list per provider", LIST_TARGET),
        Figure("4 CLI overhead", "vm fleet list", m["fleet list"], "s", bare, "python -c pass", FLEET_LIST_TARGET,
               note=record),
        Figure("4 CLI overhead", "vm fleet status NAME --no-refresh", m["fleet status"], "s", bare, "python -c pass",
               None, note=record + "; no target given (reported)"),
    ]
