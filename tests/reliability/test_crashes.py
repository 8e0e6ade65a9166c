"""Crashes and interrupts of the real `vm` program, with numbers.

Each trial starts `vm fleet create` or `vm fleet destroy` as a subprocess against the simulators, kills it
with SIGKILL at a seeded moment (a random delay after start, or right after the k-th create/delete request
the providers saw), then runs `vm fleet reconcile F` and `vm fleet destroy F` and checks at the providers
that no VM carrying the fleet's name is left and that no other VM (seed VMs included) changed. Ctrl-C
(SIGINT) trials check the documented rollback. Seeds come from tests/reliability/budget.py; a failing trial
names its seed (``-k seed-3007`` reruns it).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Mapping

import pytest

from vmops.sim.base import Simulator
from vmops.sim.common import Fault
from vmops.state import FleetState, Store

from tests.conftest import both_dialects
from tests.reliability.fleetcheck import dialect_tag as _tag
from tests.reliability import budget, summary
from tests.reliability.fleetcheck import boot_disks_left, changed, clear_faults, destroyed_unasked, fleet_at_providers, instances, others, rng_for
from tests.reliability.rig import close, kill, manager, spec, start, state_path, vm, wait_until

CREATES = {"crusoe": "create_instance", "lambda": "launch", "nebius": "InstanceService/Create"}
DELETES = {"crusoe": "delete_instance", "lambda": "terminate", "nebius": "InstanceService/Delete"}
#: How long after a kill the creates/deletes the dead process had already sent may still land.
SETTLE = 0.4


def _count(sims: Mapping[str, Simulator], endpoints: Mapping[str, str]) -> int:
    return sum(s.requests.count(endpoints[n]) for n, s in sims.items())


def _total(sims: Mapping[str, Simulator]) -> int:
    return sum(sum(s.requests.counts().values()) for s in sims.values())


def _kill_at(proc, sims, rng, endpoints: Mapping[str, str], n: int) -> str:
    """SIGKILL ``proc`` at a seeded moment; return how the moment was chosen (for the scoreboard).

    One in ten kills is a plain delay from the start (mostly interpreter start-up and planning); the rest
    are placed where the work happens: a delay after the program's first request to any provider, or right
    after the k-th create/delete request the providers received (counted from now).
    """
    base, requests = _count(sims, endpoints), _total(sims)
    roll = rng.random()
    if roll < 0.1:
        delay = rng.uniform(0.05, 1.0)
        time.sleep(delay)
        how = f"{delay:.2f}s after start"
    elif roll < 0.55:
        delay = rng.uniform(0.0, 0.6)
        wait_until(lambda: _total(sims) > requests or proc.poll() is not None, timeout=60)
        time.sleep(delay)
        how = f"{delay:.2f}s after its first request"
    else:
        k = rng.randint(1, n)
        extra = rng.uniform(0.0, 0.08)
        reached = wait_until(lambda: _count(sims, endpoints) - base >= k or proc.poll() is not None, timeout=60)
        time.sleep(extra)
        how = f"after request {k}/{n} (+{extra * 1000:.0f}ms){'' if reached else ' (not reached)'}"
    if proc.poll() is not None:
        how += f"; it had already exited {proc.returncode}"
    kill(proc)
    return how


def _left_by_kill(vm_env: Mapping[str, str], config, name: str) -> str:
    """What the kill left: the record (fleet state, member statuses) and the VMs at the providers."""
    at = fleet_at_providers(config, name)
    if not state_path(vm_env).exists():
        return f"no state file; {len(at.vms)} VM(s)"
    store = Store(state_path(vm_env))
    try:
        f = store.find_fleet(name)
        if f is None:
            return f"no fleet row; {len(at.vms)} VM(s)"
        statuses = Counter(m.status.value for m in store.members(f.id))
    finally:
        store.close()
    return f"record {f.state.value} {dict(statuses)}; {len(at.vms)} VM(s), {len(at.orphans)} unrecorded"


def _finish(vm_env: Mapping[str, str], config, name: str) -> tuple[list[str], int, int]:
    """`vm fleet reconcile F` then `vm fleet destroy F`; returns problems, duplicates and orphans seen after
    the reconcile (before the destroy)."""
    problems: list[str] = []
    store = Store(state_path(vm_env)) if state_path(vm_env).exists() else None
    known = store.find_fleet(name) if store is not None else None
    if store is not None:
        store.close()
    if known is None:
        # Killed before the fleet row was written: the write-ahead rule means nothing can exist.
        return problems, 0, 0
    r = vm(vm_env, "fleet", "reconcile", name)
    if r.code not in (0, 14) or "Traceback" in r.err:
        problems.append(f"reconcile exit {r.code}: {r.err.strip()[-300:]}")
    mid = fleet_at_providers(config, name)
    if mid.orphans:
        problems.append(f"after reconcile: {mid.summary()}")
    d = vm(vm_env, "fleet", "destroy", name)
    if d.code != 0:
        problems.append(f"destroy exit {d.code}: {d.err.strip()[-300:]}")
    return problems, mid.duplicates, len(mid.orphans)


def _verdict(scenario: str, seed: int, how: str, config, name: str, before, problems: list[str],
             duplicates: int, sims: Mapping[str, Simulator]) -> None:
    after = instances(config)
    left = fleet_at_providers(config, name, after)
    now = others(after, [name])
    diff = changed(before, now)
    if left.vms:
        problems.append(f"left: {left.summary()}")
    disks = boot_disks_left(sims, name)
    if diff:
        problems.append("other VMs changed: " + "; ".join(diff[:3]))
    if duplicates:
        problems.append(f"{duplicates} duplicate(s) after reconcile")
    ok = not problems and not disks
    summary.record(scenario, passed=ok, leaked=len(left.vms), duplicates=duplicates,
                   detail=f"seed {seed} ({how}): " + ("; ".join(problems + [f"boot disks left: {disks}"] * bool(disks))
                                                      or "ok"),
                   unasked=destroyed_unasked(before, now))
    assert not left.vms, f"seed {seed} ({how}): {left.summary()}"
    assert not diff, f"seed {seed} ({how}): {diff}"
    assert duplicates == 0 and not problems, f"seed {seed} ({how}): {problems}"
    assert not disks, f"seed {seed} ({how}): boot disks left {disks}"


def _maybe_slow(sims, rng) -> None:
    """Half the trials run with slower provider answers, so kills land with requests in flight."""
    if rng.random() < 0.5:
        lat = rng.choice([0.02, 0.05, 0.1])
        for s in sims.values():
            s.faults.add(Fault("*", "latency", latency_s=lat))


# ---- SIGKILL during `vm fleet create` -----------------------------------------------------------------------
@both_dialects
@pytest.mark.parametrize("seed", budget.seeds(100, 12, base=3000), ids=lambda s: f"seed-{s}")
def test_sigkill_during_fleet_create(sims, vm_env, config, seed, dialect) -> None:
    rng = rng_for(seed)
    name = f"kc{seed}"
    n = rng.choice([3, 6, 9])
    before = others(instances(config), [name])
    _maybe_slow(sims, rng)
    proc = start(vm_env, "fleet", "create", "--gpu", "h100", "--count", str(n), "--name", name)
    how = _kill_at(proc, sims, rng, CREATES, n)
    time.sleep(SETTLE)
    clear_faults(sims)
    how += "; " + _left_by_kill(vm_env, config, name)
    problems, dups, _ = _finish(vm_env, config, name)
    _verdict(f"SIGKILL during fleet create, then reconcile + destroy{_tag(dialect)}", seed, how, config, name, before,
             problems, dups, sims)


# ---- SIGKILL during `vm fleet destroy` ----------------------------------------------------------------------
@both_dialects
@pytest.mark.parametrize("seed", budget.seeds(100, 12, base=4000), ids=lambda s: f"seed-{s}")
def test_sigkill_during_fleet_destroy(sims, vm_env, config, seed, dialect) -> None:
    rng = rng_for(seed)
    name = f"kd{seed}"
    n = rng.choice([3, 6, 9])
    mgr = manager(config)
    try:
        made = mgr.create(spec("h100", n, name))
    finally:
        close(mgr)
    assert made.fleet.state is FleetState.ACTIVE
    before = others(instances(config), [name])
    _maybe_slow(sims, rng)
    proc = start(vm_env, "fleet", "destroy", name)
    how = _kill_at(proc, sims, rng, DELETES, n)
    time.sleep(SETTLE)
    clear_faults(sims)
    how += "; " + _left_by_kill(vm_env, config, name)
    problems, dups, _ = _finish(vm_env, config, name)
    _verdict(f"SIGKILL during fleet destroy, then reconcile + destroy{_tag(dialect)}", seed, how, config, name, before,
             problems, dups, sims)


# ---- Ctrl-C during `vm fleet create` -----------------------------------------------------------------------
@pytest.mark.parametrize("dialect,seed", budget.dialect_seeds(20, 4, base=5000, cloud=(12, 4)))
def test_ctrl_c_during_fleet_create_rolls_back(sims, vm_env, config, seed, dialect) -> None:
    """SIGINT once while creates are in flight: no new creates, what was made is rolled back, exit 130, the
    fleet is recorded failed. Every fourth trial presses Ctrl-C twice (the second during the rollback): the
    fleet stays recorded and `vm fleet destroy` finishes it."""
    rng = rng_for(seed)
    name = f"ki{seed}"
    n = rng.choice([4, 6, 8])
    twice = seed % 4 == 3
    before = others(instances(config), [name])
    for s in sims.values():  # slow enough that the interrupt lands while creates are in flight
        s.faults.add(Fault("*", "latency", latency_s=rng.choice([0.05, 0.1])))
    proc = start(vm_env, "fleet", "create", "--gpu", "h100", "--count", str(n), "--name", name)
    k = rng.randint(1, n - 1)
    wait_until(lambda: _count(sims, CREATES) >= k or proc.poll() is not None, timeout=60)
    proc.send_signal(signal.SIGINT)
    how = f"SIGINT after create request {k}/{n}"
    if twice:
        deletes = _count(sims, DELETES)
        wait_until(lambda: _count(sims, DELETES) > deletes or proc.poll() is not None, timeout=60)
        how += ", again at the first delete"
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    clear_faults(sims)
    if twice:
        how += " (landed during the rollback)" if "interrupted again" in err else " (too late: already done)"
    problems: list[str] = []
    if proc.returncode != 130:
        problems.append(f"exit {proc.returncode}")
    if "Traceback" in err:
        problems.append("traceback: " + err.strip()[-1500:])
    store = Store(state_path(vm_env))
    try:
        state = store.get_fleet(name).state
    finally:
        store.close()
    if twice and "interrupted again" in err:
        if state is not FleetState.FAILED:
            problems.append(f"fleet {state.value} after a second Ctrl-C")
        d = vm(vm_env, "fleet", "destroy", name)
        if d.code != 0:
            problems.append(f"destroy exit {d.code}")
    elif "rolled back" not in err or state is not FleetState.FAILED:
        problems.append(f"no rollback reported (fleet {state.value}): {err.strip()[-300:]}")
    _verdict(f"Ctrl-C during fleet create: rollback{_tag(dialect)}", seed, how, config, name, before, problems, 0, sims)


#: Longest a `vm fleet create` may take to exit after one Ctrl-C (rollback included) before it counts as hung.
CTRL_C_DEADLINE = 60.0


@pytest.mark.parametrize("dialect,seed", budget.dialect_seeds(full=60, ci=12, base=7000, cloud=(20, 3)))
def test_ctrl_c_at_any_point_finishes_under_load(sims, vm_env, config, seed, dialect) -> None:
    """SIGINT at a seeded moment anywhere in a create (start-up, planning, claiming, creating, waiting),
    with a CPU hog running beside it: the process always exits (130, or 0 if it had already finished),
    never with a traceback, within a deadline; and `vm fleet destroy` then leaves nothing behind. Ctrl-C is
    a request acted on at safe points, so it can never leave a lock held (the hang this test was made for)."""
    import subprocess
    import sys

    rng = rng_for(seed)
    name = f"kp{seed}"
    before = others(instances(config), [name])
    for s in sims.values():
        s.faults.add(Fault("*", "latency", latency_s=rng.choice([0.0, 0.02, 0.05])))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    problems: list[str] = []
    try:
        proc = start(vm_env, "fleet", "create", "--gpu", "h100", "--count", str(rng.choice([3, 6])), "--name", name)
        delay = rng.uniform(0.25, 2.5)  # before ~0.1 s the interpreter itself is still starting (not vmops)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        how = f"SIGINT {delay:.2f}s after start"
        try:
            _, err = proc.communicate(timeout=CTRL_C_DEADLINE)
        except subprocess.TimeoutExpired:
            kill(proc)
            _, err = proc.communicate()
            problems.append(f"still running {CTRL_C_DEADLINE:g}s after Ctrl-C")
    finally:
        hog.kill()
        hog.wait()
    clear_faults(sims)
    # -2: the signal landed while the interpreter was shutting down after a finished create (Python restores
    # the default SIGINT action at finalization); the create itself had completed.
    if proc.returncode not in (0, 130, -signal.SIGINT) and not problems:
        problems.append(f"exit {proc.returncode}: {err.strip()[-300:]}")
    if "Traceback" in err:
        problems.append("traceback: " + err.strip()[-1500:])
    d = vm(vm_env, "fleet", "destroy", name)
    if d.code not in (0, 5):  # 5: the interrupt came before anything was recorded
        problems.append(f"destroy exit {d.code}: {d.err.strip()[-300:]}")
    _verdict(f"Ctrl-C at any point under CPU load: exits in time{_tag(dialect)}", seed, how, config, name, before,
             problems, 0, sims)
