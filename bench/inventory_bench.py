"""Figure 5: inventory at scale: `vm list` and the pandas inventory with ``total`` instances seeded across the
three simulators (the ``count`` key of each simulator's ``instances`` scenario entry).

Pagination: none is needed or possible. The contract's REST list endpoints have no pagination and Nebius's
List ignores page_size/page_token (next_page_token is always empty), so one list call per provider returns
everything; the adapters follow no page tokens because there are none.

Floor: one process making one raw list request per provider (bench.floors.RAW_LIST_SCRIPT), for time and
peak memory. Targets are absolute (< 2 s, < 200 MB) as the issue states them; the ratio is reported too.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from bench.floors import RAW_LIST_SCRIPT
from bench.procs import VM, Run, run
from bench.result import Figure
from bench.simhost import SimHost

TOTAL = 10_000
TIME_TARGET_S = 2.0
MEMORY_TARGET_MIB = 200.0
PANDAS_SCRIPT = "from vmops.inventory import instances\ndf = instances()\nprint(len(df))\n"


def scenario(total: int) -> dict[str, Any]:
    """``total`` running h100 VMs, split over the three simulators (none of them counts against capacity)."""
    c = total // 3
    lam = total // 3
    n = total - c - lam
    return {
        "crusoe": {"instances": [{"name": "seed-c", "type": "h100.1x", "location": "us-east1", "count": c}]},
        "lambda": {"instances": [{"name": "seed-l", "region": "us-west-1", "instance_type": "gpu_1x_h100",
                                  "count": lam}]},
        "nebius": {"instances": [{"name": "seed-n", "platform": "gpu-h100-sxm", "preset": "1gpu-16vcpu-200gb",
                                  "state": "RUNNING", "count": n}]},
    }


def _best(cmd: list[str], env: dict[str, str], runs: int, expect: Callable[[str], bool], what: str) -> Run:
    """Median-by-wall of ``runs`` runs (the memory of that run)."""
    samples = []
    for _ in range(runs):
        r = run(cmd, env, timeout=120)
        if not expect(r.stdout):
            raise RuntimeError(f"{what}: unexpected output: {r.stdout[:300]!r}")
        samples.append(r)
    samples.sort(key=lambda r: r.wall_s)
    return samples[len(samples) // 2]


def run_inventory(host: SimHost, total: int, log: Callable[[str], None], runs: int = 3) -> list[Figure]:
    env = host.env()
    raw = _best([sys.executable, "-c", RAW_LIST_SCRIPT], env, runs, lambda out: int(out.strip()) >= total,
                "raw list floor")
    listed = _best(VM + ["list"], env, runs, lambda out: out.count("\n") >= total, "vm list")
    frame = _best([sys.executable, "-c", PANDAS_SCRIPT], env, runs, lambda out: int(out.strip()) >= total,
                  "inventory.instances()")
    log(f"raw lists {raw.wall_s:.2f}s {raw.max_rss_mib:.0f} MiB; vm list {listed.wall_s:.2f}s "
        f"{listed.max_rss_mib:.0f} MiB; inventory.instances() {frame.wall_s:.2f}s {frame.max_rss_mib:.0f} MiB")
    floor = "python: one raw list per provider"
    return [
        Figure("5 inventory", f"vm list, {total:,} instances: time", listed.wall_s, "s", raw.wall_s, floor,
               TIME_TARGET_S, target_on="value"),
        Figure("5 inventory", f"vm list, {total:,} instances: peak memory", listed.max_rss_mib, "MiB",
               raw.max_rss_mib, floor, MEMORY_TARGET_MIB, target_on="value"),
        Figure("5 inventory", f"inventory.instances() (pandas), {total:,}: time", frame.wall_s, "s", raw.wall_s,
               floor, TIME_TARGET_S, target_on="value", note="whole process, pandas import included"),
        Figure("5 inventory", f"inventory.instances() (pandas), {total:,}: peak memory", frame.max_rss_mib, "MiB",
               raw.max_rss_mib, floor, MEMORY_TARGET_MIB, target_on="value"),
    ]
