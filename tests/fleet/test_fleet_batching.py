"""Fleet creates list each provider once per round (not one name lookup per VM), and a lost answer in such a
round still adopts only the VM that create made (never an older namesake)."""

from __future__ import annotations

from vmops.model import CreateRequest
from vmops.sim.common import Fault
from vmops.state import FleetState, MemberStatus

from tests.conftest import both_dialects
from tests.fleet.conftest import spec
from tests.providers.dialects import WORLDS

pytestmark = both_dialects


def test_create_round_lists_once_instead_of_a_lookup_per_vm(sims, config, make_manager) -> None:
    crusoe = sims["crusoe"]
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    result = mgr.create(spec("h100", 8, "batch8"))
    assert result.fleet.state is FleetState.ACTIVE
    assert sum(1 for m in result.members if m.status is MemberStatus.RUNNING) == 8
    log = [r.endpoint for r in crusoe.requests.records()]
    creates = [i for i, e in enumerate(log) if e == "create_instance"]
    assert len(creates) == 8
    # one list before the round, none between the creates (a lookup per VM would put one before each)
    assert "list_instances" in log[: creates[0]]
    assert "list_instances" not in log[creates[0] : creates[-1]]


def test_lost_answer_in_a_batched_round_adopts_only_the_new_vm(sims, config, make_manager, dialect) -> None:
    crusoe = sims["crusoe"]
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    # a VM that already carries the name member 2 will get (left over from anything)
    w = WORLDS["crusoe", dialect]
    old = mgr.provider("crusoe").create(CreateRequest("vmops-lost4-002", w.small, region=w.region), wait=False)
    crusoe.faults.add(Fault("create_instance", "lose_response", nth=(3,)))  # call 1 was the namesake
    result = mgr.create(spec("h100", 4, "lost4"))
    assert result.fleet.state is FleetState.ACTIVE
    running = [m for m in result.members if m.status is MemberStatus.RUNNING]
    assert len(running) == 4
    assert old.id not in {m.instance_id for m in result.members}
    assert len({m.instance_id for m in running}) == 4
    lost = [m for m in running if m.name == "vmops-lost4-002"]
    namesakes = [i for i in mgr.provider("crusoe").list_instances() if i.name == "vmops-lost4-002"]
    assert len(namesakes) == 2 and {i.id for i in namesakes} == {old.id, lost[0].instance_id}
    assert crusoe.requests.count("create_instance") == 5  # namesake + 4 members, no duplicate create


def test_destroy_lists_each_provider_once_before_its_deletes(sims, config, make_manager) -> None:
    """The observation a destroy was decided on stands in for the adapters' own list before the deletes."""
    crusoe = sims["crusoe"]
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    assert mgr.create(spec("h100", 6, "dlist6")).fleet.state is FleetState.ACTIVE
    crusoe.requests.reset()
    mgr.provider("crusoe").list_instances()
    pages = crusoe.requests.count("list_instances")  # one listing's requests (the cloud dialect pages)
    crusoe.requests.reset()
    view = mgr.destroy("dlist6")
    assert view.fleet.state is FleetState.DESTROYED
    log = [r.endpoint for r in crusoe.requests.records()]
    deletes = [i for i, e in enumerate(log) if e == "delete_instance"]
    assert len(deletes) == 6
    assert log[: deletes[0]].count("list_instances") == pages  # the observation's; no second list per slice
    assert "list_instances" not in log[deletes[0] : deletes[-1]]
    assert not [i for i in mgr.provider("crusoe").list_instances() if i.name.startswith("vmops-dlist6-")]


def test_members_seen_running_in_one_poll_are_one_progress_change(sims, config, make_manager) -> None:
    """A poll that finds several members running reports them as one change (a plain progress line per
    change, not one per VM); the counts still end on every member running."""
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    snaps: list[int] = []
    mgr.listener = lambda snap: snaps.extend(p.running for p in snap if p.provider == "crusoe")
    result = mgr.create(spec("h100", 6, "ticks6"))
    assert result.fleet.state is FleetState.ACTIVE
    steps = [b for a, b in zip(snaps, snaps[1:]) if b > a]
    assert snaps[-1] == 6 and len(steps) < 6  # one per poll that saw new ones; one per VM would be 6


def test_lambda_fleet_destroy_sends_one_terminate_per_batch(sims, config, make_manager, dialect) -> None:
    """Lambda's terminate takes a list: a fleet destroy sends as many calls as batches (reference: 50 ids per
    call, so one), not one per VM in concurrent slices; the cloud dialect keeps one id per call by default."""
    lam = sims["lambda"]
    mgr = make_manager({"VMOPS_PROVIDERS": "lambda"})
    assert mgr.create(spec("h100", 6, "lterm6")).fleet.state is FleetState.ACTIVE
    lam.requests.reset()
    view = mgr.destroy("lterm6")
    assert view.fleet.state is FleetState.DESTROYED
    # Calls the provider took: a call its rate limit turned away (429) is paced and sent again, which is the
    # pacer's business, not the batching's (the cloud simulator counts a stalled burst against its bucket).
    calls = [(r.endpoint, r.outcome) for r in lam.requests.records()]
    took = [c for c in calls if c == ("terminate", "ok")]
    assert len(took) == (1 if dialect == "reference" else 6), calls
    assert not [i for i in mgr.provider("lambda").list_instances() if i.name.startswith("vmops-lterm6-")]
