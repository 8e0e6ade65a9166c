"""`vm fleet ...` as a real program: JSON output, dry-run, SIGKILL at several points followed by
destroy/reconcile, two concurrent creates with one name, Ctrl-C rollback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vmops.config import load_config
from vmops.sim.common import Fault
from vmops.state import Store, store_for

from tests.conftest import both_dialects
from tests.fleet.conftest import at_providers

pytestmark = both_dialects

VM = [sys.executable, "-m", "vmops.cli.main"]


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(VM + list(args), env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(VM + list(args), env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until(cond, timeout: float = 30.0, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(step)


def test_create_warns_about_a_provider_it_could_not_ask(sims, vm_env) -> None:
    """A provider that refused the plan's question is left out of the fleet, and the create says so (a
    warning on stderr, -q or not); the ones that answered make the fleet."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {**vm_env, "VMOPS_LAMBDA_URL": dead, "VMOPS_BREAKER_SECONDS": "0"}
    r = run(env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "leftout", "-q", "--json")
    assert r.returncode == 0, r.stderr
    assert {m["provider"] for m in json.loads(r.stdout)["members"]} <= {"crusoe", "nebius"}
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: lambda was not used")]
    assert len(warned) == 1 and "cannot connect" in warned[0], r.stderr
    gone = run(vm_env, "fleet", "destroy", "leftout", "-y")
    assert gone.returncode == 0, gone.stderr


