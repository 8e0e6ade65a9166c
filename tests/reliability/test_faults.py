"""Reliability under provider faults, with numbers: transient errors, lost responses, failures after
acceptance, a provider down for a whole command, and operations that never complete.

Every scenario runs against the three simulators on loopback with their fault knobs, checks the outcome at
the providers themselves (tests/reliability/fleetcheck.py), records it on the scoreboard
(tests/reliability/summary.py) and asserts the same numbers. Seeds come from tests/reliability/budget.py;
a failing trial names its seed, and ``pytest -k 'seed-1007'`` reruns it.
"""

from __future__ import annotations

import pytest

from vmops.errors import OperationTimeout
from vmops.fleet.report import FleetCreateFailed, FleetDestroyIncomplete
from vmops.sim.common import Fault
from vmops.state import FleetState, MemberStatus, Store

from tests.conftest import DIALECTS, both_dialects
from tests.reliability import budget, summary
from tests.reliability.fleetcheck import dialect_tag as _tag
from tests.fleet.conftest import dead_url
from tests.reliability.fleetcheck import (
    boot_disks_left,
    clear_faults,
    destroyed_unasked,
    fleet_at_providers,
    instances,
    others,
    seed_faults,
)
from tests.reliability.rig import REQUEST_TIMEOUT, SLOW, close, manager, spec, state_path, transient_faults, vm

FLEET = 16


# ---- transient errors ------------------------------------------------------------------------------------
def test_fault_draws_follow_the_seed(sims) -> None:
    """What makes a failing trial's seed worth naming: the same seed draws the same faults."""
    def draws(seed: int) -> list[bool]:
        seed_faults(sims, seed)
        clear_faults(sims)
        sims["crusoe"].faults.add(Fault("*", "error", rate=0.2))
        return [bool(sims["crusoe"].faults.match("list_instances", i)) for i in range(1, 201)]

    a, b, c = draws(7), draws(7), draws(8)
    clear_faults(sims)
    assert a == b and a != c
    assert 20 < sum(a) < 60  # about 20% of 200


#: 50 seeded runs take ~100-170 s on 2 shared cores (over the ~90 s a ci run may spend), so ci runs 12 (and 3 of
#: them on the cloud dialect).
@pytest.mark.parametrize("dialect,seed", budget.dialect_seeds(50, 12, cloud=(20, 3)))
def test_transient_faults_fleet_of_16(sims, config, seed, dialect) -> None:
    """20% of all provider calls fail (5xx, 429 + Retry-After, UNAVAILABLE/INTERNAL/RESOURCE_EXHAUSTED,
    answers slower than the client's deadline): the fleet still ends with exactly 16 running, no VM made
    twice, nothing unrecorded; destroy (retried while it reports members left) leaves nothing."""
    name = f"tf{seed}"
    seed_faults(sims, seed)
    bystanders = others(instances(config), [name])  # every other VM: none may be touched
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
    disks = boot_disks_left(sims, name)
    running, dups, orphans = len(after_create.running), after_create.duplicates, len(after_create.orphans)
    if running != FLEET:
        problems.append(f"{running} running at the providers")
    if dups or orphans:
        problems.append(after_create.summary())
    if after_destroy.vms:
        problems.append(f"after destroy: {after_destroy.summary()}")
    if disks:
        problems.append(f"boot disks left: {disks}")
    leaked = orphans + len(after_destroy.vms)
    unasked = destroyed_unasked(bystanders, others(instances(config), [name]))
    if unasked:
        problems.append(f"{unasked} VM(s) outside the fleet destroyed")
    ok = not problems
    summary.record(f"transient faults 20%: fleet of 16{_tag(dialect)}", passed=ok, leaked=leaked, duplicates=dups,
                   detail=f"seed {seed}: " + ("; ".join(problems) or f"ok, destroy runs {destroy_runs}"),
                   unasked=unasked)
    assert (running, dups, orphans, len(after_destroy.vms)) == (FLEET, 0, 0, 0), f"seed {seed}: {problems}"
    assert ok, f"seed {seed}: {problems}"
    recorded = {(v.provider, v.id) for v in after_create.vms}
    assert recorded == set(after_create.recorded_live), f"seed {seed}: record and providers differ"
    assert all(s is MemberStatus.RUNNING for s in after_create.recorded_live.values())


