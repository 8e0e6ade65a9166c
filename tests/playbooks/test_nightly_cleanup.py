"""nightly-cleanup.yml with the real ansible-playbook against the three simulators."""

from __future__ import annotations

from vmops.fleet.ownership import labels_for
from vmops.state import FleetState, open_store

from tests.conftest import both_dialects
from tests.playbooks import scenario as sc
from tests.playbooks.helpers import playbook

#: every run lists, judges ownership (labels where the provider has them) and destroys: dialect-dependent
pytestmark = both_dialects
NOW = {"stuck_after_hours": 0, "orphan_min_age_hours": 0}


def _fleet_state(vm_env, name):
    with open_store(f"{vm_env['VMOPS_HOME']}/state.db") as st:
        rec = st.find_fleet(name)
        return rec.state if rec else None


def _crash_and_orphans(vm_env):
    sc.crash_fleet_create(vm_env, "crashy", ["crusoe", "lambda", "nebius"])
    sc.make_orphan(vm_env, "crusoe", "ghost", 1)
    sc.make_orphan(vm_env, "nebius", "ghost", 2)
    sc.make_orphan(vm_env, "lambda", "lost", 7)


def test_check_mode_makes_no_mutating_call(vm_env, sims):
    _crash_and_orphans(vm_env)
    before = sc.all_names(vm_env)
    sc.reset_counters(sims)
    run = playbook("nightly-cleanup", vm_env, check=True, extra=NOW)
    assert run.code == 0, run
    items = run.changed_items()  # one stuck fleet + three orphans, reported as would-change
    assert len(items) == 4 and "crashy" in items, run
    assert sc.mutating(sims) == {"crusoe": 0, "lambda": 0, "nebius": 0}
    assert sc.all_names(vm_env) == before
    assert _fleet_state(vm_env, "crashy") is FleetState.CREATING
    assert '"state": "absent"' in run.out  # --diff shows what would change


def test_destroys_crash_leftovers_and_orphans_only(vm_env, sims):
    seeds = sc.all_names(vm_env)  # the simulator's own VMs (each dialect seeds its own)
    _crash_and_orphans(vm_env)
    sc.make_orphan(vm_env, "crusoe", "ghost", 3)  # protected below
    # named like a fleet member on a provider with labels, but without the fleet label: not vmops'
    sc.make_vm(vm_env, "nebius", "vmops-fake-001", labels={"team": "ml"})
    sc.make_vm(vm_env, "crusoe", "my-notebook")  # made by someone else: reported, never touched
    run = playbook("nightly-cleanup", vm_env, extra={**NOW, "protect": ["vmops-ghost-003"]})
    assert run.code == 0, run
    assert run.recap["failed"] == 0, run
    assert sc.all_names(vm_env) == seeds | {"vmops-ghost-003", "vmops-fake-001", "my-notebook"}
    assert _fleet_state(vm_env, "crashy") is FleetState.DESTROYED
    assert "crusoe my-notebook" in run.out and "nebius vmops-fake-001" in run.out  # reported as not vmops'
    assert len(run.changed_items()) == 4, run
    # idempotent: a second run finds nothing to do
    sc.reset_counters(sims)
    again = playbook("nightly-cleanup", vm_env, extra={**NOW, "protect": ["vmops-ghost-003"]})
    assert again.code == 0, again
    assert again.recap["changed"] == 0, again
    assert sc.mutating(sims) == {"crusoe": 0, "lambda": 0, "nebius": 0}


def test_max_destroy_aborts_before_touching_anything(vm_env, sims):
    _crash_and_orphans(vm_env)  # 3 VMs of the stuck fleet + 3 orphans = 6
    before = sc.all_names(vm_env)
    sc.reset_counters(sims)
    run = playbook("nightly-cleanup", vm_env, extra={**NOW, "max_destroy": 5})
    assert run.code != 0, run
    assert run.recap["failed"] == 1, run
    assert "DestroyLimitExceeded" in run.out and "would destroy 6 VM(s)" in run.out, run
    assert sc.mutating(sims) == {"crusoe": 0, "lambda": 0, "nebius": 0}
    assert sc.all_names(vm_env) == before


def test_young_crash_is_finished_by_reconcile_not_destroyed(vm_env, sims):
    """Below the stuck threshold the interrupted create is reconciled (members adopted and kept)."""
    sc.crash_fleet_create(vm_env, "young", ["crusoe", "nebius"])
    run = playbook("nightly-cleanup", vm_env, extra={"orphan_min_age_hours": 0})  # default: 6 h
    assert run.code == 0, run
    assert {"vmops-young-001", "vmops-young-002"} <= sc.all_names(vm_env)
    assert _fleet_state(vm_env, "young") is FleetState.ACTIVE
    with open_store(f"{vm_env['VMOPS_HOME']}/state.db") as st:
        rec = st.find_fleet("young")
        assert all(m.instance_id for m in st.members(rec.id))  # the lost answer was resolved by name


def test_orphan_of_a_destroyed_fleet_is_destroyed_but_labels_must_agree(vm_env, sims):
    sc.make_vm(vm_env, "nebius", "vmops-old-001", labels=labels_for("other", sc.store_id(vm_env)))  # label disagrees
    sc.make_orphan(vm_env, "nebius", "old", 2)
    run = playbook("nightly-cleanup", vm_env, extra=NOW)
    assert run.code == 0, run
    names = sc.all_names(vm_env)
    assert "vmops-old-001" in names and "vmops-old-002" not in names
