"""`python -m bench` (or `inv bench`): the whole benchmark suite; see bench/README.md.

Writes bench/results/latest.json, latest.md and latest.png. Exit code 0 when every figure was measured
(targets missed are reported in the table, not as a failure), 1 when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import cli_bench, faults_bench, fleet_bench, inventory_bench, pipeline_bench, report, state_bench  # noqa: E402
from bench.result import Figure  # noqa: E402
from bench.simhost import SimHost, stop_all  # noqa: E402

GROUPS = ("fleet", "cli", "faults", "inventory", "state")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _sigterm(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma list of {', '.join(GROUPS)}")
    ap.add_argument("--sizes", default=",".join(map(str, fleet_bench.SIZES)), help="fleet sizes N")
    ap.add_argument("--runs", type=int, default=10, help="runs per CLI command (median)")
    ap.add_argument("--rounds", type=int, default=fleet_bench.ROUNDS,
                    help="rounds per fleet size N (figures 1-3: medians over rounds)")
    ap.add_argument("--instances", type=int, default=inventory_bench.TOTAL, help="instances for the inventory figure")
    ap.add_argument("--fleets", type=int, default=state_bench.FLEETS, help="fleets in the state-store figure")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="where latest.{json,md,png} go")
    args = ap.parse_args(argv)
    only = [g.strip() for g in args.only.split(",") if g.strip()]
    bad = [g for g in only if g not in GROUPS]
    if bad:
        ap.error(f"unknown group(s) {', '.join(bad)}; choose from {', '.join(GROUPS)}")
    sizes = tuple(int(x) for x in args.sizes.split(",") if x.strip())
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    signal.signal(signal.SIGTERM, _sigterm)
    started = time.time()
    cli_bench.compile_vmops()  # every figure measures vmops as installed (byte-compiled), not compiled per run
    figures: list[Figure] = []
    series: list[dict[str, Any]] = []
    try:
        if {"fleet", "cli", "faults", "state"} & set(only):
            log("starting the simulators (time scale 1, capacity raised)")
            with SimHost(fleet_bench.SCENARIO, scale=1.0, label="fleet") as host:
                if "fleet" in only:
                    log(f"fleet create/destroy for N = {', '.join(map(str, sizes))}, {args.rounds} round(s) each")
                    f, series = fleet_bench.run_fleets(host, sizes, log, args.rounds)
                    figures += f
                if "cli" in only:
                    log(f"CLI start-up and round trips, median of {args.runs}")
                    figures += cli_bench.run_cli(host, args.runs, log)
                if "faults" in only:
                    log("fail fast (one provider down / hung) and one VM's create")
                    figures += faults_bench.run_faults(host, args.runs, log)
                    log("give up early (an impossible fleet) and a slow provider during a fleet create")
                    figures += pipeline_bench.run_pipelines(host, log)
                if "state" in only:
                    log(f"state store with {args.fleets} fleets of {state_bench.MEMBERS} members")
                    figures += state_bench.run_state(host, args.fleets, args.runs, log)
        if "inventory" in only:
            log(f"inventory with {args.instances} instances across the three simulators")
            with SimHost(inventory_bench.scenario(args.instances), scale=1.0, label="inventory") as host:
                figures += inventory_bench.run_inventory(host, args.instances, log)
    except KeyboardInterrupt:
        log("interrupted: simulators stopped, nothing written")
        return 130
    except Exception as e:  # a benchmark that cannot run is a clear message, not a traceback
        log(f"FAILED: {type(e).__name__}: {e}")
        return 1
    finally:
        stop_all()
    elapsed = time.time() - started
    out = Path(args.out)
    paths = report.write(out, figures, series, elapsed=elapsed, groups=only)
    print(paths["md"].read_text())
    log(f"done in {elapsed:.0f}s; wrote " + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
                                                   for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