# ---- lost responses ------------------------------------------------------------------------------------
CREATE = {"crusoe": "create_instance", "lambda": "launch", "nebius": "InstanceService/Create"}
LIST = {"crusoe": "list_instances", "lambda": "list_instances", "nebius": "InstanceService/List"}


#: (provider, dialect) pairs: every provider in both dialects
PROVIDER_DIALECTS = [(p, d) for p in ("crusoe", "lambda", "nebius") for d in DIALECTS]


def _one_provider(config, provider: str, **kw):
    return manager(config, env={"VMOPS_PROVIDERS": provider}, **kw)


@pytest.mark.parametrize("how", ["lose_response", "timeout"])
@pytest.mark.parametrize("provider,dialect", PROVIDER_DIALECTS)
def test_lost_create_answers_make_exactly_one_vm_per_member(sims, config, provider, dialect, how) -> None:
    """The provider commits each of the first creates and the answer is lost (the connection drops after
    the commit, or the answer comes after the client's deadline and the VM lands late): vmops finds each VM
    by its name (Nebius: by its idempotency key) and ends with exactly one VM per member."""
    name = f"lost-{provider[:3]}-{dialect[:3]}-{how[:4]}"
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
    disks = boot_disks_left(sims, name)
    ok = (result.fleet.state is FleetState.ACTIVE and len(at.running) == count and at.duplicates == 0
          and not at.orphans and not left and not disks)
    summary.record(f"lost create answers ({how}): {provider}{_tag(dialect)}", passed=ok,
                   leaked=len(at.orphans) + len(left),
                   duplicates=at.duplicates,
                   detail=f"{at.summary()}; {creates} create request(s); boot disks left: {disks or 0}")
    assert not disks, f"boot disks left after the fleet's destroy: {disks}"
    assert at.duplicates == 0 and not at.orphans, at.summary()
    assert len(at.running) == count and len({v.name for v in at.vms}) == count, at.summary()
    assert set(at.recorded_live) == {(v.provider, v.id) for v in at.vms}
    if not keyed:  # without an idempotency key a create may be sent again only once nothing was found
        assert creates == count, f"{creates} create requests for {count} members: a lost create was sent again"
    assert not left and ok


@pytest.mark.parametrize("provider,dialect", PROVIDER_DIALECTS)
def test_lost_answer_while_the_provider_cannot_be_listed(sims, config, provider, dialect) -> None:
    """The create is committed, its answer lost, and every lookup that follows fails: vmops cannot know,
    so it keeps the member on record (requested, no id). Either the fleet is made by another member (the
    provider still takes creates) or the create fails saying this member is left (exit 14); either way
    `fleet destroy`, once the provider answers, finds the VM by its name and removes it. A provider with
    idempotency keys (Nebius cloud) answers the resent create with the original operation, so vmops knows the
    VM's id and records it (unconfirmed) instead of leaving the member unresolved."""
    name = f"blind-{provider[:3]}-{dialect[:3]}"
    sim = sims[provider]
    sim.faults.add(Fault(CREATE[provider], "lose_response", nth=(1,)))
    # every list after the create fails (the adapter's and the fleet's lookups, with their retries)
    sim.faults.add(Fault(LIST[provider], "error", status=503, grpc_code="UNAVAILABLE", nth=tuple(range(2, 200))))
    mgr = _one_provider(config, provider, request_timeout=REQUEST_TIMEOUT)
    err: FleetCreateFailed | None = None
    try:
        keyed = mgr.provider(provider).capabilities.idempotency_key
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
    disks = boot_disks_left(sims, name)
    lost = f"vmops-{name}-001"
    if before.unresolved:  # vmops could not learn the VM's id: the member stays on record without one
        resolved = before.unresolved == 1 and lost in {v.name for v in before.vms}
        reason = "outcome unknown"
    else:  # the resent create's answer named the VM (idempotency key): on record, or removed by the rollback
        resolved, reason = keyed and not before.orphans, ""
    said = err is None or (err.exit_code == 14 and [u.member.name for u in err.undestroyed] == [lost]
                           and any(reason in u.reason for u in err.undestroyed))
    ok = said and resolved and not after.vms and not disks
    summary.record(f"lost create answer, provider unreadable: {provider}{_tag(dialect)}", passed=ok,
                   leaked=len(after.vms),
                   duplicates=before.duplicates,
                   detail=f"create {'failed' if err else 'made the fleet'}; after create: {before.summary()}; "
                          f"boot disks left: {disks or 0}")
    assert not disks, f"boot disks left after the fleet's destroy: {disks}"
    assert said, (str(err), err and [(u.member.name, u.reason) for u in err.undestroyed])
    assert resolved, before.summary()
    assert before.duplicates == 0
    assert not after.vms and out.fleet.state is FleetState.DESTROYED and ok


