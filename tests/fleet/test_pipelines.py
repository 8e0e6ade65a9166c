"""Issue 15, "providers never wait for each other" and "give up early", against both dialects' simulators.

A fleet create runs one pipeline per provider (vmops.fleet.lanes): a provider that is slow to answer its
creates delays only its own members. And a create gives up as soon as its minimum is out of reach, deleting
members that are still creating instead of waiting for them. Both are checked through the order of the
fleet's own event log and the providers' own instance lists, never through timings.
"""

from __future__ import annotations

import pytest

from vmops.fleet.report import FleetCreateFailed
from vmops.sim.common import Fault
from vmops.state import MemberStatus

from tests.conftest import both_dialects
from tests.fleet.conftest import at_providers, spec

pytestmark = both_dialects


def _events(mgr, fleet: str) -> tuple[dict[int, str], list]:
    f = mgr.store.get_fleet(fleet)
    providers = {m.id: m.provider for m in mgr.store.members(f.id)}
    return providers, mgr.store.events(f.id)


def test_a_slow_provider_delays_only_its_own_members(sims, config, make_manager) -> None:
    # Nebius holds every create for 3 s; Crusoe and Lambda members must be running (and recorded so) first.
    sims["nebius"].faults.add(Fault("InstanceService/Create", "latency", latency_s=3.0))
    mgr = make_manager()
    result = mgr.create(spec("h100", 6, "slow6", policy="spread"))
    assert sum(m.status is MemberStatus.RUNNING for m in result.members) == 6
    providers, events = _events(mgr, "slow6")
    assert {providers[m] for m in providers} == {"crusoe", "lambda", "nebius"}
    running = {e.member_id: e.id for e in events if e.kind == "member" and e.to_state == "running"}
    accepted = {e.member_id: e.id for e in events if e.kind == "member" and e.to_state == "accepted"}
    others_running = [running[m] for m in running if providers[m] != "nebius"]
    nebius_accepted = [accepted[m] for m in accepted if providers[m] == "nebius"]
    assert others_running and nebius_accepted
    # every Crusoe/Lambda member was recorded running before Nebius answered any of its creates
    assert max(others_running) < min(nebius_accepted), events
    mgr.destroy("slow6")
    assert at_providers(config, "slow6") == []


def test_out_of_reach_minimum_gives_up_and_deletes_members_still_creating(sims, config, make_manager) -> None:
    # Crusoe's creates never finish (its VMs stay creating); Nebius refuses every create for capacity. Crusoe
    # holds 3 h100:8 on demand, so once Nebius is out, 4 can no longer be reached: the run must give up at
    # once and delete the creating Crusoe members, not wait for their operation timeout.
    sims["crusoe"].faults.add(Fault("create_instance", "never_complete"))
    # Nebius refuses only after a while, so that Crusoe's creates are accepted first (without the delay the
    # run may give up before sending them at all, which is right too, but not what this test is about)
    sims["nebius"].faults.add(Fault("InstanceService/Create", "latency", latency_s=1.5))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "error", grpc_code="RESOURCE_EXHAUSTED",
                                    message="No capacity for this platform"))
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe,nebius"})
    with pytest.raises(FleetCreateFailed) as ei:
        mgr.create(spec("h100:8", 4, "reach4", policy="spread"))
    text = str(ei.value)
    assert "gave up as soon as that was clear" in text and "rolled back" in text, text
    assert not ei.value.undestroyed
    providers, events = _events(mgr, "reach4")
    f = mgr.store.get_fleet("reach4")
    crusoe = [m for m in mgr.store.members(f.id) if m.provider == "crusoe" and m.instance_id]
    assert crusoe, "the Crusoe creates were accepted"
    # deleted while still creating: never running, never timed out
    assert not any(e.to_state == "running" for e in events if e.kind == "member")
    assert all("did not become running" not in (m.last_error or "") for m in crusoe), crusoe
    assert all(m.status in (MemberStatus.DESTROYED, MemberStatus.GONE) for m in crusoe), crusoe
    assert at_providers(config, "reach4") == []


def test_a_replacement_does_not_wait_for_its_providers_current_batch(sims, config, make_manager) -> None:
    # Crusoe's first create never finishes (its batch waits until the operation timeout); Nebius refuses its
    # create for capacity a moment later, so the replacement goes to Crusoe while that batch still waits. It
    # must be made and running before the stuck member times out, not queued behind it.
    sims["crusoe"].faults.add(Fault("create_instance", "never_complete", nth=(1,)))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "latency", latency_s=0.5))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "error", grpc_code="RESOURCE_EXHAUSTED",
                                    message="No capacity for this platform"))
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe,nebius", "VMOPS_OP_TIMEOUT": "4"})
    result = mgr.create(spec("h100", 2, "nowait2", policy="spread", min_count=1))
    assert sum(m.status is MemberStatus.RUNNING for m in result.members) >= 1, result.to_dict()
    providers, events = _events(mgr, "nowait2")
    f = mgr.store.get_fleet("nowait2")
    members = {m.id: m for m in mgr.store.members(f.id)}
    ran = {e.member_id for e in events if e.kind == "member" and e.to_state == "running"}
    stuck = [m for m in members.values() if m.provider == "crusoe" and m.instance_id and m.id not in ran]
    assert len(stuck) == 1, [(e.member_id, e.to_state, e.message) for e in events]
    given_up = min(e.id for e in events if e.member_id == stuck[0].id and e.to_state in ("failed", "destroying"))
    replaced = [e.id for e in events if e.kind == "member" and e.to_state == "running"
                and providers[e.member_id] == "crusoe" and members[e.member_id].seq > stuck[0].seq]
    assert replaced and min(replaced) < given_up, [(e.member_id, e.to_state, e.message) for e in events]
    mgr.destroy("nowait2")
    assert at_providers(config, "nowait2") == []


def test_batches_at_one_provider_share_its_creates_in_flight(sims, config, make_manager) -> None:
    # Nebius refuses its 4 creates while Crusoe's 4 are still being answered (each takes 0.5 s): the 4
    # replacements start a second batch at Crusoe at once, but never a fifth create in flight there
    # (Limits.per_provider), so a refusal there would still stop as many sends as before.
    sims["crusoe"].faults.add(Fault("create_instance", "latency", latency_s=0.5))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "latency", latency_s=0.1))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "error", grpc_code="RESOURCE_EXHAUSTED",
                                    message="No capacity for this platform"))
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe,nebius"})
    result = mgr.create(spec("h100", 8, "slots8", policy="spread"))
    assert sum(m.status is MemberStatus.RUNNING for m in result.members) == 8, result.to_dict()
    answered = sorted(r.at for r in sims["crusoe"].requests.records() if r.endpoint == "create_instance")
    assert len(answered) == 8, answered
    # each create is held 0.5 s before it is answered, so any 5 answers span at least 0.5 s unless 5 were in
    # flight at once (0.35: room for a sleep that overran on a loaded machine; 5 in flight spans ~0.1 s)
    spans = [answered[i + 4] - answered[i] for i in range(len(answered) - 4)]
    assert min(spans) >= 0.35, spans
    mgr.destroy("slots8")
    assert at_providers(config, "slots8") == []
