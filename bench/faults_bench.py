"""Figures 7 and 8: fail fast and poll wisely, as whole `vm` processes at simulator time scale 1.

7 (fail fast): `vm list`, `vm cost`, `vm fleet status NAME` (a fleet with members at all three providers)
  and `vm fleet create --dry-run` with one provider refusing connections (its address points at a closed
  port) and with one provider hung (the simulators' ``hang`` fault: every call accepted, never answered),
  against the same command with every provider up (the floor, same run). Targets (issue 15): refused
  costs at most 1 s more; hung at most the deadline (VMOPS_DEADLINE, default 10 s) more, for the first
  command (VMOPS_BREAKER_SECONDS=0, so every run pays it); the next command with the circuit breaker
  open at most 1 s more. The views must exit 14 and show the others; the plan exits 0 with the provider
  under "Not used" (the fleet can be made elsewhere). With one provider down,
  `vm fleet destroy` of a fleet spread over the three: the reachable members go (exit 14), against the
  slowest direct delete-to-gone of the providers that stay up; target: at most 1 s more.
8 (poll wisely): `vm create` of one h100:1 VM at each provider: requests the simulator served (target
  <= 10, the create included) and wall time against the direct create-to-running floor.
"""

from __future__ import annotations

import json
import socket
import statistics
import tempfile
from pathlib import Path
from typing import Callable

from bench.floors import direct_create_delete
from bench.procs import VM, Run, run
from bench.result import Figure
from bench.simhost import SimHost
from vmops.catalogue import PROVIDERS
from vmops.config import load_config

REFUSED_TARGET_S = 1.0
DEADLINE_S = 10.0  # the default VMOPS_DEADLINE the `vm` processes run with (no variable is set)
BREAKER_TARGET_S = 1.0
SINGLE_CREATE_REQUESTS = 10
TYPES = {"crusoe": "h100.1x", "lambda": "gpu_1x_h100", "nebius": "gpu-h100-sxm/1gpu-16vcpu-200gb"}


def _dead_address(provider: str) -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}" if provider == "nebius" else f"http://127.0.0.1:{port}"


def _var(provider: str) -> str:
    return f"VMOPS_{provider.upper()}_{PROVIDERS[provider].url_var}"


def _median(cmd: list[str], env: dict[str, str], runs: int, want: int) -> tuple[float, Run]:
    samples: list[Run] = []
    for _ in range(runs):
        r = run(cmd, env, check=False, timeout=300)
        if r.exit_code != want:
            raise RuntimeError(f"`vm {' '.join(cmd[3:])}` exited {r.exit_code}, expected {want}: "
                               f"{r.stderr.strip().splitlines()[-1:] if r.stderr.strip() else ''}")
        samples.append(r)
    return statistics.median(s.wall_s for s in samples), samples[-1]


def run_faults(host: SimHost, runs: int, log: Callable[[str], None]) -> list[Figure]:
    figures: list[Figure] = []
    home = Path(tempfile.mkdtemp(prefix="vmops-bench-faults-"))
    env = {**host.env(home), "VMOPS_BREAKER_SECONDS": "0"}
    host.reset()
    slow_runs = max(1, min(runs, 3))  # a hung run costs the whole deadline
    status_fleet = _fleet_everywhere(env, "bench-status")
    commands = (  # name, command, providers to hang, exit code with one provider missing
        ("vm list", VM + ["list"], ("lambda", "nebius"), 14),
        ("vm cost", VM + ["cost"], ("lambda",), 14),
        ("vm fleet status", VM + ["fleet", "status", status_fleet], ("lambda",), 14),
        ("vm fleet create --dry-run", VM + ["fleet", "create", "--gpu", "h100", "--count", "6", "--name",
                                           "bench-plan", "--dry-run"], ("lambda",), 0),
    )
    for cmd_name, cmd, hung_at, missing_exit in commands:
        floor, _ = _median(cmd, env, runs, 0)
        down, _ = _median(cmd, {**env, _var("crusoe"): _dead_address("crusoe")}, runs, missing_exit)
        figures.append(Figure("7 fail fast", f"{cmd_name}, crusoe refusing connections", down, "s", floor,
                              f"{cmd_name}, every provider up", REFUSED_TARGET_S, target_on="over"))
        log(f"{cmd_name}: up {floor:.2f}s, crusoe down {down:.2f}s")
        for p in hung_at:
            host.add_fault(p, {"endpoint": "*", "kind": "hang"})
            try:
                hung, _ = _median(cmd, env, slow_runs, missing_exit)
                breaker_env = {**env, "VMOPS_BREAKER_SECONDS": "30"}
                run(cmd, breaker_env, check=False, timeout=300)  # opens the breaker
                after, last = _median(cmd, breaker_env, runs, missing_exit)
                if "skipped" not in last.stderr + last.stdout:
                    raise RuntimeError(f"{cmd_name} with {p} hung: the breaker did not skip it")
            finally:
                host.clear_faults(p)
                (home / "breaker" / f"{p}.json").unlink(missing_ok=True)
            figures.append(Figure("7 fail fast", f"{cmd_name}, {p} hung (first command)", hung, "s", floor,
                                  f"{cmd_name}, every provider up", DEADLINE_S, target_on="over",
                                  note=f"default deadline {DEADLINE_S:g} s; median of {slow_runs}"))
            figures.append(Figure("7 fail fast", f"{cmd_name}, {p} hung (next command, breaker open)", after, "s",
                                  floor, f"{cmd_name}, every provider up", BREAKER_TARGET_S, target_on="over"))
            log(f"{cmd_name}: {p} hung {hung:.2f}s, next command {after:.2f}s")
    run(VM + ["fleet", "destroy", status_fleet, "-y"], env, timeout=300)
    figures += _fleet_destroy_down(host, env, log)
    figures += _single_creates(host, env, log)
    return figures