@pytest.mark.parametrize("provider,dialect", [(p, d) for p in ("crusoe", "lambda") for d in DIALECTS])
def test_a_create_whose_name_lookup_fails_is_not_sent_and_not_left_unknown(sims, config, provider, dialect) -> None:
    """A provider that names no VM uniquely is listed before a create (who already carries the name). When
    that list is answered with errors, the create is not sent: nothing can exist, so the member is failed with
    the reason, not left "outcome unknown" (which would tell the user a VM may exist and bill)."""
    name = f"unlisted-{provider[:3]}-{dialect[:3]}"
    sim = sims[provider]
    sim.faults.add(Fault(LIST[provider], "error", status=503, grpc_code="UNAVAILABLE"))
    mgr = _one_provider(config, provider, request_timeout=REQUEST_TIMEOUT)
    try:
        with pytest.raises(FleetCreateFailed) as raised:
            mgr.create(spec("h100", 1, name))
        members = mgr.store.members(mgr.store.get_fleet(name).id)
    finally:
        close(mgr)
    assert sim.requests.count(CREATE[provider]) == 0  # not sent
    assert [m.status for m in members] == [MemberStatus.FAILED], members
    assert "was not created" in (members[0].last_error or ""), members[0].last_error
    assert not raised.value.undestroyed and raised.value.exit_code != 14, raised.value


@both_dialects
def test_member_found_late_is_trimmed_back_to_the_fleet_count(sims, config, dialect) -> None:
    """As above at one of three providers: the fleet fails over and is active, with one member unresolved.
    `fleet reconcile` then finds that VM by its name: one VM too many. A plain reconcile never destroys an
    existing VM: it shows the newest member as surplus (held); `--destroy-surplus` then trims the fleet to
    exactly its count."""
    name = "late-trim"
    sims["lambda"].faults.add(Fault("launch", "lose_response", nth=(1,)))
    sims["lambda"].faults.add(Fault("list_instances", "error", status=503, nth=tuple(range(2, 200))))
    mgr = manager(config, request_timeout=REQUEST_TIMEOUT)
    try:
        result = mgr.create(spec("h100", 3, name))
        unresolved = [m for m in result.members if m.status is MemberStatus.REQUESTED and not m.instance_id]
        clear_faults(sims)
        before = fleet_at_providers(config, name)
        held = mgr.reconcile(name)
        middle = fleet_at_providers(config, name)
        view = mgr.reconcile(name, destroy_surplus=True)
        after = fleet_at_providers(config, name)
        mgr.destroy(name)
    finally:
        close(mgr)
    left = fleet_at_providers(config, name).vms
    disks = boot_disks_left(sims, name)
    ok = (result.fleet.state is FleetState.ACTIVE and len(after.running) == 3 and after.duplicates == 0
          and not after.orphans and not left and view.fleet.state is FleetState.ACTIVE
          and len(middle.running) == 4 and len(held.decision.held) == 1 and not disks)
    summary.record(f"lost create answer found late: held as surplus, trimmed when asked{_tag(dialect)}", passed=ok,
                   leaked=len(after.orphans) + len(left), duplicates=after.duplicates,
                   detail=f"after create: {before.summary()}; after reconcile: {after.summary()}")
    assert result.error() is not None and result.error().exit_code == 14  # an unknown outcome is not success
    assert [m.provider for m in unresolved] == ["lambda"], [(m.name, m.status.value) for m in result.members]
    assert len(before.vms) == 4 and before.unresolved == 1, before.summary()
    assert len(middle.running) == 4 and not held.decision.destroys, middle.summary()  # nothing unasked destroyed
    assert any("--destroy-surplus" in h.reason for h in held.decision.held)
    assert any("beyond the fleet's count" in c for c in view.changes), view.changes
    assert len(after.running) == 3 and after.duplicates == 0 and not after.orphans, after.summary()
    assert not disks, f"boot disks left after the fleet's destroy: {disks}"
    assert not left and ok


