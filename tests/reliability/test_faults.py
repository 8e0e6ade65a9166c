"""Reliability under provider faults, with numbers: transient errors, lost responses, failures after
acceptance, a provider down for a whole command, and operations that never complete.

Every scenario runs against the three simulators on loopback with their fault knobs, checks the outcome at
the providers themselves (tests/reliability/fleetcheck.py), records it on the scoreboard
(tests/reliability/summary.py) and asserts the same numbers. Seeds come from tests/reliability/budget.py;
a failing trial names its seed, and ``pytest -k 'seed-1007'`` reruns it.
"""

from __future__ import annotations

import pytest

from vmops.fleet.report import FleetCreateFailed, FleetDestroyIncomplete
from vmops.sim.common import Fault
from vmops.state import FleetState, MemberStatus

from tests.reliability import budget, summary
from tests.reliability.fleetcheck import clear_faults, fleet_at_providers, seed_faults
from tests.reliability.rig import REQUEST_TIMEOUT, SLOW, close, manager, spec, transient_faults

FLEET = 16


# ---- transient errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", budget.seeds(50, 50), ids=lambda s: f"seed-{s}")
def test_transient_faults_fleet_of_16(sims, config, seed) -> None:
    """20% of all provider calls fail (5xx, 429 + Retry-After, UNAVAILABLE/INTERNAL/RESOURCE_EXHAUSTED,
    answers slower than the client's deadline): the fleet still ends with exactly 16 running, no VM made
    twice, nothing unrecorded; destroy (retried while it reports members left) leaves nothing."""
    name = f"tf{seed}"
    seed_faults(sims, seed)
    transient_faults(sims, 0.20)
    mgr = manager(config, request_timeout=REQUEST_TIMEOUT)
    problems: list[str] = []
    try:
        result = mgr.create(spec("h100", FLEET, name))
        if result.fleet.state is not FleetState.ACTIVE:
            problems.append(f"fleet {result.fleet.state.value}")
        clear_faults(sims)
        after_create = fleet_at_providers(config, name)
        transient_faults(sims, 0.20)
        destroy_runs = 0
        for destroy_runs in range(1, 6):
            try:
                mgr.destroy(name)
                break
            except FleetDestroyIncomplete:
                continue
    finally:
        close(mgr)
    clear_faults(sims)
    after_destroy = fleet_at_providers(config, name)
    running, dups, orphans = len(after_create.running), after_create.duplicates, len(after_create.orphans)
    if running != FLEET:
        problems.append(f"{running} running at the providers")
    if dups or orphans:
        problems.append(after_create.summary())
    if after_destroy.vms:
        problems.append(f"after destroy: {after_destroy.summary()}")
    leaked = orphans + len(after_destroy.vms)
    ok = not problems
    summary.record("transient faults 20%: fleet of 16", passed=ok, leaked=leaked, duplicates=dups,
                   detail=f"seed {seed}: " + ("; ".join(problems) or f"ok, destroy runs {destroy_runs}"))
    assert (running, dups, orphans, len(after_destroy.vms)) == (FLEET, 0, 0, 0), f"seed {seed}: {problems}"
    assert ok, f"seed {seed}: {problems}"
    recorded = {(v.provider, v.id) for v in after_create.vms}
    assert recorded == set(after_create.recorded_live), f"seed {seed}: record and providers differ"
    assert all(s is MemberStatus.RUNNING for s in after_create.recorded_live.values())


# ---- lost responses ------------------------------------------------------------------------------------
CREATE = {"crusoe": "create_instance", "lambda": "launch", "nebius": "InstanceService/Create"}
LIST = {"crusoe": "list_instances", "lambda": "list_instances", "nebius": "InstanceService/List"}


def _one_provider(config, provider: str, **kw):
    return manager(config, env={"VMOPS_PROVIDERS": provider}, **kw)


@pytest.mark.parametrize("how", ["lose_response", "timeout"])
@pytest.mark.parametrize("provider", ["crusoe", "lambda", "nebius"])
def test_lost_create_answers_make_exactly_one_vm_per_member(sims, config, provider, how) -> None:
    """The provider commits each of the first creates and the answer is lost (the connection drops after
    the commit, or the answer comes after the client's deadline and the VM lands late): vmops finds each VM
    by its name (Nebius: by its idempotency key) and ends with exactly one VM per member."""
    name = f"lost-{provider[:3]}-{how[:4]}"
    count = 2 if provider == "lambda" else 3  # the Lambda simulator has two 1x H100 on demand
    sim = sims[provider]
    if how == "lose_response":
        sim.faults.add(Fault(CREATE[provider], "lose_response", nth=tuple(range(1, count + 1))))
    else:
        sim.faults.add(Fault(CREATE[provider], "latency", latency_s=SLOW, nth=tuple(range(1, count + 1))))
    mgr = _one_provider(config, provider, request_timeout=REQUEST_TIMEOUT)
    try:
        keyed = mgr.provider(provider).capabilities.idempotency_key
        result = mgr.create(spec("h100", count, name))
        creates = sim.requests.count(CREATE[provider])
        clear_faults(sims)
        at = fleet_at_providers(config, name)
        mgr.destroy(name)
    finally:
        close(mgr)
    left = fleet_at_providers(config, name).vms
    ok = (result.fleet.state is FleetState.ACTIVE and len(at.running) == count and at.duplicates == 0
          and not at.orphans and not left)
    summary.record(f"lost create answers ({how}): {provider}", passed=ok, leaked=len(at.orphans) + len(left),
                   duplicates=at.duplicates, detail=f"{at.summary()}; {creates} create request(s)")
    assert at.duplicates == 0 and not at.orphans, at.summary()
    assert len(at.running) == count and len({v.name for v in at.vms}) == count, at.summary()
    assert set(at.recorded_live) == {(v.provider, v.id) for v in at.vms}
    if not keyed:  # without an idempotency key a create may be sent again only once nothing was found
        assert creates == count, f"{creates} create requests for {count} members: a lost create was sent again"
    assert not left and ok


