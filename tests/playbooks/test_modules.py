"""The modules one by one (ansible ad-hoc): errors surface as failed tasks with clear messages; check mode
and idempotency of vmops_instance; and `inv playbook.run`."""

from __future__ import annotations

import subprocess

from vmops.config import load_config
from vmops.model import State

from tests.conftest import both_dialects
from tests.playbooks import scenario as sc
from tests.playbooks.helpers import BIN, REPO, adhoc, ansible_env

NONE = {"crusoe": 0, "lambda": 0, "nebius": 0}


def _no_secrets(vm_env, text):
    cfg = load_config(vm_env)
    for s in cfg.providers.values():
        secrets = [s.api_key.reveal(), s.nebius_cloud.iam_token.reveal() if s.nebius_cloud else ""]
        assert not [x for x in secrets if x and x in text]


@both_dialects
def test_missing_vm_fails_with_class_and_message(vm_env, sims, dialect):
    run, res = adhoc("vmops_instance", {"provider": "crusoe", "id": "no-such-vm", "state": "stopped"}, vm_env)
    assert run.code != 0 and res["failed"] is True
    assert res["error_class"] == "InvalidArgument" and res["error_kind"] == "invalid_argument"
    assert "there is no VM 'no-such-vm' at crusoe to stop" in res["msg"]
    _no_secrets(vm_env, run.text)


@both_dialects
def test_unknown_provider_and_unsupported_stop(vm_env, sims, dialect):
    _, res = adhoc("vmops_instance", {"provider": "aws", "name": "x"}, vm_env)
    assert res["error_class"] == "UsageError" and "unknown provider 'aws'" in res["msg"]
    seeded = sorted(sc.live(vm_env)["lambda"])[0]  # a VM the simulator seeds at Lambda (per dialect)
    _, res = adhoc("vmops_instance", {"provider": "lambda", "name": seeded, "state": "stopped"}, vm_env)
    assert res["error_class"] == "Unsupported" and "cannot be stopped" in res["msg"]
    assert sc.mutating(sims) == NONE


@both_dialects
def test_provider_down_is_a_typed_failure(vm_env, sims, dialect):
    env = {**vm_env, "VMOPS_PROVIDERS": "crusoe", "VMOPS_CRUSOE_URL": "http://127.0.0.1:9"}
    run, res = adhoc("vmops_fleet", {"name": "down-test", "state": "present", "gpu": "h100", "count": 1}, env)
    assert res["failed"] is True and res["error_kind"] in ("provider_unavailable", "insufficient_capacity"), res
    _, res = adhoc("vmops_instance", {"provider": "crusoe", "id": "abc"}, env)
    assert res["error_kind"] == "provider_unavailable" and "crusoe" in res["msg"]
    assert res["error_class"] == "Unreachable"  # nothing listens there: not retried (design.md, "Deadlines")
    _no_secrets(vm_env, run.text)


def test_fleet_made_without_a_provider_that_is_down_warns(vm_env, sims):
    env = {**vm_env, "VMOPS_LAMBDA_URL": "http://127.0.0.1:9", "VMOPS_BREAKER_SECONDS": "0"}
    run, res = adhoc("vmops_fleet", {"name": "lo", "state": "present", "gpu": "h100", "count": 2}, env)
    assert res["changed"] is True and not res.get("failed"), res
    assert "[WARNING]: lambda was not used" in run.text, run.text  # ansible prints a module's warnings apart
    _, res = adhoc("vmops_fleet", {"name": "lo", "state": "absent"}, vm_env)
    assert res["changed"] is True and not res.get("failed"), res


