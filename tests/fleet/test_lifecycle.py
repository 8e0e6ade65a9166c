"""The fleet lifecycle's safety rules (issue 12), each as a scenario a user hit, against the simulators.
Outcomes are judged at the providers (their own instance lists), not only in vmops' record."""

from __future__ import annotations

import pytest

from vmops.errors import InsufficientCapacity, ProviderUnavailable, UsageError
from vmops.fleet.decision import ActionKind
from vmops.fleet.ownership import STORE_LABEL, labels_for
from vmops.fleet.report import FleetCreateFailed
from vmops.model import CreateRequest, State
from vmops.session import Session
from vmops.sim.common import Fault
from vmops.state import FleetState, MemberStatus

from tests.conftest import both_dialects
from tests.fleet.conftest import at_providers, dead_url, spec


def _ids(config, fleet: str) -> set[str]:
    return {v.id for v in at_providers(config, fleet)}


@both_dialects
def test_resume_without_min_keeps_the_recorded_min_and_destroys_nothing(sims, config, make_manager) -> None:
    """`--count 30 --min 2` left a partial fleet; running the same command without --min (what vmops'
    messages suggest) used to roll back every running VM."""
    mgr = make_manager()
    first = mgr.create(spec("h100:8", 30, "t2", min_count=2))
    assert first.fleet.state is FleetState.PARTIAL
    before = _ids(config, "t2")
    assert 2 <= len(before) < 30
    again = mgr.create(spec("h100:8", 30, "t2"))  # no --min: the recorded 2 is kept
    assert again.resumed and again.fleet.min_count == 2
    assert again.fleet.state is FleetState.PARTIAL
    assert before <= _ids(config, "t2")  # nothing that ran before was destroyed


@both_dialects
def test_resume_that_cannot_reach_a_new_min_leaves_the_fleet_as_it_was(sims, config, make_manager) -> None:
    mgr = make_manager()
    mgr.create(spec("h100:8", 30, "t3", min_count=2))
    before = _ids(config, "t3")
    with pytest.raises(FleetCreateFailed) as ei:
        mgr.create(spec("h100:8", 30, "t3", min_count=30))
    assert "as it was" in str(ei.value)
    assert _ids(config, "t3") == before  # rolled back only what the resume made
    f = mgr.store.get_fleet("t3")
    assert f.state is FleetState.PARTIAL
    live = [m for m in mgr.store.members(f.id) if m.status is MemberStatus.RUNNING]
    assert {m.instance_id for m in live} == before


def _nebius_only(make_manager):
    return make_manager({"VMOPS_PROVIDERS": "nebius"})


@both_dialects
def test_label_less_lookalike_is_never_adopted_or_destroyed(sims, config, make_manager) -> None:
    """A hand-made, label-less Nebius VM `vmops-train-002` next to fleet `train` (count 1): cleanup calls it
    unmanaged, so reconcile must neither adopt nor destroy it; same for another installation's VM."""
    mgr = _nebius_only(make_manager)
    mgr.create(spec("h100", 1, "train"))
    neb = mgr.provider("nebius")
    lookalike = neb.create(CreateRequest(name="vmops-train-002", native_type=neb_type(mgr), labels={}))
    foreign = neb.create(CreateRequest(name="vmops-train-003", native_type=neb_type(mgr),
                                       labels={"vmops-fleet": "train", STORE_LABEL: "another-install"}))
    decision = mgr.preview_reconcile("train", destroy_surplus=True)
    assert not decision.destroys and not decision.of(ActionKind.ADOPT)
    view = mgr.reconcile("train", destroy_surplus=True)
    ids = {m.instance_id for m in view.members}
    assert lookalike.id not in ids and foreign.id not in ids
    alive = {i.id for i in neb.list_instances() if i.state is not State.DELETED}
    assert {lookalike.id, foreign.id} <= alive
    mgr.destroy("train")
    alive = {i.id for i in neb.list_instances() if i.state is not State.DELETED}
    assert {lookalike.id, foreign.id} <= alive  # a fleet destroy never touches what is not the fleet's


def neb_type(mgr) -> str:
    from vmops.catalogue import provider_entry
    from vmops.model import GpuShape

    t = provider_entry("nebius").type_for(GpuShape("h100", 1))
    assert t is not None
    return t.name


