"""Check mode predicts exactly what the run does: nightly-cleanup and idle-reaper run in --check, then for
real, over scenarios; the check-mode report is compared with the changes seen at the simulators (not with
vmops' own record). Also: cleanup keeps going past a fleet it cannot clean up, and never adopts or destroys
a look-alike VM that is not the fleet's by the ownership rule."""

from __future__ import annotations

from vmops.state import FleetState, open_store

from tests.conftest import both_dialects
from tests.playbooks import scenario as sc
from tests.playbooks.helpers import Run, playbook

NOW = {"stuck_after_hours": 0, "orphan_min_age_hours": 0}
NONE = {"crusoe": 0, "lambda": 0, "nebius": 0}
#: (provider, reservation) whose VMs the API cannot terminate, per dialect: the reference Lambda's. The cloud
#: APIs have none (Lambda's public API has no reservations; Crusoe and Nebius delete reserved VMs).
UNTERMINABLE = {"reference": ("lambda", "rsv-lambda-001"), "cloud": None}


def _state(vm_env, name):
    with open_store(f"{vm_env['VMOPS_HOME']}/state.db") as st:
        rec = st.find_fleet(name)
        return rec.state if rec else None


def _predicted(run: Run) -> set[tuple[str, str]]:
    destroys = run.debug_var("cleanup.plan.destroys")
    assert destroys is not None, run
    return {(d["provider"], d["id"]) for d in destroys}


def _check_then_run(vm_env, sims, extra, env=None):
    """--check, then the real run; returns (check, real, predicted destroys, destroyed at the providers)."""
    env = env or vm_env
    before = sc.snapshot(vm_env)
    sc.reset_counters(sims)
    check = playbook("nightly-cleanup", env, check=True, extra=extra)
    assert sc.mutating(sims) == NONE, check  # check mode changes nothing anywhere
    assert sc.snapshot(vm_env) == before
    real = playbook("nightly-cleanup", env, extra=extra)
    after = sc.snapshot(vm_env)
    destroyed = set(before) - set(after)
    assert all(after[k] == before[k] for k in after), real  # nothing else changed state
    return check, real, _predicted(check), destroyed


def _scenario(vm_env, dialect):
    """Orphans, a stuck (crashed) create, a stuck failed fleet, an active fleet with a label-less look-alike
    next to it, a failed fleet on reserved capacity the API cannot terminate (where the dialect has such), and a
    fleet with a surplus member."""
    ghosts = [sc.make_orphan(vm_env, "crusoe", "ghost", 1), sc.make_orphan(vm_env, "nebius", "ghost", 2)]
    sc.crash_fleet_create(vm_env, "crashy", ["crusoe", "nebius"])
    broken = sc.recorded_fleet(vm_env, "broken", [("crusoe", None), ("nebius", None)], state=FleetState.FAILED)
    train = sc.recorded_fleet(vm_env, "train", [("nebius", None)])
    lookalike = sc.make_vm(vm_env, "nebius", "vmops-train-002", labels={"team": "ml"})
    resv = []
    if UNTERMINABLE[dialect]:
        resv = sc.recorded_fleet(vm_env, "resv", [UNTERMINABLE[dialect]], gpu="h100:8", state=FleetState.FAILED)
        assert resv[0].reserved and not resv[0].can_terminate
    wide = sc.recorded_fleet(vm_env, "wide", [("crusoe", None), ("crusoe", None)], count=1)
    return {"ghosts": ghosts, "broken": broken, "train": train, "lookalike": lookalike, "resv": resv, "wide": wide}


@both_dialects  # listing, ownership by name and labels, destroys: all of it differs per dialect
def test_check_mode_predicts_the_run_exactly(vm_env, sims, dialect):
    made = _scenario(vm_env, dialect)
    crashy = {k for k, (name, _) in sc.snapshot(vm_env).items() if name.startswith("vmops-crashy-")}
    check, real, predicted, destroyed = _check_then_run(vm_env, sims, NOW)
    assert check.code == 0 and real.code == 0, real
    assert predicted == destroyed, (check, real)
    expected = {(i.provider, i.id) for i in made["ghosts"] + made["broken"]} | crashy
    assert destroyed == expected
    assert sorted(check.changed_items()) == sorted(real.changed_items()), (check, real)
    assert check.recap["changed"] == real.recap["changed"], (check, real)
    # the look-alike is unmanaged in the plan and never adopted or destroyed
    assert "nebius vmops-train-002" in check.out and "nebius vmops-train-002" in real.out
    assert check.debug_var("cleanup.plan.kept") is None  # every fleet-named VM is in its fleet's Decision
    with open_store(f"{vm_env['VMOPS_HOME']}/state.db") as st:
        assert st.member_by_instance("nebius", made["lookalike"].id) is None
        # the surplus member is held (reported), not destroyed, without destroy_surplus
        assert len(st.members(st.find_fleet("wide").id, live_only=True)) == 2
    assert "beyond the fleet's count of 1" in real.out
    # the reserved fleet is reported once and marked: it is no longer stuck, and never sent a destroy
    if made["resv"]:
        assert _state(vm_env, "resv") is FleetState.DESTROYING
    assert _state(vm_env, "broken") is FleetState.DESTROYED and _state(vm_env, "crashy") is FleetState.DESTROYED

    # the next night: nothing to do, nothing retried, nothing failing (the reserved member is reported)
    sc.reset_counters(sims)
    again = playbook("nightly-cleanup", vm_env, extra=NOW)
    assert again.code == 0 and again.recap["changed"] == 0, again
    assert sc.mutating(sims) == NONE
    assert all(vm.id in again.out for vm in made["resv"])  # still reported
    assert again.debug_var("cleanup.plan.destroys") == []


