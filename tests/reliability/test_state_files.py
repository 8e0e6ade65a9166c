"""The state file under stress and damage.

* Concurrent `vm` processes (real subprocesses against the in-process simulators): creates and destroys of
  different fleets at once, plus two creates with one name. Exactly one of the pair wins; the record is
  consistent; the providers hold exactly the recorded VMs; destroying everything leaves zero.
* A damaged or unusable state file (garbage, truncated, empty, someone else's SQLite file, a newer schema,
  read-only file, read-only directory, a lock held by another process) gives a typed error: exit 13, the
  path named, a hint; and vmops never starts a new empty state over it: its bytes stay the same.

Read-only cases: the tests run as root in CI, which ignores permission bits, so the `vm` process is started
without CAP_DAC_OVERRIDE (util-linux ``setpriv``): it is then bound by the file modes like any user.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

import pytest

from tests.cli.helpers import Result
from tests.reliability.budget import trials
from tests.reliability.summary import record
from vmops.config import load_config
from vmops.fleet.naming import parse_member_name
from vmops.session import Session
from vmops.sim.common import Fault
from vmops.state import FleetLock, FleetState, store_for
from vmops.state.records import LIVE

VM = [sys.executable, "-m", "vmops.cli.main"]
#: root ignores file modes; without these capabilities it does not
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"] if os.geteuid() == 0 else []


def _env(env: Mapping[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}
    full.update(env)
    return full


def vm(args: list[str], env: Mapping[str, str], *, unprivileged: bool = False, timeout: float = 180) -> Result:
    cmd = (NO_DAC if unprivileged else []) + VM + args
    p = subprocess.run(cmd, env=_env(env), capture_output=True, text=True, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)


def start(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(VM + args, env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def vmops_vms(config) -> list:
    """Every VM at the providers whose name is a fleet member name."""
    with Session(config) as s:
        out = s.instances()
    assert not out.failures, out.failures
    return [i for i in out.flat() if parse_member_name(i.name) is not None]


# ---- concurrency ---------------------------------------------------------------------------------------------


def _one_concurrent_round(sims, vm_env, round_no: int) -> dict[str, int]:
    cfg = load_config(vm_env)
    pre = [f"old{round_no}x{k}" for k in range(3)]
    for name in pre:  # three fleets to destroy while others are created
        r = vm(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", name], vm_env)
        assert r.code == 0, r.err
    for s in sims.values():  # every call a little slower, so the processes overlap
        s.faults.add(Fault(endpoint="*", kind="latency", latency_s=0.03))
    new = [f"new{round_no}x{k}" for k in range(5)]
    twin = f"twin{round_no}"
    jobs = [(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", n], n) for n in new]
    jobs += [(["fleet", "destroy", n], n) for n in pre]
    jobs += [(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", twin], twin) for _ in range(2)]
    if vm_env.get("VMOPS_DB_URL"):  # a shared database: each process is its own "host" (own VMOPS_HOME, operator)
        homes = [Path(vm_env["VMOPS_HOME"]).with_name(f"host{round_no}-{k}") for k in range(len(jobs))]
        for h in homes:
            h.mkdir(exist_ok=True)
        envs = [{**vm_env, "VMOPS_HOME": str(h), "VMOPS_OPERATOR": f"op{k}"} for k, h in enumerate(homes)]
    else:
        envs = [vm_env] * len(jobs)
    procs = [(start(args, e), args, name) for e, (args, name) in zip(envs, jobs)]
    results = []
    for p, args, name in procs:
        out, err = p.communicate(timeout=240)
        results.append((p.returncode, args, name, err))
    for s in sims.values():
        s.faults.clear()

    problems: list[str] = []
    for code, args, name, err in results:
        if name != twin and code != 0:
            problems.append(f"vm {' '.join(args)} -> {code}: {err.strip()[-300:]}")
        if "Traceback" in err:
            problems.append(f"vm {' '.join(args)}: traceback")
    twin_codes = sorted(code for code, _, name, _ in results if name == twin)
    loser_err = next((err for code, _, name, err in results if name == twin and code != 0), "")
    duplicates = 0
    if twin_codes != [0, 13]:
        problems.append(f"same-name pair exited {twin_codes}")
        duplicates += twin_codes.count(0) - 1 if twin_codes.count(0) > 1 else 0
    elif twin not in loser_err or "error:" not in loser_err:
        problems.append(f"unclear error for the losing twin: {loser_err!r}")

    # the record: every created fleet active with 2 live members, every destroyed one destroyed
    with store_for(cfg) as store:
        fleets = {f.name: f for f in store.list_fleets()}
        recorded: set[tuple[str, str]] = set()
        for f in fleets.values():
            live = [m for m in store.members(f.id) if m.status in LIVE]
            recorded |= {(m.provider, m.instance_id) for m in live if m.instance_id}
            if f.name in new or f.name == twin:
                if f.state is not FleetState.ACTIVE or len(live) != 2:
                    problems.append(f"{f.name}: {f.state.value} with {len(live)} live members")
            if f.name in pre and (f.state is not FleetState.DESTROYED or live):
                problems.append(f"{f.name}: {f.state.value} with {len(live)} live members after destroy")
        missing = [n for n in (*new, twin, *pre) if n not in fleets]
        if missing:
            problems.append(f"not recorded: {missing}")
    at_providers = {(i.provider, i.id) for i in vmops_vms(cfg)}
    leaked = len(at_providers - recorded)
    if at_providers != recorded:
        problems.append(f"providers hold {len(at_providers)} fleet VMs, the record {len(recorded)} "
                        f"(unrecorded {sorted(at_providers - recorded)[:3]}, missing {sorted(recorded - at_providers)[:3]})")
    names = [i.name for i in vmops_vms(cfg)]
    duplicates += len(names) - len(set(names))

    # and then everything goes
    for name in (*new, twin):
        r = vm(["fleet", "destroy", name], vm_env)
        if r.code != 0:
            problems.append(f"destroy {name} -> {r.code}: {r.err.strip()[-200:]}")
    left = vmops_vms(cfg)
    leaked += len(left)
    if left:
        problems.append(f"{len(left)} VM(s) left after destroying every fleet")
    return {"problems": problems, "leaked": leaked, "duplicates": duplicates}


@pytest.mark.parametrize("state_db", ["sqlite", "postgresql"], indirect=True)
def test_concurrent_vm_processes_keep_the_state_consistent(sims, vm_env, state_db):
    n = trials(full=5, ci=1)
    failures: list[str] = []
    leaked = duplicates = passed = 0
    for k in range(n):
        for s in sims.values():
            s.reset()
        out = _one_concurrent_round(sims, vm_env, k)
        leaked += out["leaked"]
        duplicates += out["duplicates"]
        passed += not out["problems"]
        failures += [f"round {k}: {p}" for p in out["problems"]]
    where = "10 hosts sharing PostgreSQL" if state_db else "10 concurrent vm processes"
    record(f"state: {where} (5 create, 3 destroy, a same-name pair)", trials=n, passed=passed,
           leaked=leaked, duplicates=duplicates, detail="; ".join(failures[:2]))
    assert not failures, failures
    assert leaked == 0 and duplicates == 0


# ---- damaged and unusable state files --------------------------------------------------------------------------


def _real_state(vm_env) -> Path:
    """A state file with a fleet in it (made by the real program)."""
    r = vm(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", "precious"], vm_env)
    assert r.code == 0, r.err
    path = Path(vm_env["VMOPS_HOME"]) / "state.db"
    with sqlite3.connect(path) as c:  # fold the WAL into the file, so the file alone is the whole state
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _damage(kind: str, path: Path) -> str:
    """Damage the state file as ``kind`` says; returns a word the error's message or hint must contain."""
    data = path.read_bytes()
    if kind == "garbage":
        path.write_bytes(os.urandom(4096))
        return "not an SQLite database"
    if kind == "empty":
        path.write_bytes(b"")
        return "empty"
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return "damaged"
    if kind == "header-only":
        path.write_bytes(data[:100])
        return "state file"
    if kind == "foreign":
        path.unlink()
        with sqlite3.connect(path) as c:
            c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            c.execute("INSERT INTO notes (text) VALUES ('my data')")
        return "not vmops' state file"
    if kind == "future-schema":
        c = sqlite3.connect(path, isolation_level=None)
        c.execute("UPDATE schema_version SET version = 99")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        return "Upgrade vmops"
    raise AssertionError(kind)


