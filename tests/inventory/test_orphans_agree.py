"""Inventory and nightly-cleanup agree on orphans: both ask the one ownership rule, so the same scenario
gives the same set (cleanup's orphans are inventory's unrecorded VMs whose fleet has no live record; the
rest of inventory's unrecorded VMs are the ones a live fleet's Decision adopts or resolves)."""

from __future__ import annotations

from vmops import inventory as inv
from vmops.cleanup.nightly import plan_cleanup
from vmops.cleanup.protect import ProtectList
from vmops.fleet.decision import ActionKind
from vmops.fleet.manager import FleetManager
from vmops.fleet.ownership import labels_for
from vmops.state import FleetState, MemberStatus, open_store

from tests.conftest import both_dialects
from tests.playbooks import scenario as sc

pytestmark = both_dialects


def test_inventory_and_cleanup_find_the_same_orphans(sims, vm_env, session):
    ghosts = [sc.make_orphan(vm_env, "crusoe", "ghost", 1), sc.make_orphan(vm_env, "nebius", "ghost", 2),
              sc.make_orphan(vm_env, "lambda", "lost", 7)]
    old = sc.recorded_fleet(vm_env, "old", [("nebius", None)])
    with open_store(session.config.state_path) as st:  # destroyed on record, but its VM lives on
        rec = st.find_fleet("old")
        for m in st.members(rec.id):
            st.update_member(m.id, status=MemberStatus.DESTROYED)
        st.set_fleet_state(rec.id, FleetState.DESTROYED)
    sc.recorded_fleet(vm_env, "train", [("nebius", None), ("crusoe", None)])
    late = sc.make_vm(vm_env, "crusoe", "vmops-train-003")  # the fleet's by name at crusoe: adopted
    lookalike = sc.make_vm(vm_env, "nebius", "vmops-train-004", labels={"team": "ml"})
    foreign = sc.make_vm(vm_env, "nebius", "vmops-other-001", labels=labels_for("other", "another-installation"))

    frame = inv.orphans(session)
    unrecorded = frame[frame["kind"] == inv.UNRECORDED]
    inv_all = {(r.provider, r.id) for r in unrecorded.itertuples()}
    with FleetManager(session) as mgr:
        live = {f.name for f in mgr.store.list_fleets() if f.state is not FleetState.DESTROYED}
        lists = {"crusoe": "list_instances", "lambda": "list_instances", "nebius": "InstanceService/List"}

        def counts() -> dict[str, int]:
            return {p: sims[p].requests.count(e) for p, e in lists.items()}

        before = counts()
        for p in lists:
            session.provider(p).list_instances()
        one, before = {p: n - before[p] for p, n in counts().items()}, counts()  # its pages on a cloud API
        plan = plan_cleanup(mgr, stuck_after_hours=1e9, orphan_min_age_hours=0, protect=ProtectList())
        # one list per provider for the whole plan, however many fleets it previews
        assert {p: n - before[p] for p, n in counts().items()} == one
    inv_orphans = {(r.provider, r.id) for r in unrecorded.itertuples() if r.fleet not in live}
    orphans = {(o.inst.provider, o.inst.id) for o in plan.orphans}
    adopted = {(a.provider, a.instance_id) for s in plan.steps for a in s.decision.actions
               if a.kind in (ActionKind.ADOPT, ActionKind.RESOLVE)}

    assert orphans == inv_orphans == {(i.provider, i.id) for i in ghosts + old}
    assert inv_all == orphans | adopted and adopted == {("crusoe", late.id)}
    unmanaged = {(u.inst.provider, u.inst.id) for u in plan.unmanaged}
    for vm in (lookalike, foreign):  # not ours by the rule: unmanaged for cleanup, no orphan for inventory
        assert (vm.provider, vm.id) in unmanaged and (vm.provider, vm.id) not in inv_all