def _fleet_everywhere(env: dict[str, str], name: str) -> str:
    """Make a 6-VM fleet with members at every provider (what `vm fleet status` then observes)."""
    made = run(VM + ["fleet", "create", "--gpu", "h100", "--count", "6", "--name", name, "--policy", "spread",
                     "--json"], env, timeout=300)
    where = {m["provider"] for m in json.loads(made.stdout)["members"] if m["status"] == "running"}
    if where != set(PROVIDERS):
        raise RuntimeError(f"fleet {name} landed at {sorted(where)}; need all of {sorted(PROVIDERS)}")
    return name


def _spread_fleet(env: dict[str, str], name: str, at: str) -> list[str]:
    """Make a 6-VM fleet that has members at ``at`` and elsewhere; returns the other providers it used."""
    made = run(VM + ["fleet", "create", "--gpu", "h100", "--count", "6", "--name", name, "--json"], env, timeout=300)
    where = {m["provider"] for m in json.loads(made.stdout)["members"] if m["status"] == "running"}
    if at not in where or len(where) < 2:
        raise RuntimeError(f"fleet {name} landed at {sorted(where)}; need {at} and another provider")
    return sorted(where - {at})


def _fleet_destroy_down(host: SimHost, env: dict[str, str], log: Callable[[str], None]) -> list[Figure]:
    host.reset()
    cfg = load_config(env)
    floors = direct_create_delete(cfg, ["crusoe", "lambda", "nebius"])
    up = _spread_fleet(env, "bench-down", "crusoe")
    down = run(VM + ["fleet", "destroy", "bench-down"], {**env, _var("crusoe"): _dead_address("crusoe")},
               check=False, timeout=300)
    if down.exit_code != 14:
        raise RuntimeError(f"vm fleet destroy with crusoe down exited {down.exit_code}, expected 14")
    run(VM + ["fleet", "destroy", "bench-down"], env, timeout=300)  # crusoe back: the rest goes
    floor = max(floors[p][1] for p in up)
    log(f"fleet destroy with crusoe down: {down.wall_s:.2f}s (floor {floor:.2f}s)")
    out = [Figure("7 fail fast", "vm fleet destroy (6 VMs), crusoe refusing connections", down.wall_s, "s", floor,
                  f"direct delete-to-gone at {max(up, key=lambda p: floors[p][1])}", REFUSED_TARGET_S,
                  target_on="over", note="exit 14; the crusoe members stay recorded as destroying")]
    # The same with Nebius hung (accepts, never answers): the others go, Nebius costs one deadline.
    up = _spread_fleet(env, "bench-hung", "nebius")
    host.add_fault("nebius", {"endpoint": "*", "kind": "hang"})
    try:
        hung = run(VM + ["fleet", "destroy", "bench-hung", "-y"], {**env, "VMOPS_BREAKER_SECONDS": "0"},
                   check=False, timeout=600)
    finally:
        host.clear_faults("nebius")
    if hung.exit_code != 14:
        raise RuntimeError(f"vm fleet destroy with nebius hung exited {hung.exit_code}, expected 14")
    run(VM + ["fleet", "destroy", "bench-hung", "-y"], env, timeout=300)
    floor = max(floors[p][1] for p in up)
    log(f"fleet destroy with nebius hung: {hung.wall_s:.2f}s (floor {floor:.2f}s)")
    out.append(Figure("7 fail fast", "vm fleet destroy (6 VMs), nebius hung", hung.wall_s, "s", floor,
                      "direct delete-to-gone of the providers still up", DEADLINE_S, target_on="over",
                      note=f"default deadline {DEADLINE_S:g} s; exit 14; the nebius members stay recorded"))
    return out


def _single_creates(host: SimHost, env: dict[str, str], log: Callable[[str], None]) -> list[Figure]:
    host.reset()
    cfg = load_config(env)
    floors = direct_create_delete(cfg, list(TYPES))
    out: list[Figure] = []
    for p, native in TYPES.items():
        c0, m0 = host.counts_and_mutating()
        r = run(VM + ["create", "--provider", p, "--gpu", native, "--name", f"bench-one-{p}"], env, timeout=300)
        c1, m1 = host.counts_and_mutating()
        total, mut = c1[p] - c0[p], m1[p] - m0[p]
        out.append(Figure("8 single VM", f"vm create at {p}: requests", total, "requests", 1.0,
                          "the create itself", SINGLE_CREATE_REQUESTS, target_on="value",
                          extra={"mutating": mut, "reading": total - mut}))
        out.append(Figure("8 single VM", f"vm create at {p}: time", r.wall_s, "s", floors[p][0],
                          f"direct create-to-running at {p}", None, note="reported; no target in the issue"))
        log(f"vm create at {p}: {total} requests ({mut} mutating), {r.wall_s:.2f}s (floor {floors[p][0]:.2f}s)")
    return out