def _wal_files(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            p.unlink()


def _assert_clear(r: Result, path: Path, word: str) -> None:
    assert r.code == 13, (r.code, r.out, r.err)
    assert str(path) in r.err, r.err
    assert word.lower() in r.err.lower(), r.err
    assert r.err.startswith("error:") and "Traceback" not in r.err, r.err
    first = r.err.strip().splitlines()[-1]
    assert first.count(". ") >= 1, f"no hint after the message: {first}"  # message. Hint.


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "header-only", "foreign", "future-schema"])
def test_damaged_state_file_is_refused_and_kept(sims, vm_env, kind):
    cfg = load_config(vm_env)
    path = _real_state(vm_env)
    word = _damage(kind, path)
    _wal_files(path)
    before = path.read_bytes()
    ok = True
    for args in (["fleet", "list"], ["fleet", "status", "precious"],
                 ["fleet", "create", "--gpu", "h100", "--count", "1", "--name", "fresh"]):
        r = vm(args, vm_env)
        _assert_clear(r, path, word)
        ok &= path.read_bytes() == before
    assert path.read_bytes() == before, "the state file was changed"
    fresh = [i for i in vmops_vms(cfg) if i.name.startswith("vmops-fresh-")]
    assert fresh == [], "a fleet was created on top of a damaged state file"
    record(f"state file {kind}: typed error, bytes kept", passed=ok and not fresh, leaked=len(fresh))
    _cleanup(cfg)  # the fleet in the damaged file is still at the providers


