"""Benchmark: `vm --help` start-up time as a ratio to a bare interpreter start measured in the same run.

    .venv/bin/python bench/cli_startup.py [--runs 15]

Prints median wall times and the ratio (vm / floor). Lean start-up means a small ratio; importing
grpc/httpx/pandas at start-up shows up here as a jump, long before a user feels it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    floor = timed([sys.executable, "-c", "pass"], args.runs)
    heavy = timed([sys.executable, "-c", "import grpc, httpx"], args.runs)
    vm = timed([sys.executable, "-m", "vmops.cli.main", "--help"], args.runs)
    print(f"floor (python -c pass):      {floor * 1000:7.1f} ms  = 1.00x")
    print(f"vm --help:                   {vm * 1000:7.1f} ms  = {vm / floor:.2f}x floor")
    print(f"reference: import grpc,httpx {heavy * 1000:7.1f} ms  = {heavy / floor:.2f}x floor")


if __name__ == "__main__":
    main()
