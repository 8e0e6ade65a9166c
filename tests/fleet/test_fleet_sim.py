"""The fleet manager against the three simulators: scheduling, failover, rollback, partial fleets,
reserved members, providers down, injected faults, dry-run, resume. Outcomes are checked at the
providers (their own instance lists), not only in vmops' record."""

from __future__ import annotations

from collections import Counter

import pytest

from vmops.errors import StateError
from vmops.fleet.report import FleetCreateFailed, FleetDestroyIncomplete
from vmops.model import State
from vmops.sim.common import Fault
from vmops.state import FleetState, MemberStatus

from tests.conftest import DIALECTS
from tests.fleet.conftest import at_providers, dead_url, spec

#: Every test here runs on both state backends: the default SQLite file and a real PostgreSQL server.
pytestmark = pytest.mark.parametrize("state_db", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(params=DIALECTS)
def dialect(request) -> str:
    """Every test here runs against both dialects' simulators (``sims``/``config`` follow it)."""
    return request.param


#: tests of Lambda's reservation (VMs the API cannot terminate) run on the reference dialect only: Lambda's public
#: API has no reservations (../shared/cloud-apis.md §2)
reference_only = pytest.mark.parametrize("dialect", ["reference"])


def _running(result_members):
    return [m for m in result_members if m.status is MemberStatus.RUNNING]


def test_spread_fleet_over_all_three_providers_then_destroy(sims, config, make_manager, state_db) -> None:
    mgr = make_manager()
    assert mgr.store.backend == ("postgresql" if state_db else "sqlite")
    result = mgr.create(spec("h100", 6, "spread6"))
    assert result.fleet.state is FleetState.ACTIVE
    running = _running(result.members)
    assert Counter(m.provider for m in running) == {"crusoe": 2, "lambda": 2, "nebius": 2}
    vms = at_providers(config, "spread6")
    assert sorted(v.id for v in vms) == sorted(m.instance_id for m in running)
    assert all(v.state is State.RUNNING for v in vms)
    assert len({v.name for v in vms}) == 6
    neb = [v for v in vms if v.provider == "nebius"]
    assert all(v.labels.get("vmops-fleet") == "spread6" for v in neb)
    view = mgr.status("spread6")
    assert view.running == 6 and not view.warnings
    out = mgr.destroy("spread6")
    assert out.fleet.state is FleetState.DESTROYED
    assert at_providers(config, "spread6") == []
    # the state file never holds an API key
    blob = b"".join(p.read_bytes() for p in config.home.glob("state.db*"))
    for st in config.providers.values():
        assert st.api_key.reveal().encode() not in blob


#: h100:1 units Nebius' simulator holds at its seed, per dialect (vmops.sim.nebius and
#: vmops.sim.nebius_cloud.SEED_CAPACITY)
NEBIUS_H100_SEED = {"reference": 6, "cloud": 8}


def test_failover_when_a_provider_runs_out_mid_way(sims, config, make_manager, dialect) -> None:
    # cheapest puts every member on Nebius (its on-demand count is unknown); it has 2 fewer.
    have = NEBIUS_H100_SEED[dialect]
    mgr = make_manager()
    result = mgr.create(spec("h100", have + 2, "fo8", policy="cheapest"))
    assert result.fleet.state is FleetState.ACTIVE
    running = _running(result.members)
    by = Counter(m.provider for m in running)
    assert by["nebius"] == have and sum(by.values()) == have + 2
    failed = [a for a in result.attempts if a.outcome == "failed"]
    # Refusals: the creates already in flight when Nebius first said no (up to 2); none is sent after that.
    assert 1 <= len(failed) <= 2 and all(a.provider == "nebius" for a in failed)
    assert len(at_providers(config, "fo8")) == have + 2
    mgr.destroy("fo8")
    assert at_providers(config, "fo8") == []


def test_error_after_acceptance_is_cleaned_up_and_fails_over(sims, config, make_manager) -> None:
    sims["crusoe"].faults.add(Fault(endpoint="create_instance", kind="fail_after_accept", nth=(1,)))
    sims["nebius"].faults.add(Fault(endpoint="InstanceService/Create", kind="fail_after_accept", nth=(1,)))
    mgr = make_manager()
    result = mgr.create(spec("h100", 6, "faa6"))
    assert result.fleet.state is FleetState.ACTIVE
    assert len(_running(result.members)) == 6
    bad = [m for m in result.members if m.status is not MemberStatus.RUNNING]
    after = [a for a in result.attempts if "after it was accepted" in (a.reason or "")]
    assert {a.provider for a in after} == {"crusoe", "nebius"}, result.attempts
    assert all("cleaned up" in (a.reason or "") for a in after)
    names = {a.member for a in after}
    assert all(m.status in (MemberStatus.DESTROYED, MemberStatus.GONE) for m in bad if m.name in names), bad
    vms = at_providers(config, "faa6")
    assert len(vms) == 6 and all(v.state is State.RUNNING for v in vms)
    mgr.destroy("faa6")
    assert at_providers(config, "faa6") == []


def test_all_or_nothing_rollback_leaves_nothing_at_the_providers(sims, config, make_manager) -> None:
    mgr = make_manager()
    with pytest.raises(FleetCreateFailed) as ei:
        mgr.create(spec("h100:8", 20, "big20"))
    err = ei.value
    text = str(err)
    assert "only" in text and "of 20" in text and "rolled back" in text and "nothing is left running" in text
    tried = {a.provider for a in err.attempts}
    assert tried == {"crusoe", "lambda", "nebius"}  # the details table names every provider tried and why
    assert all(t.rows for t in err.tables)
    assert err.exit_code == 7
    assert at_providers(config, "big20") == []  # checked at the providers themselves
    f = mgr.store.get_fleet("big20")
    assert f.state is FleetState.FAILED
    assert all(m.status in (MemberStatus.DESTROYED, MemberStatus.FAILED, MemberStatus.GONE)
               for m in mgr.store.members(f.id))


def test_min_gives_a_partial_fleet_and_reports_the_shortfall(sims, config, make_manager) -> None:
    mgr = make_manager()
    result = mgr.create(spec("h100:8", 20, "part20", min_count=5))
    assert result.fleet.state is FleetState.PARTIAL
    n = len(_running(result.members))
    assert 5 <= n < 20 and result.shortfall == 20 - n
    assert f"{n} of 20" in (result.fleet.last_error or "")
    assert len(at_providers(config, "part20")) == n
    mgr.destroy("part20")
    assert at_providers(config, "part20") == []


@reference_only
def test_unterminable_reserved_capacity_is_never_used_without_opt_in(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "lambda"})
    plan = mgr.plan(spec("h100:8", 3, "rsv", policy="cheapest", reserved_mode="prefer"))
    assert all(not p.offer.reserved for p in plan.placements)
    assert any("cannot be terminated" in s.reason and "--allow-unterminable-reserved" in s.reason
               for s in plan.skipped)
    plan2 = mgr.plan(spec("h100:8", 3, "rsv", policy="cheapest", allow_unterminable_reserved=True,
                          reserved_mode="prefer"))
    assert plan2.placements[0].offer.reserved