# ---- accepted, then failed -------------------------------------------------------------------------------
#: members enough for the plan to reach Crusoe and Nebius before Lambda: the cloud Crusoe simulator's 1x H100
#: type is its own name, without a catalogue price, so a cheapest-first plan comes to it last
PAST_CRUSOE = {"reference": 2, "cloud": 3}


def _after_accept_check(config, name: str, result, count: int) -> tuple[bool, str, object]:
    at = fleet_at_providers(config, name)
    late_names = {a.member for a in result.attempts if "after it was accepted" in (a.reason or "")}
    failed_late = [m for m in result.members if m.instance_id and m.name in late_names]
    late_ids = {(m.provider, m.instance_id) for m in failed_late}
    still = [v for v in at.vms if (v.provider, v.id) in late_ids]
    ok = (result.fleet.state is FleetState.ACTIVE and len(at.running) == count and len(at.vms) == count
          and at.duplicates == 0 and not at.orphans and not still
          and all(m.status in (MemberStatus.DESTROYED, MemberStatus.GONE)
                  for m in result.members if (m.provider, m.instance_id) in late_ids))
    detail = f"{len(failed_late)} failed after acceptance; {at.summary()}"
    return ok, detail, (at, failed_late, still)


@both_dialects
def test_every_create_failing_after_acceptance_is_cleaned_up_and_replaced_elsewhere(sims, config, dialect) -> None:
    """Crusoe's create operations all end FAILED (out_of_stock) and every Nebius instance goes to ERROR
    after the create was accepted: each is destroyed (a Nebius ERROR instance holds capacity until then) and
    its member moves on; the fleet is made from what is left (Lambda), nothing failed stays behind."""
    name = "faa-all"
    count = PAST_CRUSOE[dialect]
    sims["crusoe"].faults.add(Fault("create_instance", "fail_after_accept"))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "fail_after_accept"))
    mgr = manager(config)
    try:
        result = mgr.create(spec("h100", count, name))
        ok, detail, (at, failed_late, still) = _after_accept_check(config, name, result, count)
        mgr.destroy(name)
    finally:
        close(mgr)
    left = fleet_at_providers(config, name).vms
    disks = boot_disks_left(sims, name)
    providers_failed = {m.provider for m in failed_late}
    ok = (ok and not left and not disks and providers_failed == {"crusoe", "nebius"}
          and {v.provider for v in at.vms} == {"lambda"})
    summary.record(f"failed after acceptance: replaced elsewhere{_tag(dialect)}", passed=ok,
                   leaked=len(still) + len(left), duplicates=at.duplicates,
                   detail=f"{detail}; boot disks left: {disks or 0}")
    assert providers_failed == {"crusoe", "nebius"}, [(m.name, m.provider, m.last_error) for m in result.members]
    assert {v.provider for v in at.vms} == {"lambda"} and len(at.running) == count, at.summary()
    assert not disks, f"boot disks left after the fleet's destroy: {disks}"
    assert not still and not left and ok, detail