def test_reconcile_with_a_provider_down_returns_what_it_could_not_observe(vm_env, sims):
    _, res = adhoc("vmops_fleet", {"name": "half", "state": "present", "gpu": "h100", "count": 3}, vm_env)
    assert res["changed"] is True and not res.get("failed"), res
    at = {m["provider"] for m in res["members"]}
    down = "lambda" if "lambda" in at else sorted(at)[0]
    var = {"crusoe": "VMOPS_CRUSOE_URL", "lambda": "VMOPS_LAMBDA_URL", "nebius": "VMOPS_NEBIUS_ENDPOINT"}[down]
    env = {**vm_env, var: "http://127.0.0.1:9" if down != "nebius" else "127.0.0.1:9", "VMOPS_BREAKER_SECONDS": "0"}
    run, res = adhoc("vmops_fleet", {"name": "half", "state": "reconcile", "destroy_surplus": True}, env)
    assert not res.get("failed") and res["changed"] is False, res
    assert set(res["unobserved"]) == {down} and f"[WARNING]: fleet 'half': {down}: could not refresh" in run.text
    assert all(m["status"] == "running" for m in res["members"]), res["members"]
    _, res = adhoc("vmops_fleet", {"name": "half", "state": "absent"}, vm_env)
    assert res["changed"] is True and not res.get("failed"), res


# refused while parsing its arguments, before any provider is called: the dialect plays no part
def test_bad_fleet_arguments(vm_env, sims):
    _, res = adhoc("vmops_fleet", {"name": "Bad Name", "state": "present", "gpu": "h100", "count": 1}, vm_env)
    assert res["error_class"] == "UsageError" and "not a valid fleet name" in res["msg"]
    _, res = adhoc("vmops_fleet", {"name": "ok", "state": "present", "gpu": "h100", "count": 0}, vm_env)
    assert res["error_class"] == "UsageError" and "at least 1" in res["msg"]
    assert sc.mutating(sims) == NONE


@both_dialects
def test_instance_lifecycle_check_mode_and_idempotency(vm_env, sims, dialect):
    args = {"provider": "nebius", "name": "solo", "gpu": "h100", "state": "running"}
    _, res = adhoc("vmops_instance", args, vm_env, check=True)
    assert res["changed"] is True and res["action"] == "created"
    assert sc.mutating(sims) == NONE and "solo" not in sc.all_names(vm_env)
    _, res = adhoc("vmops_instance", args, vm_env)
    assert res["changed"] is True and res["instance"]["state"] == "running"
    _, res = adhoc("vmops_instance", args, vm_env)
    assert res["changed"] is False
    stop = {"provider": "nebius", "name": "solo", "state": "stopped"}
    assert adhoc("vmops_instance", stop, vm_env)[1]["changed"] is True
    assert sc.live(vm_env)["nebius"]["solo"].state is State.STOPPED
    assert adhoc("vmops_instance", stop, vm_env)[1]["changed"] is False
    # only_orphan refuses a VM that is not a vmops fleet member
    _, res = adhoc("vmops_instance", {"provider": "nebius", "name": "solo", "state": "absent", "only_orphan": True},
                   vm_env)
    assert res["changed"] is False and "not a fleet member name" in res["skipped_reason"]
    absent = {"provider": "nebius", "name": "solo", "state": "absent"}
    assert adhoc("vmops_instance", absent, vm_env)[1]["changed"] is True
    assert "solo" not in sc.all_names(vm_env)
    assert adhoc("vmops_instance", absent, vm_env)[1]["changed"] is False


@both_dialects
def test_instance_check_mode_places_the_vm_where_the_run_then_puts_it(vm_env, sims, dialect):
    """Check mode reads where the create would place the VM (Provider.placement), as `vm create --dry-run` does."""
    args = {"provider": "lambda", "name": "placed", "gpu": "h100:8", "state": "present"}
    _, check = adhoc("vmops_instance", args, vm_env, check=True)
    assert check["changed"] is True and check["placement"]["region"], check
    assert sc.mutating(sims) == NONE
    _, made = adhoc("vmops_instance", args, vm_env)
    assert made["instance"]["region"] == check["placement"]["region"], (check, made)
    assert adhoc("vmops_instance", {**args, "state": "absent"}, vm_env)[1]["changed"] is True


@both_dialects
def test_instance_create_stays_off_reserved_capacity(vm_env, sims, dialect):
    """Crusoe places a VM into a free reservation of its type by itself (both dialects seed one for 8 x H100):
    a module create is on-demand, as `vm create` without --reserved is."""
    _, res = adhoc("vmops_instance", {"provider": "crusoe", "name": "od", "gpu": "h100:8", "state": "running"},
                   vm_env)
    assert res["changed"] is True and res["instance"]["reserved"] is False, res
    made = sc.live(vm_env)["crusoe"]["od"]
    assert not made.reserved and made.reservation_id is None