def test_cli_create_status_list_destroy_json(sims, vm_env) -> None:
    cfg = load_config(vm_env)
    r = run(vm_env, "fleet", "create", "--gpu", "h100", "--count", "3", "--name", "cli3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fleet"]["state"] == "active" and out["running"] == 3
    assert "requested" in r.stderr and "running" in r.stderr  # progress on stderr
    r = run(vm_env, "fleet", "status", "cli3", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["state"] == "active" and st["running"] == 3
    assert {m["provider"] for m in st["members"]} == {"crusoe", "lambda", "nebius"}
    r = run(vm_env, "fleet", "list")
    assert r.returncode == 0 and "cli3" in r.stdout and "active" in r.stdout
    r = run(vm_env, "fleet", "destroy", "cli3")
    assert r.returncode == 0, r.stderr
    assert "destroyed" in r.stdout
    assert at_providers(cfg, "cli3") == []
    # how the deletes went, per provider, on stderr: accepted, then gone (a reference Lambda VM goes at once)
    assert "crusoe: 1 delete(s) accepted; waiting until they are gone" in r.stderr, r.stderr
    assert "crusoe: 1 of 1 gone (" in r.stderr and "nebius: 1 of 1 gone (" in r.stderr, r.stderr
    assert "lambda: 1 gone" in r.stderr or "lambda: 1 of 1 gone (" in r.stderr, r.stderr
    quiet = run(vm_env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "cli3", "-q")
    assert quiet.returncode == 0, quiet.stderr
    quiet = run(vm_env, "fleet", "destroy", "cli3", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    r = run(vm_env, "fleet", "status", "nope")
    assert r.returncode == 5 and "no fleet named 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_a_destroyed_fleets_status_hides_its_members_and_all_members_shows_them(sims, vm_env) -> None:
    """After a destroy no member has a VM: the view says how many it leaves out and why, and --all-members shows
    them, destroyed (they were once VMs, so not "attempts that left no VM")."""
    assert run(vm_env, "fleet", "create", "-g", "h100", "-c", "2", "-n", "gone2", "-q").returncode == 0
    assert run(vm_env, "fleet", "destroy", "gone2", "-y", "-q").returncode == 0
    hidden = run(vm_env, "fleet", "status", "gone2", "--no-refresh")
    assert hidden.returncode == 0 and "(no members that may exist)" in hidden.stdout, hidden
    assert "2 member(s) with no VM (failed, destroyed or gone) not shown (--all-members)" in hidden.stderr, hidden
    shown = run(vm_env, "fleet", "status", "gone2", "--no-refresh", "--all-members")
    rows = [ln.split() for ln in shown.stdout.splitlines() if ln.startswith("vmops-gone2-")]
    assert len(rows) == 2 and all("destroyed" in r for r in rows), shown.stdout


def test_a_stopped_members_status_reads_stopped_and_json_keeps_the_record(sims, vm_env) -> None:
    """A made member's STATUS in the table is what it is now (the provider's state), so a stopped member does not
    read "running" beside "stopped"; the JSON keeps the record's status and the provider's state apart."""
    env = {**vm_env, "VMOPS_PROVIDERS": "crusoe"}
    assert run(env, "fleet", "create", "-g", "h100", "-c", "2", "-n", "nap", "-q").returncode == 0
    assert run(env, "fleet", "stop", "nap", "-y", "-q").returncode == 0
    table = run(env, "fleet", "status", "nap")
    header = table.stdout.splitlines()[1].split()
    rows = [dict(zip(header, ln.split())) for ln in table.stdout.splitlines() if ln.startswith("vmops-nap-")]
    assert len(rows) == 2 and all((r["STATUS"], r["STATE"]) == ("stopped", "stopped") for r in rows), table.stdout
    members = json.loads(run(env, "fleet", "status", "nap", "--json").stdout)["members"]
    assert [(m["status"], m["state"]) for m in members] == [("running", "stopped")] * 2
    assert run(env, "fleet", "destroy", "nap", "-y", "-q").returncode == 0


def test_cli_generated_name_is_printed(sims, vm_env) -> None:
    r = run(vm_env, "fleet", "create", "--gpu", "h100", "--count", "1", "--json")
    assert r.returncode == 0, r.stderr
    name = json.loads(r.stdout)["fleet"]["name"]
    assert f"fleet name: {name}" in r.stderr
    assert run(vm_env, "fleet", "destroy", name).returncode == 0


def test_cli_dry_run_prints_plan_and_changes_nothing(sims, vm_env) -> None:
    r = run(vm_env, "fleet", "create", "--gpu", "h100:8", "--count", "4", "--name", "plan4", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Plan: 4 x h100:8" in r.stdout and "Total: $" in r.stdout and "/hour" in r.stdout
    r = run(vm_env, "fleet", "create", "--gpu", "h100:8", "--count", "4", "--name", "plan4", "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert plan["planned"] == 4 and plan["total_per_hour"] > 0
    assert sum(s.requests.mutating_count() for s in sims.values()) == 0
    assert _store(vm_env).find_fleet("plan4") is None


@pytest.mark.parametrize("bad,msg", [
    (["--count", "0"], "--count must be at least 1"),
    (["--count", "2", "--min", "3"], "--min must be between 1 and --count"),
    (["--count", "2", "--policy", "slowest"], "unknown policy"),
    (["--count", "2", "--name", "Bad_Name"], "not a valid fleet name"),
    (["--count", "x"], "--count takes a whole number"),
])
def test_cli_argument_errors_before_any_network_call(sims, vm_env, bad, msg) -> None:
    r = run(vm_env, "fleet", "create", "--gpu", "h100", *bad)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert msg in r.stderr
    assert sum(sum(s.requests.counts().values()) for s in sims.values()) == 0


def test_two_concurrent_creates_with_one_name(sims, vm_env) -> None:
    cfg = load_config(vm_env)
    for s in sims.values():  # keep the first one busy long enough to overlap
        s.faults.add(Fault(endpoint="*", kind="latency", latency_s=0.05))
    procs = [start(vm_env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "twin") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 13], outs
    loser = outs[[p.returncode for p in procs].index(13)][1]
    assert "twin" in loser and "Traceback" not in loser
    for s in sims.values():
        s.faults.clear()
    assert len(at_providers(cfg, "twin")) == 2
    assert run(vm_env, "fleet", "destroy", "twin").returncode == 0
    assert at_providers(cfg, "twin") == []


def _store(vm_env) -> Store:
    """The store `vm` uses in this environment (the SQLite file, or VMOPS_DB_URL: VMOPS_TEST_STATE=postgresql)."""
    return store_for(load_config(vm_env))


def _kill_point(point: str, sims, vm_env, proc: subprocess.Popen[str]) -> None:
    if point == "planning":
        def fleet_row() -> bool:
            if not vm_env.get("VMOPS_DB_URL") and not (Path(vm_env["VMOPS_HOME"]) / "state.db").exists():
                return False
            s = _store(vm_env)
            try:
                return s.find_fleet("kill") is not None
            finally:
                s.close()
        wait_until(fleet_row)
    elif point == "in_flight":
        wait_until(lambda: sims["crusoe"].requests.count("create_instance") >= 1
                   or sims["lambda"].requests.count("launch") >= 1)
    else:
        wait_until(lambda: sum(s.requests.mutating_count() for s in sims.values()) >= 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


#: the Crusoe read a plan waits on, per dialect (its simulators' endpoint names)
CAPACITY_READ = {"reference": "get_capacity", "cloud": "list_capacities"}


@pytest.mark.parametrize("point,then", [
    ("planning", "destroy"),
    ("in_flight", "destroy"),
    ("in_flight", "reconcile"),
    ("accepted", "destroy"),
    ("accepted", "reconcile"),
])
def test_sigkill_of_create_then_destroy_or_reconcile_leaves_zero_vms(sims, vm_env, dialect, point, then) -> None:
    cfg = load_config(vm_env)
    if point == "planning":
        sims["crusoe"].faults.add(Fault(endpoint=CAPACITY_READ[dialect], kind="latency", latency_s=3.0))
    if point == "in_flight":
        sims["crusoe"].faults.add(Fault(endpoint="create_instance", kind="latency", latency_s=0.6))
        sims["lambda"].faults.add(Fault(endpoint="launch", kind="latency", latency_s=0.6))
    proc = start(vm_env, "fleet", "create", "--gpu", "h100", "--count", "6", "--name", "kill")
    _kill_point(point, sims, vm_env, proc)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.8)  # creates the dead process had in flight still land at the providers
    for s in sims.values():
        s.faults.clear()
    if then == "reconcile":
        r = run(vm_env, "fleet", "reconcile", "kill", "--json")
        assert r.returncode == 0, r.stderr
        view = json.loads(r.stdout)
        # The record now accounts for every VM the providers have for this fleet.
        live = {m["id"] for m in view["members"] if m["status"] in ("running", "accepted", "destroying")}
        assert {v.id for v in at_providers(cfg, "kill")} <= live
        assert view["state"] in ("failed", "active", "partial")
    r = run(vm_env, "fleet", "destroy", "kill")
    assert r.returncode == 0, r.stderr
    assert at_providers(cfg, "kill") == []


def test_ctrl_c_stops_new_creates_and_rolls_back(sims, vm_env) -> None:
    cfg = load_config(vm_env)
    for s in sims.values():
        s.faults.add(Fault(endpoint="*", kind="latency", latency_s=0.15))
    proc = start(vm_env, "fleet", "create", "--gpu", "h100", "--count", "6", "--name", "intr")
    wait_until(lambda: sum(s.requests.mutating_count() for s in sims.values()) >= 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "rolled back" in err and "Traceback" not in err
    for s in sims.values():
        s.faults.clear()
    assert at_providers(cfg, "intr") == []
    st = _store(vm_env)
    assert st.get_fleet("intr").state.value == "failed"
