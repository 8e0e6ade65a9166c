"""A team on one PostgreSQL database, through the real `vm` program (part of `inv stress`): separate
"hosts" (own VMOPS_HOME and operator) see the same fleets, one writer per fleet, a refused second writer
names the holder, a killed holder's lock frees itself, and a database that cannot be used is exit 13 with
a hint (never a traceback, never the password). Judged at the providers (the simulators' own lists)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.helpers import VM, vm
from tests.fleet.conftest import at_providers
from tests.reliability.summary import record
from vmops.config import load_config
from vmops.state import LIVE, FleetState, Store

pytestmark = pytest.mark.parametrize("state_db", ["postgresql"], indirect=True)


def host(vm_env: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of another machine sharing the database: its own VMOPS_HOME and operator."""
    home = tmp_path / f"home-{name}"
    home.mkdir(exist_ok=True)
    return {**vm_env, "VMOPS_HOME": str(home), "VMOPS_OPERATOR": name}


def _clear(r, password: str) -> None:
    assert r.code == 13, (r.code, r.out, r.err)
    assert r.err.startswith("error:") and "Traceback" not in r.err, r.err
    assert password not in r.err + r.out


def test_two_hosts_share_fleets_and_owners(sims, vm_env, tmp_path) -> None:
    alice, bob = host(vm_env, tmp_path, "alice"), host(vm_env, tmp_path, "bob")
    r = vm(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", "shared"], alice)
    assert r.code == 0, r.err
    r = vm(["fleet", "list", "--json"], bob)
    assert r.code == 0, r.err
    rows = {f["name"]: f for f in r.json()}
    assert rows["shared"]["owner"] == "alice" and rows["shared"]["running"] == 2
    r = vm(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", "shared"], bob)
    assert r.code == 13 and "already exists" in r.err, r.err
    r = vm(["fleet", "destroy", "shared"], bob)  # the cron host / a colleague can finish what alice started
    assert r.code == 0, r.err
    assert at_providers(load_config(alice), "shared") == []
    with Store(vm_env["VMOPS_DB_URL"]) as s:
        events = s.events(s.list_fleets()[0].id)
    assert {e.operator for e in events} == {"alice", "bob"}
    assert events[0].operator == "alice" and events[-1].operator == "bob"


def test_second_writer_is_refused_naming_the_owner(sims, vm_env, tmp_path) -> None:
    alice, bob = host(vm_env, tmp_path, "alice"), host(vm_env, tmp_path, "bob")
    r = vm(["fleet", "create", "--gpu", "h100", "--count", "1", "--name", "busy"], alice)
    assert r.code == 0, r.err
    # alice's process holds the fleet's lock (as a running `vm fleet destroy busy` would)
    script = ("import sys, time; from vmops.state import Store; s = Store(sys.argv[1]); "
              "lk = s.fleet_lock('busy').acquire(); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([VM[0], "-c", script, vm_env["VMOPS_DB_URL"]], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "VMOPS_OPERATOR": "alice"})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        r = vm(["fleet", "destroy", "busy"], bob)
        assert r.code == 13, (r.code, r.err)
        assert f"pid {holder.pid}, operator alice" in r.err, r.err
        assert time.monotonic() - t0 < 30  # refused at once, not after waiting for the holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    r = vm(["fleet", "destroy", "busy"], bob)  # the killed holder's lock went with its connection
    assert r.code == 0, r.err
    assert at_providers(load_config(bob), "busy") == []


def test_killed_create_on_one_host_is_finished_by_another(sims, vm_env, tmp_path) -> None:
    alice, cron = host(vm_env, tmp_path, "alice"), host(vm_env, tmp_path, "cron")
    full = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    p = subprocess.Popen(VM + ["fleet", "create", "--gpu", "h100", "--count", "4", "--name", "crash"],
                         env={**full, **alice}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Store(vm_env["VMOPS_DB_URL"]) as s:
        deadline = time.monotonic() + 60
        while True:  # kill it once a member's provider id is recorded (creates are in flight)
            f = s.find_fleet("crash")
            if f is not None and any(m.instance_id for m in s.members(f.id)):
                break
            assert time.monotonic() < deadline and p.poll() is None, p.communicate()
            time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    r = vm(["fleet", "reconcile", "crash", "--json"], cron)
    assert r.code in (0, 14), (r.code, r.err)  # 14: reconcile reports differences it repaired
    with Store(vm_env["VMOPS_DB_URL"]) as s:
        f = s.get_fleet("crash")
        recorded = {(m.provider, m.instance_id) for m in s.members(f.id, live_only=True) if m.instance_id}
    vms = at_providers(load_config(cron), "crash")
    at = {(i.provider, i.id) for i in vms}
    r = vm(["fleet", "destroy", "crash"], cron)
    left = at_providers(load_config(cron), "crash")
    record("team (PostgreSQL): create SIGKILLed on one host, reconciled and destroyed from another",
           passed=bool(at) and at <= recorded and r.code == 0 and not left, leaked=len(at - recorded) + len(left),
           duplicates=len(vms) - len({i.name for i in vms}))
    assert at and at <= recorded  # every VM the killed create made is on record: nothing leaked
    assert r.code == 0, r.err
    assert left == []


def test_wrong_password_is_exit_13_with_a_hint_and_no_password(sims, vm_env, pg_cluster) -> None:
    url = vm_env["VMOPS_DB_URL"]
    bad = url.replace(f":{pg_cluster.password}@", ":not-the-password@")
    r = vm(["fleet", "list"], {**vm_env, "VMOPS_DB_URL": bad})
    _clear(r, "not-the-password")
    assert "refused the login" in r.err and "pgpass" in r.err.lower(), r.err


def test_password_from_a_file_or_pgpassword(sims, vm_env, pg_cluster, tmp_path) -> None:
    url = vm_env["VMOPS_DB_URL"]
    bare = url.replace(f":{pg_cluster.password}@", "@")
    pw = tmp_path / "db.pw"
    pw.write_text(pg_cluster.password + "\n")
    pw.chmod(0o600)
    r = vm(["fleet", "list", "--json"], {**vm_env, "VMOPS_DB_URL": bare, "VMOPS_DB_PASSWORD_FILE": str(pw)})
    assert r.code == 0 and r.json() == [], r.err
    r = vm(["fleet", "list", "--json"], {**vm_env, "VMOPS_DB_URL": bare, "PGPASSWORD": pg_cluster.password})
    assert r.code == 0 and r.json() == [], r.err
    r = vm(["fleet", "list"], {**vm_env, "VMOPS_DB_URL": bare, "PGPASSFILE": str(tmp_path / "none")})
    _clear(r, pg_cluster.password)


def test_database_down_is_exit_13_with_a_hint(sims, vm_env) -> None:
    from tests.fleet.conftest import dead_url

    port = dead_url().rsplit(":", 1)[1]
    url = vm_env["VMOPS_DB_URL"]
    down = url.split("@", 1)[0] + f"@127.0.0.1:{port}/" + url.rsplit("/", 1)[1]
    r = vm(["fleet", "list"], {**vm_env, "VMOPS_DB_URL": down})
    _clear(r, down.split(":")[2].split("@")[0])
    assert "cannot be reached" in r.err and "server is up" in r.err, r.err
    r = vm(["fleet", "create", "--gpu", "h100", "--count", "1", "--name", "nodb"], {**vm_env, "VMOPS_DB_URL": down})
    assert r.code == 13 and "Traceback" not in r.err, r.err
    assert at_providers(load_config(vm_env), "nodb") == []  # nothing made without a record


def test_config_show_masks_the_database_password(vm_env, pg_cluster) -> None:
    r = vm(["config", "show", "--json"], vm_env)
    assert r.code == 0, r.err
    assert pg_cluster.password not in r.out + r.err
    assert ":****@" in r.json()["db_url"]


def test_database_restart_mid_create_fails_cleanly_and_reconcile_finds_every_vm(sims, vm_env, pg_cluster) -> None:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    p = subprocess.Popen(VM + ["fleet", "create", "--gpu", "h100", "--count", "4", "--name", "restart"],
                         env={**full, **vm_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Store(vm_env["VMOPS_DB_URL"]) as s:
        deadline = time.monotonic() + 60
        while True:
            f = s.find_fleet("restart")
            if f is not None and s.members(f.id):
                break
            assert time.monotonic() < deadline and p.poll() is None, p.communicate()
            time.sleep(0.005)
    pg_cluster.stop("fast")
    try:
        out, err = p.communicate(timeout=120)
    finally:
        pg_cluster.start()
    assert p.returncode in (0, 13), (p.returncode, err)
    assert "Traceback" not in err, err
    r = vm(["fleet", "reconcile", "restart"], vm_env)
    assert r.code in (0, 14), (r.code, r.err)
    with Store(vm_env["VMOPS_DB_URL"]) as s:
        f = s.get_fleet("restart")
        recorded = {(m.provider, m.instance_id) for m in s.members(f.id, live_only=True) if m.instance_id}
    vms = at_providers(load_config(vm_env), "restart")
    at = {(i.provider, i.id) for i in vms}
    r = vm(["fleet", "destroy", "restart"], vm_env)
    left = at_providers(load_config(vm_env), "restart")
    record("team (PostgreSQL): database restart mid-create, then reconcile and destroy",
           passed=at <= recorded and r.code == 0 and not left, leaked=len(at - recorded) + len(left),
           duplicates=len(vms) - len({i.name for i in vms}))
    assert at <= recorded, at - recorded
    assert r.code == 0, r.err
    assert left == []


def test_nightly_cleanup_on_the_cron_host_touches_no_live_laptop_fleet(sims, vm_env, tmp_path) -> None:
    from tests.playbooks.helpers import playbook

    alice, cron = host(vm_env, tmp_path, "alice"), host(vm_env, tmp_path, "cron")
    r = vm(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", "laptop"], alice)
    assert r.code == 0, r.err
    r = vm(["fleet", "create", "--gpu", "h100", "--count", "1", "--name", "busy"], alice)
    assert r.code == 0, r.err
    with Store(vm_env["VMOPS_DB_URL"]) as s:  # alice is still working on "busy" (its fleet lock is held)
        s.set_fleet_state(s.get_fleet("busy").id, FleetState.CREATING)
        lock = s.fleet_lock("busy").acquire()
        before = {(i.provider, i.id) for name in ("laptop", "busy") for i in at_providers(load_config(alice), name)}
        assert len(before) == 3
        run = playbook("nightly-cleanup", cron, extra={"stuck_after_hours": 0, "orphan_min_age_hours": 0})
        lock.release()
    assert run.code == 0, run
    after = {(i.provider, i.id) for name in ("laptop", "busy") for i in at_providers(load_config(alice), name)}
    record("team (PostgreSQL): nightly cleanup on the cron host vs live laptop fleets (VMs lost = leaked)",
           passed=after == before, leaked=len(before - after))
    assert after == before  # nothing of a live laptop fleet was adopted, destroyed or counted as an orphan
    r = vm(["fleet", "list", "--json"], alice)
    states = {f["name"]: f["state"] for f in r.json()}
    assert states == {"laptop": "active", "busy": "creating"}, states
    for name in ("laptop", "busy"):
        assert vm(["fleet", "destroy", name], alice).code == 0


def _vmops_vms(cfg) -> list:
    from vmops.fleet.naming import parse_member_name
    from vmops.session import Session

    with Session(cfg) as s:
        out = s.instances()
    assert not out.failures, out.failures
    return [i for i in out.flat() if parse_member_name(i.name) is not None]


def _seeded_round(sims, vm_env, tmp_path, seed: int) -> dict:
    import random

    from vmops.sim.common import Fault

    rng = random.Random(seed)
    hosts = [host(vm_env, tmp_path, f"h{seed}-{k}") for k in range(2)]
    cron = host(vm_env, tmp_path, f"cron{seed}")
    cfg = load_config(cron)
    for k, h in enumerate(hosts):  # one fleet per host to destroy while the rest happens
        r = vm(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", f"pre{seed}x{k}"], h)
        assert r.code == 0, r.err
    for s in sims.values():  # every call a little slower, so the processes overlap and kills land mid-way
        s.faults.add(Fault(endpoint="*", kind="latency", latency_s=0.03))
    full = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    jobs = []
    for k, h in enumerate(hosts):
        jobs += [(h, ["fleet", "create", "--gpu", "h100", "--count", "3", "--name", f"own{seed}x{k}"]),
                 (h, ["fleet", "create", "--gpu", "h100", "--count", "2", "--name", f"same{seed}"]),
                 (h, ["fleet", "destroy", f"pre{seed}x{1 - k}"])]  # each host destroys the other's fleet
    procs = [subprocess.Popen(VM + args, env={**full, **h}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for h, args in jobs]
    victims = rng.sample(range(len(procs)), 2)
    for v in victims:
        time.sleep(rng.uniform(0.0, 0.5))
        procs[v].send_signal(signal.SIGKILL)
    problems: list[str] = []
    for p, (_, args) in zip(procs, jobs):
        _, err = p.communicate(timeout=240)
        if "Traceback" in err:
            problems.append(f"vm {' '.join(args)}: traceback")
    for s in sims.values():
        s.faults.clear()
    time.sleep(0.5)  # creates a killed process had in flight still land at the providers
    # the cron host finishes whatever was interrupted, then the record must account for every VM
    r = vm(["fleet", "reconcile", "--all", "--json"], cron)
    if r.code not in (0, 14) or "Traceback" in r.err:
        problems.append(f"reconcile --all -> {r.code}: {r.err.strip()[-300:]}")
    vms = _vmops_vms(cfg)
    duplicates = len(vms) - len({i.name for i in vms})
    with Store(vm_env["VMOPS_DB_URL"]) as s:
        recorded = {(m.provider, m.instance_id) for ms in s.members_by_fleet().values() for m in ms
                    if m.instance_id and m.status in LIVE}
        names = [f.name for f in s.list_fleets() if f.state is not FleetState.DESTROYED]
    lost = {(i.provider, i.id) for i in vms} - recorded
    if lost:
        problems.append(f"{len(lost)} VM(s) at the providers not on record: {sorted(lost)[:3]}")
    for name in names:
        r = vm(["fleet", "destroy", name], cron)
        if r.code != 0:
            problems.append(f"destroy {name} -> {r.code}: {r.err.strip()[-200:]}")
    left = _vmops_vms(cfg)
    if left:
        problems.append(f"{len(left)} VM(s) left after destroying every fleet")
    if duplicates:
        problems.append(f"{duplicates} duplicate VM name(s)")
    return {"problems": problems, "leaked": len(lost) + len(left), "duplicates": duplicates}


@pytest.mark.timeout(1200)  # the full budget (`inv stress`) runs five rounds
def test_two_hosts_with_seeded_sigkills_leave_nothing_behind(sims, vm_env, tmp_path) -> None:
    from tests.reliability.budget import trials

    n = trials(full=5, ci=1)
    failures: list[str] = []
    leaked = duplicates = passed = 0
    for seed in range(n):
        for s in sims.values():
            s.reset()
        out = _seeded_round(sims, vm_env, tmp_path, seed)
        leaked += out["leaked"]
        duplicates += out["duplicates"]
        passed += not out["problems"]
        failures += [f"seed {seed}: {p}" for p in out["problems"]]
    record("team (PostgreSQL): 2 hosts create/destroy/same-name at once, 2 seeded SIGKILLs, cron reconcile",
           trials=n, passed=passed, leaked=leaked, duplicates=duplicates, detail="; ".join(failures[:2]))
    assert not failures, failures