# the subject is `inv playbook.run` itself; fleet-up --check runs on both dialects in test_fleet_up_down.py
def test_inv_playbook_run(vm_env, sims):
    env = ansible_env(vm_env)
    env.pop("ANSIBLE_CONFIG")  # the task sets it itself
    p = subprocess.run([str(BIN / "inv"), "playbook.run", "fleet-up", "--check", "-e", "fleet_name=cli",
                        "-e", "fleet_count=1"], env=env, cwd=str(REPO), capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "check mode: nothing will be changed" in p.stderr and "changed=1" in p.stdout
    assert sc.mutating(sims) == NONE
    bad = subprocess.run([str(BIN / "inv"), "playbook.run", "../etc/passwd"], env=env, cwd=str(REPO),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "there is no playbook" in bad.stderr and "nightly-cleanup" in bad.stderr


def test_fleet_check_mode_of_an_unfinished_fleet_plans_only_what_the_resume_makes(vm_env, sims):
    """Check mode shows the create's own preview (FleetManager.preview_create): a fleet left partial at 2 of
    3 plans 1 VM, and the real run then makes that one."""
    from vmops.state import store_for

    args = {"name": "half", "gpu": "h100", "count": 2, "state": "present"}
    run, res = adhoc("vmops_fleet", args, vm_env)
    assert not res["failed"], run
    with store_for(load_config(vm_env)) as store:
        f = store.get_fleet("half")
        with store.write() as db:
            db.execute("UPDATE fleet SET state='partial', count=3, owner_pid=NULL WHERE id=?", (f.id,))
    sc.reset_counters(sims)
    run, res = adhoc("vmops_fleet", {**args, "count": 3}, vm_env, check=True)
    assert not res["failed"] and res["changed"], run
    assert res["resume"]["made"] == 2 and res["resume"]["create"] == 1 and res["resume"]["was"] == "partial"
    assert sum(row["count"] for row in res["plan"]) == 1
    assert sc.mutating(sims) == NONE
    run, res = adhoc("vmops_fleet", {**args, "count": 3}, vm_env)
    assert not res["failed"] and res["fleet"]["state"] == "active", run
    assert sum(sc.mutating(sims).values()) >= 1 and len([n for n in sc.all_names(vm_env) if "half" in n]) == 3
    run, res = adhoc("vmops_fleet", {"name": "half", "state": "absent"}, vm_env)
    assert not res["failed"], run
    # a fleet Crusoe cannot supply (its capacity figures are exact): check mode fails as the create does, with
    # the same error, instead of predicting success
    big, crusoe = {"name": "toobig", "gpu": "h100:8", "count": 100, "state": "present"}, {**vm_env, "VMOPS_PROVIDERS": "crusoe"}
    _, check = adhoc("vmops_fleet", big, crusoe, check=True)
    _, real = adhoc("vmops_fleet", big, crusoe)
    assert check["failed"] and real["failed"] and check["error_class"] == real["error_class"] == "InsufficientCapacity"
    assert check["msg"] == real["msg"], (check["msg"], real["msg"])


def test_instance_check_mode_refuses_what_the_run_refuses(vm_env, sims):
    """A reserved Lambda instance cannot be destroyed through the API: check mode fails as the run does (it used
    to predict `destroyed`), with the rule `vm destroy --dry-run` follows (vmops.verbs)."""
    args = {"provider": "lambda", "name": "reserved-h100-node", "state": "absent"}
    _, check = adhoc("vmops_instance", args, vm_env, check=True)
    _, run = adhoc("vmops_instance", args, vm_env)
    for res in (check, run):
        assert res["failed"] is True and res["error_class"] == "ReservedCannotTerminate", res
    assert check["msg"] == run["msg"]
    assert sc.mutating(sims) == NONE
    assert "reserved-h100-node" in sc.live(vm_env)["lambda"]