@pytest.mark.parametrize("provider", ["crusoe", "lambda", "nebius"])
def test_lost_answer_while_the_provider_cannot_be_listed(sims, config, provider) -> None:
    """The create is committed, its answer lost, and every lookup that follows fails: vmops cannot know,
    so it keeps the member on record (requested, no id). Either the fleet is made by another member (the
    provider still takes creates) or the create fails saying this member is left (exit 14); either way
    `fleet destroy`, once the provider answers, finds the VM by its name and removes it."""
    name = f"blind-{provider[:3]}"
    sim = sims[provider]
    sim.faults.add(Fault(CREATE[provider], "lose_response", nth=(1,)))
    # every list after the create fails (the adapter's and the fleet's lookups, with their retries)
    sim.faults.add(Fault(LIST[provider], "error", status=503, grpc_code="UNAVAILABLE", nth=tuple(range(2, 200))))
    mgr = _one_provider(config, provider, request_timeout=REQUEST_TIMEOUT)
    err: FleetCreateFailed | None = None
    try:
        try:
            mgr.create(spec("h100", 1, name))
        except FleetCreateFailed as e:
            err = e
        clear_faults(sims)
        before = fleet_at_providers(config, name)
        out = mgr.destroy(name)
    finally:
        close(mgr)
    after = fleet_at_providers(config, name)
    lost = f"vmops-{name}-001"
    said = err is None or (err.exit_code == 14 and [u.member.name for u in err.undestroyed] == [lost]
                           and "outcome unknown" in str(err))
    ok = said and before.unresolved == 1 and lost in {v.name for v in before.vms} and not after.vms
    summary.record(f"lost create answer, provider unreadable: {provider}", passed=ok, leaked=len(after.vms),
                   duplicates=before.duplicates,
                   detail=f"create {'failed' if err else 'made the fleet'}; after create: {before.summary()}")
    assert said, str(err)
    assert before.unresolved == 1 and lost in {v.name for v in before.vms}, before.summary()
    assert before.duplicates == 0
    assert not after.vms and out.fleet.state is FleetState.DESTROYED and ok


def test_member_found_late_is_trimmed_back_to_the_fleet_count(sims, config) -> None:
    """As above at one of three providers: the fleet fails over and is active, with one member unresolved.
    `fleet reconcile` then finds that VM by its name: one VM too many, so the newest member is destroyed and
    the fleet has exactly its count."""
    name = "late-trim"
    sims["lambda"].faults.add(Fault("launch", "lose_response", nth=(1,)))
    sims["lambda"].faults.add(Fault("list_instances", "error", status=503, nth=tuple(range(2, 200))))
    mgr = manager(config, request_timeout=REQUEST_TIMEOUT)
    try:
        result = mgr.create(spec("h100", 3, name))
        unresolved = [m for m in result.members if m.status is MemberStatus.REQUESTED and not m.instance_id]
        clear_faults(sims)
        before = fleet_at_providers(config, name)
        view = mgr.reconcile(name)
        after = fleet_at_providers(config, name)
        mgr.destroy(name)
    finally:
        close(mgr)
    left = fleet_at_providers(config, name).vms
    ok = (result.fleet.state is FleetState.ACTIVE and len(after.running) == 3 and after.duplicates == 0
          and not after.orphans and not left and view.fleet.state is FleetState.ACTIVE)
    summary.record("lost create answer found late: trimmed to count", passed=ok,
                   leaked=len(after.orphans) + len(left), duplicates=after.duplicates,
                   detail=f"after create: {before.summary()}; after reconcile: {after.summary()}")
    assert [m.provider for m in unresolved] == ["lambda"], [(m.name, m.status.value) for m in result.members]
    assert len(before.vms) == 4 and before.unresolved == 1, before.summary()
    assert any("beyond the fleet's count" in c for c in view.changes), view.changes
    assert len(after.running) == 3 and after.duplicates == 0 and not after.orphans, after.summary()
    assert not left and ok