@both_dialects
def test_surplus_is_held_unless_asked_and_shown_first(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "nebius"})
    mgr.create(spec("h100", 1, "sur"))
    neb = mgr.provider("nebius")
    extra = neb.create(CreateRequest(name="vmops-sur-002", native_type=neb_type(mgr),
                                     labels=labels_for("sur", mgr.store.identity)))
    view = mgr.reconcile("sur")  # adopts it (it is the fleet's), but destroys nothing
    assert extra.id in {m.instance_id for m in view.members}
    assert extra.id in _ids(config, "sur")
    assert view.decision is not None and not view.decision.destroys
    assert [h.instance_id for h in view.decision.held] == [extra.id]
    assert any("--destroy-surplus" in w for w in view.warnings)
    shown = mgr.preview_reconcile("sur", destroy_surplus=True)
    assert [a.instance_id for a in shown.destroys] == [extra.id]
    assert shown.cost_after < shown.cost_before
    seen = []
    mgr.reconcile("sur", destroy_surplus=True, confirm=lambda d: seen.append(d) or True)
    assert [a.instance_id for a in seen[0].destroys] == [extra.id]  # what was shown is what was done
    assert extra.id not in _ids(config, "sur") and len(_ids(config, "sur")) == 1


@both_dialects
def test_confirmation_refused_changes_nothing(sims, config, make_manager) -> None:
    from vmops.fleet.manager import Cancelled

    mgr = make_manager()
    mgr.create(spec("h100", 2, "keep"))
    before = _ids(config, "keep")
    with pytest.raises(Cancelled):
        mgr.destroy("keep", confirm=lambda d: False)
    assert _ids(config, "keep") == before
    assert mgr.store.get_fleet("keep").state is FleetState.ACTIVE


#: a 1-GPU shape Crusoe prices in each dialect (its cloud simulator's 1 x H100 product is one no catalogue knows,
#: so it has no price: see vmops.sim.crusoe_cloud.TYPES)
PRICED_1GPU = {"reference": "h100", "cloud": "a100"}


@both_dialects
def test_stopped_members_are_counted_as_stopped_and_do_not_bill(sims, config, make_manager, dialect) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    mgr.create(spec(PRICED_1GPU[dialect], 3, "stp"))
    d = mgr.preview_power("stp", start=False)
    assert len(d.of(ActionKind.STOP)) == 3 and d.cost_after == 0
    members = [m for m in mgr.store.members(mgr.store.get_fleet("stp").id) if m.status is MemberStatus.RUNNING]
    for m in members[:2]:
        mgr.provider("crusoe").stop(m.instance_id)
    view = mgr.status("stp")
    c = view.counts
    assert (c.running, c.stopped) == (1, 2)
    assert view.price_per_hour == pytest.approx(members[2].price_per_hour)
    view = mgr.power("stp", start=True)
    assert view.counts.running == 3
    view = mgr.power("stp", start=False)
    assert view.counts.stopped == 3 and view.price_per_hour == 0


# reference only: Lambda's public API has no reservations (so no VM the API cannot terminate), cloud-apis.md §2
def test_destroying_fleet_shows_what_still_bills(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "lambda"})
    mgr.create(spec("h100:8", 2, "bill", policy="cheapest", allow_unterminable_reserved=True,
                    reserved_mode="prefer"))
    with pytest.raises(Exception):
        mgr.destroy("bill")
    view = mgr.status("bill")
    assert view.fleet.state is FleetState.DESTROYING
    assert view.counts.running == 1 and view.counts.billing == 1
    # reconcile reports the member the API can never destroy; it does not fail (nor retry) every time
    out = mgr.reconcile("bill")
    assert any("cannot be destroyed through the API" in w for w in out.warnings)
    out = mgr.reconcile_all()
    assert [v.fleet.name for v in out] == ["bill"]


def test_min_zero_is_a_usage_error() -> None:
    from vmops.fleet.manager import FleetSpec
    from vmops.model import GpuShape

    with pytest.raises(UsageError, match="--min"):
        FleetSpec(GpuShape("h100", 1), 3, "z", min_count=0).validated()