@pytest.mark.parametrize("dialect,seed", budget.dialect_seeds(20, 5, base=2000, cloud=(10, 2)))
def test_random_failures_after_acceptance(sims, config, seed, dialect) -> None:
    """30% of Crusoe and Nebius creates fail after they were accepted (seeded): the fleet of 8 is still
    made, every failed VM is gone from the providers, no duplicates, nothing unrecorded."""
    name = f"faa{seed}"
    seed_faults(sims, seed)
    sims["crusoe"].faults.add(Fault("create_instance", "fail_after_accept", rate=0.3))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "fail_after_accept", rate=0.3))
    mgr = manager(config)
    try:
        result = mgr.create(spec("h100", 8, name))
        clear_faults(sims)
        ok, detail, (at, failed_late, still) = _after_accept_check(config, name, result, 8)
        mgr.destroy(name)
    finally:
        close(mgr)
    left = fleet_at_providers(config, name).vms
    disks = boot_disks_left(sims, name)
    ok = ok and not left and not disks
    summary.record(f"failed after acceptance: 30% of creates{_tag(dialect)}", passed=ok, leaked=len(still) + len(left),
                   duplicates=at.duplicates, detail=f"seed {seed}: {detail}; boot disks left: {disks or 0}")
    assert not still and not left and not disks, f"seed {seed}: {detail}; boot disks left: {disks}"
    assert ok, f"seed {seed}: {detail}"
    assert all("cleaned up" in (a.reason or "") for a in result.attempts if "after it was accepted" in (a.reason or ""))


# ---- a provider down for a whole command (the real `vm` program) ------------------------------------------
def _down(vm_env, provider: str) -> dict[str, str]:
    key = "VMOPS_NEBIUS_ENDPOINT" if provider == "nebius" else f"VMOPS_{provider.upper()}_URL"
    return {**vm_env, key: dead_url("grpc" if provider == "nebius" else "http")}


#: A provider that refuses connections costs a command at most about a second (no retries of a refused
#: connection: design.md, "Deadlines"), so every budget runs all three wires.
DOWN = ["crusoe", "lambda", "nebius"]


@pytest.mark.parametrize("provider,dialect", [(p, d) for p in DOWN for d in DIALECTS])
def test_provider_down_for_create_destroy_and_list(sims, vm_env, config, provider, dialect) -> None:
    """One provider refuses connections for a whole command. create: planned around it (the rest of the
    fleet comes from the others). Then it is down for list (reported missing, exit 14, the others listed),
    for status (its members kept, not marked gone, exit 14) and for destroy (its members stay recorded, exit 14),
    until a destroy with it back up removes everything."""
    name = f"down-{provider[:3]}-{dialect[:3]}"
    # create while it is down: made elsewhere, the provider named as skipped
    r = vm(_down(vm_env, provider), "fleet", "create", "--gpu", "h100", "--count", "4", "--name", f"{name}-c", "--json")
    made = r.code == 0 and {m["provider"] for m in r.json()["members"] if m["status"] == "running"} <= (
        {"crusoe", "lambda", "nebius"} - {provider})
    # skipped by the plan; or, where planning asks the provider nothing (the Nebius cloud dialect's offers come from
    # the catalogue), its creates fail at once as "cannot connect" (nothing was sent: no unknown outcome)
    skipped = made and any(a["provider"] == provider and (a["outcome"] == "skipped" or (
        a["outcome"] == "failed" and "cannot connect" in (a["reason"] or ""))) for a in r.json()["attempts"])
    assert r.code == 0, r.err
    assert sims[provider].requests.mutating_count() == 0
    d3 = vm(vm_env, "fleet", "destroy", f"{name}-c")  # give its capacity back before the next fleet
    # a fleet with members at every provider, then the provider goes down
    r2 = vm(vm_env, "fleet", "create", "--gpu", "h100", "--count", "3", "--name", name)
    assert r2.code == 0, r2.err
    mine = fleet_at_providers(config, name)
    assert {v.provider for v in mine.vms} == {"crusoe", "lambda", "nebius"}, (mine.summary(), r2.out)
    listing = vm(_down(vm_env, provider), "list", "--json")
    listed_ok = (listing.code == 14 and f"{provider} could not be listed" in listing.err
                 and {i["provider"] for i in listing.json()} == {"crusoe", "lambda", "nebius"} - {provider})
    status = vm(_down(vm_env, provider), "fleet", "status", name, "--json")  # shown, then exit 14 (partial)
    st = status.json() if status.code == 14 else {}
    kept = [m for m in st.get("members", []) if m["provider"] == provider and m["status"] == "running"]
    status_ok = (status.code == 14 and set(st.get("unobserved", {})) == {provider}
                 and any(provider in w for w in st.get("warnings", [])) and len(kept) == 1)
    d1 = vm(_down(vm_env, provider), "fleet", "destroy", name)
    after_down = fleet_at_providers(config, name)
    destroy_down_ok = (d1.code == 14 and provider in d1.err
                       and [v.provider for v in after_down.vms] == [provider]
                       and set(after_down.recorded_live) == {(v.provider, v.id) for v in after_down.vms})
    d2 = vm(vm_env, "fleet", "destroy", name)
    left = fleet_at_providers(config, name).vms + fleet_at_providers(config, f"{name}-c").vms
    disks = boot_disks_left(sims, name) + boot_disks_left(sims, f"{name}-c")
    ok = made and skipped and listed_ok and status_ok and destroy_down_ok and d2.code == 0 and not left and not disks
    summary.record(f"provider down for a command: {provider}{_tag(dialect)}", passed=ok, leaked=len(left),
                   detail=f"create skipped it: {skipped}; list: {listing.code}; destroy: {d1.code} then "
                          f"{d2.code}; {after_down.summary()}; boot disks left: {disks or 0}")
    assert made and skipped, (r.code, r.out, r.err)
    assert listed_ok, (listing.code, listing.err, listing.out)
    assert status_ok, (status.code, status.err, status.out)
    assert destroy_down_ok, (d1.code, d1.err, after_down.summary(), after_down.recorded_live)
    assert "Traceback" not in d1.err + listing.err + status.err
    assert f"{provider}: {provider}:" not in d1.err, d1.err  # the provider is named once per reason
    assert d2.code == 0 and d3.code == 0, d2.err + d3.err
    assert not disks, f"boot disks left after the fleets' destroy: {disks}"
    assert not left and ok