def _cleanup(cfg) -> None:
    with Session(cfg) as s:
        for inst in vmops_vms(cfg):
            s.provider(inst.provider).destroy(inst.id, wait=False)


def test_read_only_state_file(sims, vm_env):
    if not NO_DAC and os.geteuid() == 0:
        pytest.fail("cannot drop root's permission override")
    cfg = load_config(vm_env)
    path = _real_state(vm_env)
    _wal_files(path)
    path.chmod(0o444)
    before = path.read_bytes()
    try:
        r = vm(["fleet", "create", "--gpu", "h100", "--count", "1", "--name", "fresh"], vm_env, unprivileged=True)
        _assert_clear(r, path, "not writable")
        assert "permissions" in r.err
        listed = vm(["fleet", "list"], vm_env, unprivileged=True)  # reading may work, or be refused clearly
        if listed.code != 0:
            _assert_clear(listed, path, "not writable")
        else:
            assert "precious" in listed.out
        assert path.read_bytes() == before
        fresh = [i for i in vmops_vms(cfg) if i.name.startswith("vmops-fresh-")]
        assert fresh == []
    finally:
        path.chmod(0o644)
    record("state file read-only: typed error, bytes kept", passed=True)
    _cleanup(cfg)


@pytest.mark.parametrize("exists", [True, False], ids=["with-state-file", "new-state-file"])
def test_read_only_directory(sims, vm_env, exists):
    cfg = load_config(vm_env)
    home = Path(vm_env["VMOPS_HOME"])
    path = home / "state.db"
    if exists:
        _real_state(vm_env)
        _wal_files(path)
    before = path.read_bytes() if exists else None
    home.chmod(0o555)
    try:
        r = vm(["fleet", "create", "--gpu", "h100", "--count", "1", "--name", "fresh"], vm_env, unprivileged=True)
        assert r.code == 13, (r.code, r.err)
        assert str(home) in r.err and "Traceback" not in r.err, r.err
        assert "writable" in r.err or "permission" in r.err.lower(), r.err
        if exists:
            assert path.read_bytes() == before
        else:
            assert not path.exists() and list(home.iterdir()) == []
        fresh = [i for i in vmops_vms(cfg) if i.name.startswith("vmops-fresh-")]
        assert fresh == []
    finally:
        home.chmod(0o755)
    record(f"state directory read-only ({'file exists' if exists else 'no file yet'}): typed error",
           passed=True)
    _cleanup(cfg)


HOLDER = r"""
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA busy_timeout = 5000")
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(120)
"""


def test_state_file_locked_by_another_process(sims, vm_env):
    cfg = load_config(vm_env)
    path = _real_state(vm_env)
    before = path.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        env = {**vm_env, "VMOPS_STATE_TIMEOUT": "1"}
        began = time.monotonic()
        r = vm(["fleet", "create", "--gpu", "h100", "--count", "1", "--name", "fresh"], env)
        _assert_clear(r, path, "locked by another process")
        assert "VMOPS_STATE_TIMEOUT" in r.err
        assert time.monotonic() - began < 60
        listed = vm(["fleet", "list"], env)  # readers are not blocked by a writer (WAL)
        assert listed.code == 0 and "precious" in listed.out, listed.err
    finally:
        holder.kill()
        holder.wait()
    assert path.read_bytes() == before
    assert [i for i in vmops_vms(cfg) if i.name.startswith("vmops-fresh-")] == []
    # once the other process is gone, everything works on the same file
    assert vm(["fleet", "destroy", "precious"], vm_env).code == 0
    record("state file locked by another process: typed error, then works", passed=True)


def test_fleet_lock_held_by_another_process(sims, vm_env):
    cfg = load_config(vm_env)
    _real_state(vm_env)
    lock = FleetLock(cfg.home, "precious").acquire()  # this test process plays the other vm process
    try:
        r = vm(["fleet", "destroy", "precious"], vm_env, timeout=60)
        assert r.code == 13, r.err
        assert "precious" in r.err and "another vm process" in r.err and f"pid {os.getpid()}" in r.err, r.err
        assert len([i for i in vmops_vms(cfg) if i.name.startswith("vmops-precious-")]) == 2
    finally:
        lock.release()
    assert vm(["fleet", "destroy", "precious"], vm_env).code == 0
    assert vmops_vms(cfg) == []
    record("fleet lock held by another process: typed error, nothing touched", passed=True)


def test_state_file_is_created_whole_by_concurrent_first_users(vm_env, tmp_path):
    """Eight processes open a state file that does not exist yet: one file, migrated, no leftovers."""
    home = Path(vm_env["VMOPS_HOME"])
    code = ("import sys; from vmops.state import Store; s = Store(sys.argv[1]); "
            "print(s.schema_version()); s.close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home / "state.db")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    from vmops.state.migrations import SCHEMA_VERSION

    assert {o.strip() for o, _ in outs} == {str(SCHEMA_VERSION)}
    assert sorted(p.name for p in home.iterdir() if not p.name.startswith("state.db")) == []
    shutil.rmtree(home / "locks", ignore_errors=True)