@reference_only
def test_reserved_member_that_cannot_be_destroyed_is_kept_and_reported(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "lambda"})
    result = mgr.create(spec("h100:8", 2, "rsv2", policy="cheapest", allow_unterminable_reserved=True,
                             reserved_mode="prefer"))
    assert result.fleet.state is FleetState.ACTIVE
    reserved = [m for m in _running(result.members) if m.reserved]
    assert len(reserved) == 1
    with pytest.raises(FleetDestroyIncomplete) as ei:
        mgr.destroy("rsv2")
    assert ei.value.exit_code == 14 and "could not be destroyed" in str(ei.value)
    (u,) = ei.value.undestroyed
    assert u.member.instance_id == reserved[0].instance_id and "terminat" in u.reason
    left = at_providers(config, "rsv2")
    assert [v.id for v in left] == [reserved[0].instance_id]
    f = mgr.store.get_fleet("rsv2")
    assert f.state is FleetState.DESTROYING
    (m,) = [m for m in mgr.store.members(f.id) if m.status is MemberStatus.DESTROY_FAILED]
    assert m.instance_id == reserved[0].instance_id and "terminat" in (m.last_error or "")


@reference_only
def test_rollback_that_cannot_destroy_a_reserved_member_says_so(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "lambda"})
    with pytest.raises(FleetCreateFailed) as ei:
        mgr.create(spec("h100:8", 9, "rsv9", policy="cheapest", allow_unterminable_reserved=True,
                        reserved_mode="prefer"))
    err = ei.value
    assert err.exit_code == 14 and "could not be destroyed" in str(err) and len(err.undestroyed) == 1
    left = at_providers(config, "rsv9")
    assert [v.id for v in left] == [err.undestroyed[0].member.instance_id] and left[0].reserved