# ---- operations that never complete ---------------------------------------------------------------------
STUCK = {"crusoe": ("create_instance", "delete_instance"), "nebius": ("InstanceService/Create", "InstanceService/Delete")}


STUCK_DIALECTS = [(p, d) for p in sorted(STUCK) for d in DIALECTS]


@pytest.mark.parametrize("provider,dialect", STUCK_DIALECTS)
def test_stuck_create_is_a_typed_timeout_naming_the_vm(sims, vm_env, config, provider, dialect) -> None:
    """`vm create` whose operation never completes ends in OperationTimeout (its own exit code) naming the
    VM by id and name; the VM is still there, and `vm destroy ID` removes it."""
    sims[provider].faults.add(Fault(STUCK[provider][0], "never_complete"))
    env = {**vm_env, "VMOPS_OP_TIMEOUT": "1"}
    r = vm(env, "create", "--provider", provider, "--gpu", "h100", "--name", "stuck-one")
    vms = [v for v in instances(config) if v.name == "stuck-one"]
    named = len(vms) == 1 and vms[0].id in r.err and "stuck-one" in r.err
    d = vm(vm_env, "destroy", vms[0].id, "--provider", provider) if vms else None
    left = [v for v in instances(config) if v.name == "stuck-one"]
    disks = [d for s in sims.values() for d in getattr(s, "disk_names", list)() if d == "stuck-one-boot"]
    ok = r.code == OperationTimeout.exit_code and named and d is not None and d.code == 0 and not left and not disks
    summary.record(f"stuck create: typed timeout ({provider}){_tag(dialect)}", passed=ok, leaked=len(left),
                   detail=f"exit {r.code}: {r.err.strip().splitlines()[0] if r.err.strip() else ''}; "
                          f"boot disks left: {disks or 0}")
    assert r.code == OperationTimeout.exit_code, r.err
    assert named and "Traceback" not in r.err, r.err
    assert d is not None and d.code == 0 and not left, (d and d.err, left)
    assert not disks, f"boot disk left after `vm destroy`: {disks}"
    assert ok


