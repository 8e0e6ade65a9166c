"""fleet-up.yml / fleet-down.yml: a fleet as declared state."""

from __future__ import annotations

from vmops.state import FleetState, open_store

from tests.conftest import both_dialects
from tests.playbooks import scenario as sc
from tests.playbooks.helpers import playbook

NONE = {"crusoe": 0, "lambda": 0, "nebius": 0}
FLEET = {"fleet_name": "web", "fleet_gpu": "h100", "fleet_count": 2}


def _members(vm_env):
    return {n for n in sc.all_names(vm_env) if n.startswith("vmops-web-")}


def _fleets(vm_env):
    with open_store(f"{vm_env['VMOPS_HOME']}/state.db") as st:
        return [(f.name, f.state) for f in st.list_fleets()]


@both_dialects
def test_fleet_up_check_mode_plans_and_changes_nothing(vm_env, sims, dialect):
    run = playbook("fleet-up", vm_env, check=True, extra=FLEET)
    assert run.code == 0, run
    assert run.recap["changed"] == 1, run
    assert "price_per_hour" in run.out  # the plan is shown
    assert sc.mutating(sims) == NONE
    assert _members(vm_env) == set() and _fleets(vm_env) == []


@both_dialects
def test_fleet_up_twice_leaves_one_fleet_then_down(vm_env, sims, dialect):
    first = playbook("fleet-up", vm_env, extra=FLEET)
    assert first.code == 0 and first.recap["changed"] == 1, first
    assert len(_members(vm_env)) == 2
    sc.reset_counters(sims)
    second = playbook("fleet-up", vm_env, extra=FLEET)
    assert second.code == 0 and second.recap["changed"] == 0, second
    assert sc.mutating(sims) == NONE
    assert len(_members(vm_env)) == 2 and _fleets(vm_env) == [("web", FleetState.ACTIVE)]

    resize = playbook("fleet-up", vm_env, extra={**FLEET, "fleet_count": 3})
    assert resize.code != 0 and "does not resize fleets" in resize.out and "StateError" in resize.out, resize

    over = playbook("fleet-down", vm_env, extra={"fleet_name": "web", "max_destroy": 1})
    assert over.code != 0 and "DestroyLimitExceeded" in over.out, over
    assert sc.mutating(sims) == NONE and len(_members(vm_env)) == 2

    check = playbook("fleet-down", vm_env, check=True, extra={"fleet_name": "web"})
    assert check.code == 0 and check.recap["changed"] == 1, check
    assert sc.mutating(sims) == NONE and len(_members(vm_env)) == 2

    down = playbook("fleet-down", vm_env, extra={"fleet_name": "web"})
    assert down.code == 0 and down.recap["changed"] == 1, down
    assert _members(vm_env) == set()
    assert _fleets(vm_env) == [("web", FleetState.DESTROYED)]
    again = playbook("fleet-down", vm_env, extra={"fleet_name": "web"})
    assert again.code == 0 and again.recap["changed"] == 0, again


# refused by the playbook's first task (an assert), before any provider is called: the dialect plays no part
def test_fleet_up_refuses_more_than_max_create(vm_env, sims):
    run = playbook("fleet-up", vm_env, extra={**FLEET, "fleet_count": 9})
    assert run.code != 0 and "more than max_create=8" in run.out, run
    assert sc.mutating(sims) == NONE
