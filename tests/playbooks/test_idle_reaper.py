"""idle-reaper.yml with the real ansible-playbook against the simulators."""

from __future__ import annotations

from vmops.model import State

from tests.conftest import both_dialects
from tests.playbooks import scenario as sc
from tests.playbooks.helpers import playbook

NONE = {"crusoe": 0, "lambda": 0, "nebius": 0}


def _state(vm_env, provider, name):
    return sc.live(vm_env)[provider][name].state


@both_dialects
def test_check_mode_makes_no_mutating_call(vm_env, sims, dialect):
    sc.make_vm(vm_env, "crusoe", "dev-alice")
    sc.reset_counters(sims)
    run = playbook("idle-reaper", vm_env, check=True, extra={"older_than_hours": 0})
    assert run.code == 0, run
    assert [i for i in run.changed_items() if "dev-alice" in i], run
    assert sc.mutating(sims) == NONE
    assert _state(vm_env, "crusoe", "dev-alice") is State.RUNNING


@both_dialects
def test_stops_matching_vms_and_skips_protected_reserved_and_unknown_age(vm_env, sims, dialect):
    sc.make_vm(vm_env, "crusoe", "dev-alice")
    sc.make_vm(vm_env, "nebius", "dev-bob")
    sc.make_vm(vm_env, "crusoe", "dev-keep")
    sc.make_vm(vm_env, "crusoe", "prod-api")
    sc.make_vm(vm_env, "lambda", "dev-carol")
    extra = {"older_than_hours": 0, "protect": ["dev-keep"]}
    run = playbook("idle-reaper", vm_env, extra=extra)
    assert run.code == 0, run
    assert _state(vm_env, "crusoe", "dev-alice") is State.STOPPED
    assert _state(vm_env, "nebius", "dev-bob") is State.STOPPED
    assert _state(vm_env, "crusoe", "dev-keep") is State.RUNNING  # protect list
    assert _state(vm_env, "crusoe", "prod-api") is State.RUNNING  # pattern does not match
    # Lambda reports no creation time (either API) and vmops recorded none for it: skipped
    assert _state(vm_env, "lambda", "dev-carol") is State.RUNNING
    assert "dev-carol: age unknown" in run.out and "dev-keep: protected" in run.out, run
    # idempotent: the stopped VMs are not stopped again
    sc.reset_counters(sims)
    again = playbook("idle-reaper", vm_env, extra=extra)
    assert again.code == 0 and again.changed_items() == [], again
    assert sc.mutating(sims) == NONE


@both_dialects
def test_destroy_by_label_and_limit(vm_env, sims, dialect):
    sc.make_vm(vm_env, "nebius", "scratch-1", labels={"env": "scratch"})
    sc.make_vm(vm_env, "nebius", "scratch-2", labels={"env": "scratch"})
    sc.make_vm(vm_env, "nebius", "prod-1", labels={"env": "prod"})
    sel = {"reaper_names": [], "reaper_labels": {"env": "scratch"}, "reaper_action": "destroy", "older_than_hours": 0}
    sc.reset_counters(sims)
    over = playbook("idle-reaper", vm_env, extra={**sel, "max_actions": 1})
    assert over.code != 0 and "ActionLimitExceeded" in over.out and "would destroy 2 VM(s)" in over.out, over
    assert sc.mutating(sims) == NONE
    run = playbook("idle-reaper", vm_env, extra=sel)
    assert run.code == 0, run
    names = sc.live(vm_env)["nebius"]
    assert "scratch-1" not in names and "scratch-2" not in names
    assert "prod-1" in names  # labelled env=prod: untouched


# refused while parsing its arguments, before any provider is called: the dialect plays no part
def test_a_selector_is_required(vm_env, sims):
    run = playbook("idle-reaper", vm_env, extra={"reaper_names": [], "older_than_hours": 0})
    assert run.code != 0 and run.recap["failed"] == 1, run
    assert "needs a selector" in run.out
    assert sc.mutating(sims) == NONE