@both_dialects
def test_stuck_creates_in_a_fleet_are_recorded_cleaned_up_and_replaced(sims, config, dialect) -> None:
    """Every Crusoe and Nebius create is accepted and never completes: each member times out (recorded with
    the reason and its VM id), its VM is destroyed, and the fleet is made where creates do complete."""
    name = "stuck-fleet"
    count = PAST_CRUSOE[dialect]
    for p, (create, _) in STUCK.items():
        sims[p].faults.add(Fault(create, "never_complete"))
    mgr = manager(config, op_timeout=1.0)
    try:
        result = mgr.create(spec("h100", count, name))
        at = fleet_at_providers(config, name)
        mgr.destroy(name)
    finally:
        close(mgr)
    left = fleet_at_providers(config, name).vms
    disks = boot_disks_left(sims, name)
    timed_out = [a for a in result.attempts if "did not become running within" in (a.reason or "")]
    ok = (result.fleet.state is FleetState.ACTIVE and {v.provider for v in at.vms} == {"lambda"}
          and len(at.running) == count and len(at.vms) == count and not at.orphans and not left and not disks
          and {a.provider for a in timed_out} == {"crusoe", "nebius"}
          and all("cleaned up" in (a.reason or "") for a in timed_out))
    summary.record(f"stuck creates in a fleet: cleaned up, replaced{_tag(dialect)}", passed=ok,
                   leaked=len(at.orphans) + len(left), duplicates=at.duplicates,
                   detail=f"{len(timed_out)} timed out; {at.summary()}; boot disks left: {disks or 0}")
    assert {a.provider for a in timed_out} == {"crusoe", "nebius"}, result.attempts
    assert all("cleaned up" in (a.reason or "") for a in timed_out), timed_out
    assert len(at.running) == count and len(at.vms) == count and not at.orphans, at.summary()
    assert not disks, f"boot disks left after the fleet's destroy: {disks}"
    assert not left and ok


@pytest.mark.parametrize("provider,dialect", STUCK_DIALECTS)
def test_stuck_destroy_keeps_the_member_until_a_later_destroy_finishes(sims, vm_env, config, provider,
                                                                       dialect) -> None:
    """A fleet destroy whose delete never completes at one provider: `vm fleet destroy` exits 14 naming the
    VM and the timeout; the member stays recorded (destroying) with the reason; `vm fleet reconcile` (the
    provider behaving again) finishes it and leaves nothing."""
    name = f"stuckd-{provider[:3]}"
    r = vm(vm_env, "fleet", "create", "--gpu", "h100", "--count", "3", "--name", name)
    assert r.code == 0, r.err
    target = [v for v in fleet_at_providers(config, name).vms if v.provider == provider]
    assert len(target) == 1
    sims[provider].faults.add(Fault(STUCK[provider][1], "never_complete"))
    d1 = vm({**vm_env, "VMOPS_OP_TIMEOUT": "1"}, "fleet", "destroy", name)
    mid = fleet_at_providers(config, name)
    store = Store(state_path(vm_env))
    try:
        f = store.get_fleet(name)
        rec = [m for m in store.members(f.id) if m.instance_id == target[0].id]
    finally:
        store.close()
    recorded = (len(rec) == 1 and rec[0].status in (MemberStatus.DESTROYING, MemberStatus.DESTROY_FAILED)
                and "not confirmed" in (rec[0].last_error or "") and f.state is FleetState.DESTROYING)
    clear_faults(sims)
    rc = vm(vm_env, "fleet", "reconcile", name)
    left = fleet_at_providers(config, name).vms
    disks = boot_disks_left(sims, name)
    ok = (d1.code == 14 and target[0].id in d1.err and recorded and [v.id for v in mid.vms] == [target[0].id]
          and rc.code == 0 and not left and not disks)
    summary.record(f"stuck destroy: recorded, finished later ({provider}){_tag(dialect)}", passed=ok, leaked=len(left),
                   detail=f"destroy exit {d1.code}; reconcile exit {rc.code}; {mid.summary()}; "
                          f"boot disks left: {disks or 0}")
    assert d1.code == 14 and target[0].id in d1.err and "Traceback" not in d1.err, d1.err
    assert [v.id for v in mid.vms] == [target[0].id], mid.summary()
    assert recorded, [(m.status, m.last_error) for m in rec]
    assert rc.code == 0, rc.err
    assert not disks, f"boot disks left after the reconcile: {disks}"
    assert not left and ok