# which member is surplus is decided on vmops' record; the cloud dialect's listing, labels and destroys under
# the same playbook run in test_check_mode_predicts_the_run_exactly (playbook runs are slow: docs/design.md)
def test_destroy_surplus_is_predicted_and_done(vm_env, sims):
    wide = sc.recorded_fleet(vm_env, "wide", [("crusoe", None), ("nebius", None)], count=1)
    train = sc.recorded_fleet(vm_env, "train", [("nebius", None)])
    lookalike = sc.make_vm(vm_env, "nebius", "vmops-train-002")
    check, real, predicted, destroyed = _check_then_run(vm_env, sims, {**NOW, "destroy_surplus": True})
    assert check.code == 0 and real.code == 0, real
    assert predicted == destroyed == {(wide[1].provider, wide[1].id)}  # the newest member goes
    assert sorted(check.changed_items()) == sorted(real.changed_items()) == ["wide"], real
    names = sc.all_names(vm_env)
    assert {train[0].name, lookalike.name, wide[0].name} <= names  # the look-alike is never surplus


@both_dialects  # an unreachable provider is mapped by each dialect's adapter
def test_a_provider_down_is_predicted_and_reported_and_the_rest_is_cleaned(vm_env, sims, dialect):
    keep = sc.recorded_fleet(vm_env, "stuckdown", [("crusoe", None), ("lambda", None)], state=FleetState.FAILED)
    ghost = sc.make_orphan(vm_env, "crusoe", "ghost", 1)
    lost = sc.make_orphan(vm_env, "lambda", "lost", 7)
    down = {**vm_env, "VMOPS_LAMBDA_URL": "http://127.0.0.1:9"}
    check, real, predicted, destroyed = _check_then_run(vm_env, sims, NOW, env=down)
    assert predicted == destroyed == {("crusoe", ghost.id)}, (check, real)
    # the run is reported as incomplete (non-zero) by its last task, after everything else was done
    assert check.code != 0 and real.code != 0, real
    assert "not cleaned up" in real.out and "lambda: could not be listed" in real.out and "stuckdown" in real.out
    assert sorted(check.changed_items()) == sorted(real.changed_items())
    names = sc.all_names(vm_env)
    assert {lost.name, keep[0].name, keep[1].name} <= names
    assert _state(vm_env, "stuckdown") is FleetState.FAILED


@both_dialects  # the refused delete is mapped by each dialect's adapter
def test_a_fleet_that_cannot_be_destroyed_never_stops_the_others(vm_env, sims, dialect):
    """A stuck fleet whose destroy fails (its provider refuses every delete) is reported and the run exits
    non-zero at the end, but the other stuck fleet and the orphan sweep still run."""
    from vmops.sim.common import Fault

    bad = sc.recorded_fleet(vm_env, "bad", [("crusoe", None)], state=FleetState.FAILED)
    good = sc.recorded_fleet(vm_env, "good", [("nebius", None)], state=FleetState.FAILED)
    ghost = sc.make_orphan(vm_env, "nebius", "ghost", 1)
    # a refusal (409), not a server error: a 5xx is retried with backoff, which only makes the run slow
    sims["crusoe"].faults.add(Fault("delete_instance", "error", status=409, message="boom"))
    try:
        run = playbook("nightly-cleanup", vm_env, extra=NOW)
    finally:
        sims["crusoe"].faults.clear()
    assert run.code != 0, run
    assert "not cleaned up" in run.out and "'bad'" in run.out, run
    names = sc.all_names(vm_env)
    assert bad[0].name in names and good[0].name not in names and ghost.name not in names
    assert _state(vm_env, "good") is FleetState.DESTROYED


# check mode and the stops of idle-reaper run on both dialects in test_idle_reaper.py; this compares the two
# runs, which is the same code whatever the provider (playbook runs are slow: docs/design.md)
def test_idle_reaper_check_mode_predicts_the_run(vm_env, sims):
    sc.make_vm(vm_env, "crusoe", "dev-alice")
    sc.make_vm(vm_env, "nebius", "dev-bob")
    sc.make_vm(vm_env, "crusoe", "dev-keep")
    sc.recorded_fleet(vm_env, "dev", [("crusoe", None)])  # vmops-dev-001 does not match dev-*; a member anyway
    extra = {"older_than_hours": 0, "protect": ["dev-keep"], "reaper_names": ["dev-*", "vmops-dev-*"]}
    before = sc.snapshot(vm_env)
    sc.reset_counters(sims)
    check = playbook("idle-reaper", vm_env, check=True, extra=extra)
    assert check.code == 0 and sc.mutating(sims) == NONE, check
    real = playbook("idle-reaper", vm_env, extra=extra)
    assert real.code == 0, real
    after = sc.snapshot(vm_env)
    changed = {before[k][0] for k in before if after.get(k) != before[k]}

    def names(run: Run) -> set[str]:
        return {item.split("/", 1)[1].split(" ", 1)[0] for item in run.changed_items()}

    assert names(check) == names(real) == changed == {"dev-alice", "dev-bob"}, (check, real)
    assert all(after[k][1] == "stopped" for k in after if after[k][0] in changed)
