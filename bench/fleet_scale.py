"""Benchmark: a large fleet across the three simulators, against a floor measured in the same run.

    .venv/bin/python bench/fleet_scale.py [--count 300] [--scale 0.02]

Floor: the same number of VMs created straight through the adapters (a plain thread pool, create with
wait=False, one batched wait per provider) with no planning, no state store and no failover. The
fleet manager does the same work plus scheduling, write-ahead records and progress; the ratio is what
that bookkeeping costs. Also reported: requests per VM at each simulator (waiting must cost one list
call per tick per provider, not one get per VM), and peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmops.config import load_config  # noqa: E402
from vmops.fleet.manager import FleetManager, FleetSpec  # noqa: E402
from vmops.model import CreateRequest, GpuShape, State  # noqa: E402
from vmops.providers.base import Timing  # noqa: E402
from vmops.session import Session  # noqa: E402
from vmops.sim.common import SimOptions  # noqa: E402
from vmops.sim.crusoe import CrusoeSim  # noqa: E402
from vmops.sim.lambdalabs import LambdaSim  # noqa: E402
from vmops.sim.nebius import NebiusSim  # noqa: E402

BIG = 100_000
SCENARIO = {
    "crusoe": {"on_demand": {loc: {"h100.1x": BIG} for loc in ("us-east1", "us-west1", "eu-west1")}},
    "lambda": {"on_demand": {reg: {"gpu_1x_h100": BIG} for reg in ("us-west-1", "us-east-1", "eu-west-1")}},
    "nebius": {"on_demand": {"project-e1a2b3c4": {"gpu-h100-sxm/1gpu-16vcpu-200gb": BIG}}},
}


def start_sims(scale: float) -> dict:
    sims = {"crusoe": CrusoeSim(SimOptions(time_scale=scale, scenario=SCENARIO["crusoe"])),
            "lambda": LambdaSim(SimOptions(time_scale=scale, scenario=SCENARIO["lambda"])),
            "nebius": NebiusSim(SimOptions(time_scale=scale, scenario=SCENARIO["nebius"]))}
    for s in sims.values():
        s.start(0)
    return sims


def session_for(sims: dict, home: str, poll: float) -> Session:
    env = {"VMOPS_HOME": home, "VMOPS_POLL_INTERVAL": str(poll), "VMOPS_OP_TIMEOUT": "300",
           "VMOPS_CRUSOE_URL": sims["crusoe"].address, "VMOPS_LAMBDA_URL": sims["lambda"].address,
           "VMOPS_NEBIUS_ENDPOINT": sims["nebius"].address}
    return Session(load_config(env), timing=Timing(poll_interval=poll, op_timeout=300))


def floor_run(session: Session, count: int) -> float:
    shape = GpuShape("h100", 1)
    names = list(session.provider_names())
    t0 = time.perf_counter()
    jobs = [(names[i % len(names)], i) for i in range(count)]

    def make(job: tuple[str, int]):
        pname, i = job
        adapter = session.provider(pname)
        native = adapter.catalogue.type_for(shape).name
        return pname, adapter.create(CreateRequest(name=f"floor-{i:04d}", native_type=native), wait=False)

    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(make, jobs))
    by_provider: dict[str, list[str]] = {}
    for pname, inst in made:
        by_provider.setdefault(pname, []).append(inst.id)
    with ThreadPoolExecutor(len(by_provider)) as pool:
        list(pool.map(lambda kv: session.provider(kv[0]).wait_for({i: frozenset({State.RUNNING}) for i in kv[1]}),
                      by_provider.items()))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--scale", type=float, default=0.02)
    ap.add_argument("--poll", type=float, default=0.05)
    args = ap.parse_args()
    sims = start_sims(args.scale)
    try:
        with tempfile.TemporaryDirectory() as home:
            with session_for(sims, home, args.poll) as s:
                s.instances()  # warm up connections and imports so the floor measures only the work
                floor = floor_run(s, args.count)
            for sim in sims.values():
                sim.reset()
            with session_for(sims, home, args.poll) as s, FleetManager(s) as mgr:
                t0 = time.perf_counter()
                result = mgr.create(FleetSpec(GpuShape("h100", 1), args.count, "bench", None, "spread").validated())
                fleet_s = time.perf_counter() - t0
                running = sum(1 for m in result.members if m.status.value == "running")
                counts = {n: sim.requests.counts() for n, sim in sims.items()}
                t0 = time.perf_counter()
                mgr.destroy("bench")
                destroy_s = time.perf_counter() - t0
    finally:
        for sim in sims.values():
            sim.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fleet of {args.count} x h100:1 over 3 simulators (time scale {args.scale:g}, poll {args.poll:g}s)")
    print(f"  floor (adapters + thread pool):  {floor:7.2f} s = 1.00x")
    print(f"  vm fleet create:                  {fleet_s:7.2f} s = {fleet_s / floor:.2f}x floor  ({running} running)")
    print(f"  vm fleet destroy:                 {destroy_s:7.2f} s = {destroy_s / floor:.2f}x floor")
    for n, c in counts.items():
        vms = max(1, sum(1 for m in result.members if m.provider == n))
        total = sum(c.values())
        print(f"  {n:7s} {total:5d} requests for {vms} VMs = {total / vms:.2f} per VM  {dict(sorted(c.items()))}")
    print(f"  peak RSS of this process (simulators included): {rss_mib:.0f} MiB")
    if running != args.count:
        raise SystemExit(f"only {running} of {args.count} running")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