@both_dialects
def test_all_providers_unreachable_is_exit_12_and_leaves_no_record(tmp_path, make_manager) -> None:
    mgr = make_manager({"VMOPS_CRUSOE_URL": dead_url(), "VMOPS_LAMBDA_URL": dead_url(),
                        "VMOPS_NEBIUS_ENDPOINT": dead_url("grpc")})
    with pytest.raises(ProviderUnavailable) as ei:
        mgr.create(spec("h100", 2, "down"))
    assert ei.value.exit_code == 12
    assert mgr.store.find_fleet("down") is None


@both_dialects
def test_impossible_fleet_fails_before_any_create(sims, config, make_manager) -> None:
    """Crusoe reports exact capacity: a fleet it cannot hold is refused from the plan, with no create sent."""
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    with pytest.raises(InsufficientCapacity) as ei:
        mgr.create(spec("h100:8", 100, "huge"))
    assert ei.value.exit_code == 7 and "nothing was created" in str(ei.value)
    assert sims["crusoe"].requests.count("create_instance") == 0
    assert mgr.store.find_fleet("huge") is None


@both_dialects
def test_unknown_create_outcome_is_not_success(sims, config, make_manager) -> None:
    """Lambda's launches are lost and Lambda cannot be listed after the fleet's first list: the fleet fills up
    elsewhere, but launches that may have made billing VMs are not success."""
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe,lambda"})
    sims["lambda"].faults.add(Fault(endpoint="launch", kind="lose_response"))
    sims["lambda"].faults.add(Fault(endpoint="list_instances", kind="error", status=503, nth=tuple(range(2, 200))))
    result = mgr.create(spec("h100", 4, "unk", min_count=2))
    assert result.fleet.state is FleetState.ACTIVE and result.unknown
    err = result.error()
    assert err is not None and err.exit_code == 14 and "unknown outcome" in str(err)
    sims["lambda"].faults.clear()
    view = mgr.status("unk")  # resolves it by name now that the provider answers
    assert view.counts.unknown_outcome == 0


@both_dialects
def test_reconcile_of_interrupted_create_below_min_keeps_what_exists(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    mgr.create(spec("h100", 2, "cut"))
    f = mgr.store.get_fleet("cut")
    with mgr.store.write() as db:  # a create that died at 2 of 4 (min 4)
        db.execute("UPDATE fleet SET state='creating', count=4, min_count=4, owner_pid=NULL WHERE id=?", (f.id,))
    before = _ids(config, "cut")
    view = mgr.reconcile("cut")
    assert _ids(config, "cut") == before
    assert view.fleet.state is FleetState.FAILED and any("kept" in n for n in view.decision.notes)


@both_dialects
def test_dry_run_destroy_writes_no_state_file(sims, config, make_manager) -> None:
    from vmops.errors import NotFound

    mgr = make_manager()
    with pytest.raises(NotFound):
        mgr.preview_destroy("nothing")
    assert not config.state_path.exists()
    plan = mgr.plan(spec("h100", 2, "plan-only"))
    assert plan.planned == 2 and not config.state_path.exists()


@both_dialects
def test_default_fleet_does_not_take_reservations(sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    result = mgr.create(spec("h100:8", 1, "od"))
    with Session(config) as s:
        (vm,) = [i for i in s.provider("crusoe").list_instances() if i.id == result.members[0].instance_id]
    assert not vm.reserved and result.fleet.reserved_mode == "never"


@both_dialects
def test_fleet_destroy_keeps_a_lookalike_not_on_record_unless_asked(sims, config, make_manager) -> None:
    from vmops.fleet.report import UnrecordedKept

    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    (m,) = mgr.create(spec("h100", 1, "lk")).members
    hand = mgr.provider("crusoe").create(CreateRequest(name="vmops-lk-002", native_type=m.native_type,
                                                       region=m.region))
    shown = mgr.preview_destroy("lk")
    assert [h.instance_id for h in shown.held] == [hand.id]
    with pytest.raises(UnrecordedKept) as ei:
        mgr.destroy("lk")
    assert ei.value.exit_code == 14
    assert _ids(config, "lk") == {hand.id}  # the member went, the VM nobody named stayed
    assert mgr.store.get_fleet("lk").state is FleetState.DESTROYED
    mgr.destroy("lk", include_unrecorded=True)
    assert _ids(config, "lk") == set()