def test_provider_down_before_create_is_skipped(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_CRUSOE_URL": dead_url()})
    result = mgr.create(spec("h100", 4, "down4"))
    assert result.fleet.state is FleetState.ACTIVE
    assert {m.provider for m in _running(result.members)} == {"lambda", "nebius"}
    assert any(a.provider == "crusoe" and a.outcome == "skipped" for a in result.attempts)
    assert sims["crusoe"].requests.mutating_count() == 0
    make_manager().destroy("down4")
    assert at_providers(config, "down4") == []


def test_provider_failing_its_creates_fails_over_without_leaving_anything(sims, config, make_manager) -> None:
    sims["crusoe"].faults.add(Fault(endpoint="create_instance", kind="error", status=503))
    mgr = make_manager()
    result = mgr.create(spec("h100", 6, "c503"))
    assert result.fleet.state is FleetState.ACTIVE
    assert {m.provider for m in _running(result.members)} == {"lambda", "nebius"}
    assert [v for v in at_providers(config, "c503") if v.provider == "crusoe"] == []
    mgr.destroy("c503")
    assert at_providers(config, "c503") == []


def test_provider_down_during_destroy_keeps_members_until_a_second_destroy(sims, config, make_manager) -> None:
    mgr = make_manager()
    mgr.create(spec("h100", 3, "dd3"))
    down = make_manager({"VMOPS_NEBIUS_ENDPOINT": dead_url("grpc")})
    with pytest.raises(FleetDestroyIncomplete) as ei:
        down.destroy("dd3")
    assert "nebius" in str(ei.value) and ei.value.exit_code == 14
    left = at_providers(config, "dd3")
    assert [v.provider for v in left] == ["nebius"]
    f = mgr.store.get_fleet("dd3")
    assert f.state is FleetState.DESTROYING
    out = make_manager().destroy("dd3")
    assert out.fleet.state is FleetState.DESTROYED
    assert at_providers(config, "dd3") == []


def test_provider_unreadable_while_its_members_boot_rolls_nothing_back(sims, config, make_manager) -> None:
    """Crusoe accepts its creates, then answers 503 to every read while they boot. The minimum may be met (its
    VMs are made, only unconfirmed): the create used to roll back the four running VMs elsewhere and fail to
    reach Crusoe's. Now nothing is destroyed: the fleet stays `creating`, the two are reported as unknown
    (exit 14), and `reconcile` finishes the fleet once Crusoe answers."""
    reads = tuple(range(2, 500))  # the create round's own list (1st) answers; every read after it fails
    sims["crusoe"].faults.add(Fault(endpoint="list_instances", kind="error", status=503, nth=reads))
    sims["crusoe"].faults.add(Fault(endpoint="get_instance", kind="error", status=503))
    result = make_manager().create(spec("h100", 6, "unsure6"))
    assert result.fleet.state is FleetState.CREATING and result.shortfall == 0
    assert len(_running(result.members)) == 4
    assert sorted(m.provider for m in result.unknown) == ["crusoe", "crusoe"]
    err = result.error()
    assert err is not None and err.exit_code == 14 and "vm fleet reconcile unsure6" in err.hint
    assert len(at_providers(config, "unsure6", ["lambda", "nebius"])) == 4  # nothing rolled back
    sims["crusoe"].faults.clear()
    assert len(at_providers(config, "unsure6")) == 6
    view = make_manager().reconcile("unsure6")
    assert view.fleet.state is FleetState.ACTIVE and view.running == 6
    assert [m.last_error for m in view.members if m.provider == "crusoe"] == [None, None]  # settled now


@pytest.mark.parametrize("down", ["crusoe", "lambda", "nebius"])
def test_provider_answering_503_costs_a_destroy_its_reads_once_not_retries_of_retries(sims, config, make_manager,
                                                                                      down) -> None:
    """A provider that answers every request with 503 (gRPC: UNAVAILABLE): each read already retried with
    backoff inside the adapter; the fleet used to send the whole destroy again 3 more times on top (~25 s at
    Crusoe). Now: the observation's read, then one read per destroy slice, and the members stay recorded
    (exit 14) until a destroy once the provider answers."""
    mgr = make_manager()
    mgr.create(spec("h100", 6, "d503"))
    assert len([m for m in mgr.store.members(mgr.store.get_fleet("d503").id) if m.provider == down]) == 2
    sims[down].faults.add(Fault(endpoint="*", kind="error", status=503, grpc_code="UNAVAILABLE"))
    before = sum(sims[down].requests.counts().values())
    with pytest.raises(FleetDestroyIncomplete) as ei:
        make_manager().destroy("d503")
    sent = sum(sims[down].requests.counts().values()) - before
    tries = mgr.provider(down).timing.retry_attempts
    assert ei.value.exit_code == 14 and down in str(ei.value)
    assert tries <= sent <= 3 * tries, sims[down].requests.counts()  # the observation, at most 2 slices
    sims[down].faults.clear()
    assert {v.provider for v in at_providers(config, "d503")} == {down}
    assert make_manager().destroy("d503").fleet.state is FleetState.DESTROYED
    assert at_providers(config, "d503") == []


def test_injected_5xx_429_and_lost_responses_make_no_duplicates(sims, config, make_manager) -> None:
    sims["crusoe"].faults.add(Fault(endpoint="create_instance", kind="lose_response", nth=(1, 2)))
    sims["crusoe"].faults.add(Fault(endpoint="list_instances", kind="error", status=503, nth=(1, 3)))
    sims["lambda"].faults.add(Fault(endpoint="launch", kind="error", status=429, retry_after=0, nth=(1,)))
    sims["lambda"].faults.add(Fault(endpoint="launch", kind="lose_response", nth=(2,)))
    sims["nebius"].faults.add(Fault(endpoint="InstanceService/Create", kind="lose_response", nth=(1,)))
    sims["nebius"].faults.add(Fault(endpoint="InstanceService/List", kind="error", grpc_code="UNAVAILABLE", nth=(2,)))
    mgr = make_manager()
    result = mgr.create(spec("h100", 6, "faulty6"))
    assert result.fleet.state is FleetState.ACTIVE
    vms = at_providers(config, "faulty6")
    assert len(vms) == 6, [(v.provider, v.name) for v in vms]
    assert len({v.name for v in vms}) == 6  # no VM made twice
    recorded = {m.instance_id for m in _running(result.members)}
    assert recorded == {v.id for v in vms}
    mgr.destroy("faulty6")
    assert at_providers(config, "faulty6") == []


def test_dry_run_plans_without_any_mutating_call_or_record(sims, config, make_manager) -> None:
    mgr = make_manager()
    plan = mgr.plan(spec("h100:8", 5, "dry5"))
    assert plan.planned == 5 and plan.total_per_hour and plan.total_per_hour > 0
    assert {p.offer.provider for p in plan.placements} == {"crusoe", "lambda", "nebius"}
    assert sum(s.requests.mutating_count() for s in sims.values()) == 0
    assert sum(sum(s.requests.counts().values()) for s in sims.values()) > 0  # it did ask
    assert mgr.store.find_fleet("dry5") is None


def test_resume_adopts_what_exists_and_creates_only_what_is_missing(sims, config, make_manager) -> None:
    mgr = make_manager()
    first = mgr.create(spec("h100", 2, "res4"))
    assert first.fleet.state is FleetState.ACTIVE
    # Simulate a create that died half-way: the record says creating, count 4, two members exist,
    # and one VM named for the fleet exists at a provider without a record (the crash lost its id).
    f = mgr.store.get_fleet("res4")
    with mgr.store.write() as db:
        db.execute("UPDATE fleet SET state='creating', count=4, min_count=4, owner_pid=NULL WHERE id=?", (f.id,))
    from vmops.model import CreateRequest

    from vmops.fleet.ownership import labels_for

    m0 = mgr.store.members(f.id)[0]
    adapter = mgr.provider(m0.provider)
    labels = labels_for("res4", mgr.store.identity) if adapter.capabilities.labels else {}
    orphan = adapter.create(CreateRequest(name="vmops-res4-099", native_type=m0.native_type, region=m0.region,
                                          labels=labels))
    result = mgr.create(spec("h100", 4, "res4"))
    assert result.resumed and result.fleet.state is FleetState.ACTIVE
    running = _running(result.members)
    assert len(running) == 4 and orphan.id in {m.instance_id for m in running}
    assert len(at_providers(config, "res4")) == 4
    with pytest.raises(StateError, match="already exists"):
        mgr.create(spec("h100", 4, "res4"))
    mgr.destroy("res4")
    assert at_providers(config, "res4") == []


def test_status_marks_members_deleted_elsewhere_as_gone_and_reconcile_adopts_orphans(sims, config, make_manager) -> None:
    mgr = make_manager()
    result = mgr.create(spec("h100", 3, "rec3"))
    victim = _running(result.members)[0]
    mgr.provider(victim.provider).destroy(victim.instance_id)
    from vmops.model import CreateRequest

    at_crusoe = [m for m in result.members if m.provider == "crusoe"][0]  # its type and region, in either dialect
    stray = mgr.provider("crusoe").create(CreateRequest(name="vmops-rec3-050", native_type=at_crusoe.native_type,
                                                        region=at_crusoe.region))
    other = mgr.provider("crusoe").create(CreateRequest(name="vmops-rec3x-001", native_type=at_crusoe.native_type,
                                                        region=at_crusoe.region))
    view = mgr.status("rec3")
    gone = [m for m in view.members if m.id == victim.id][0]
    assert gone.status is MemberStatus.GONE
    assert stray.id in {m.instance_id for m in view.members}  # the orphan was adopted
    assert other.id not in {m.instance_id for m in view.members}  # another fleet's name: never touched
    view = mgr.reconcile("rec3")
    assert view.fleet.state is FleetState.ACTIVE and view.running == 3
    victim2 = [m for m in view.members if m.status is MemberStatus.RUNNING][0]
    mgr.provider(victim2.provider).destroy(victim2.instance_id)
    view = mgr.reconcile("rec3")
    assert view.fleet.state is FleetState.DEGRADED and view.running == 2  # below its minimum of 3
    mgr.destroy("rec3")
    assert at_providers(config, "rec3") == []
    assert [i.id for i in mgr.provider("crusoe").list_instances() if i.id == other.id] == [other.id]
    mgr.provider("crusoe").destroy(other.id)
