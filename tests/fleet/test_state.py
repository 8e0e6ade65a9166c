"""The state store on both backends (an SQLite file, a real PostgreSQL server): schema and migrations,
write-ahead records, locking between real processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from vmops.errors import NotFound, StateError
from vmops.model import State
from vmops.state import FleetState, MemberStatus, Store
from vmops.state.migrations import MIGRATIONS, SCHEMA_VERSION, Dialect


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path: Path) -> str:
    """Where the state lives: an SQLite file path, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return request.getfixturevalue("pg_url")


def raw_sql(where: str, statements: list[str]) -> None:
    """Run SQL on the database directly (as an older vmops, or another program, would have)."""
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            for st in statements:
                conn.execute(st)
    else:
        conn = sqlite3.connect(where, isolation_level=None)
        for st in statements:
            conn.execute(st)
        conn.close()


def _claim(store: Store, name: str = "train", count: int = 2):
    return store.claim_fleet(name, gpu="h100:1", count=count, min_count=count, policy="spread")


def test_fresh_store_has_current_schema_in_wal_mode(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    assert s.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"fleet", "member", "event", "schema_version"} <= set(s.db.table_names())
    assert "public_ip" in s.db["member"].columns_dict
    s.close()


def test_old_schema_is_migrated_in_order(where: str) -> None:
    # Build a version-1 database by hand (as an older vmops would have left it).
    dialect = Dialect.POSTGRES if where.startswith("postgresql://") else Dialect.SQLITE
    raw_sql(where, ["CREATE TABLE schema_version (version INTEGER NOT NULL)", "INSERT INTO schema_version VALUES (1)",
                    *MIGRATIONS[0].sql(dialect),
                    "INSERT INTO fleet (name, gpu, count, min_count, policy, state, created_at, updated_at) "
                    "VALUES ('old', 'h100:1', 1, 1, 'spread', 'active', 'x', 'x')"])
    s = Store(where)
    assert s.schema_version() == SCHEMA_VERSION
    old = s.get_fleet("old")
    assert old.state is FleetState.ACTIVE and old.operator is None  # data survives; new columns are empty
    m = s.add_member(old.id, name="n1", provider="p", region=None, native_type="t", idempotency_key="k",
                     public_ip="10.0.0.1")
    assert m.public_ip == "10.0.0.1"
    s.close()


def test_newer_schema_is_refused(where: str) -> None:
    s = Store(where)
    with s.write() as db:
        db.execute("UPDATE schema_version SET version = 999")
    s.close()
    with pytest.raises(StateError, match="newer than this vmops") as e:
        Store(where)
    assert e.value.exit_code == 13 and "Upgrade vmops" in (e.value.hint or "")


def test_foreign_database_is_refused(where: str) -> None:
    raw_sql(where, ["CREATE TABLE invoices (id INTEGER)"])
    with pytest.raises(StateError, match="not vmops' state"):
        Store(where)


def test_fleet_member_and_event_round_trip(where: str, monkeypatch) -> None:
    monkeypatch.setenv("VMOPS_OPERATOR", "alice")
    s = Store(where)
    f, resumed = _claim(s)
    assert not resumed and f.state is FleetState.CREATING and f.count == 2
    m = s.add_member(f.id, name=None, name_for_seq=lambda q: f"vmops-train-{q:03d}", provider="p", region="r1",
                     native_type="t", idempotency_key="k1", price_per_hour=2.5)
    assert (m.seq, m.name, m.status, m.instance_id) == (1, "vmops-train-001", MemberStatus.REQUESTED, None)
    m2 = s.add_member(f.id, name=None, name_for_seq=lambda q: f"vmops-train-{q:03d}", provider="p", region="r1",
                      native_type="t", idempotency_key="k2")
    assert m2.seq == 2
    m = s.update_member(m.id, status=MemberStatus.RUNNING, state=State.RUNNING, instance_id="i-1", seen=True)
    assert m.instance_id == "i-1" and m.last_seen_at is not None
    assert s.member_by_instance("p", "i-1") == m
    # one provider instance is never recorded twice
    with pytest.raises(StateError, match="already recorded"):
        s.update_member(m2.id, instance_id="i-1")
    s.set_fleet_state(f.id, FleetState.ACTIVE)
    kinds = [(e.kind, e.from_state, e.to_state) for e in s.events(f.id)]
    assert kinds == [("fleet", None, "creating"), ("member", None, "requested"), ("member", None, "requested"),
                     ("member", "requested", "running"), ("fleet", "creating", "active")]
    from vmops import __version__

    assert {(e.operator, e.vmops_version) for e in s.events(f.id)} == {("alice", __version__)}
    assert s.get_fleet("train").operator == "alice" and s.get_fleet("train").to_dict()["owner"] == "alice"
    assert s.events(f.id)[0].to_dict()["operator"] == "alice"
    with pytest.raises(NotFound):
        s.get_fleet("nope")
    s.close()


def test_claim_rules(where: str) -> None:
    s = Store(where)
    f, _ = _claim(s)
    s.set_fleet_state(f.id, FleetState.ACTIVE)
    with pytest.raises(StateError, match="already exists"):
        _claim(s)
    s.set_fleet_state(f.id, FleetState.PARTIAL)
    with pytest.raises(StateError, match="needs the same --gpu and --count"):
        _claim(s, count=5)
    again, resumed = _claim(s)
    assert resumed and again.id == f.id and again.state is FleetState.CREATING
    s.set_fleet_state(f.id, FleetState.DESTROYED)
    fresh, resumed = _claim(s)
    assert not resumed and fresh.id != f.id
    assert s.fleet(f.id).name == f"train~{f.id}"  # the destroyed record is archived, not lost
    s.close()


def test_creating_fleet_of_a_live_other_process_is_not_taken_over(where: str) -> None:
    s = Store(where)
    f, _ = _claim(s)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with s.write() as db:
            db.execute("UPDATE fleet SET owner_pid = ? WHERE id = ?", (proc.pid, f.id))
        with pytest.raises(StateError, match=f"being created by another vm process \\(pid {proc.pid}\\)"):
            _claim(s)
    finally:
        proc.kill()
        proc.wait()
    _, resumed = _claim(s)  # its owner is dead now: resume
    assert resumed
    s.close()


CLAIM_SCRIPT = textwrap.dedent("""
    import sys, time
    from vmops.errors import StateError
    from vmops.state import Store
    s = Store(sys.argv[1])
    start = float(sys.argv[2])
    while time.time() < start:
        time.sleep(0.001)
    try:
        f, resumed = s.claim_fleet("race", gpu="h100:1", count=1, min_count=1, policy="spread")
        print("won" if not resumed else "resumed", flush=True)
    except StateError as e:
        print("refused:", e, flush=True)
    # Stay alive until every contender has tried: a claimant whose owner process is gone may rightly
    # resume the fleet, which is not the race this test is about.
    while time.time() < start + 4:
        time.sleep(0.01)
""")


def test_concurrent_claims_in_separate_processes_exactly_one_wins(where: str) -> None:
    import time

    path = where
    Store(path).close()
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM_SCRIPT, str(path), str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    lines = [o[0].strip() for o in outs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert sum(1 for line in lines if line == "won") == 1, lines
    assert all(line.startswith("refused:") and "race" in line for line in lines if line != "won"), lines
    s = Store(path)
    assert [f.name for f in s.list_fleets()] == ["race"]


WRITER_SCRIPT = textwrap.dedent("""
    import sys
    from vmops.state import Store
    s = Store(sys.argv[1], busy_timeout=60)
    fid = int(sys.argv[2])
    for i in range(40):
        s.add_member(fid, name=None, name_for_seq=lambda q: f"vmops-w-{q:03d}", provider="p", region=None,
                     native_type="t", idempotency_key=f"{sys.argv[3]}-{i}")
""")


def test_many_processes_and_threads_write_without_lost_updates_or_lock_errors(where: str) -> None:
    path = where
    s = Store(path)
    f, _ = s.claim_fleet("w-fleet", gpu="h100:1", count=1, min_count=1, policy="spread")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path), str(f.id), f"p{i}"],
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    errors: list[BaseException] = []

    def thread_writer(tag: str) -> None:
        try:
            for i in range(40):
                s.add_member(f.id, name=None, name_for_seq=lambda q: f"vmops-w-{q:03d}", provider="p", region=None,
                             native_type="t", idempotency_key=f"{tag}-{i}")
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=thread_writer, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert not errors
    members = s.members(f.id)
    assert len(members) == 7 * 40
    assert sorted(m.seq for m in members) == list(range(1, 7 * 40 + 1))  # no seq handed out twice
    assert len({m.name for m in members}) == 7 * 40


def test_fleet_lock_is_exclusive_between_processes_and_dies_with_its_holder(where: str) -> None:
    import os
    import socket

    script = textwrap.dedent("""
        import sys, time
        from vmops.state import Store
        store = Store(sys.argv[1]); lock = store.fleet_lock("locked").acquire()  # kept referenced: held
        print("held", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script, where], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "VMOPS_OPERATOR": "bob"})
    s = Store(where)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "held"
        with pytest.raises(StateError, match=rf"'locked' is being worked on by another vm process "
                                             rf"\(pid {p.pid}, operator bob, host {socket.gethostname()}\)") as e:
            s.fleet_lock("locked").acquire()
        assert e.value.exit_code == 13
        assert not s.fleet_lock("locked").try_acquire()
        with s.fleet_lock("other") as other:  # other fleets are not affected
            assert other.held
    finally:
        p.kill()  # SIGKILL: no cleanup code runs
        p.wait()
    deadline = __import__("time").time() + 10  # the server notices the closed socket at once; allow a moment
    lock = s.fleet_lock("locked")
    while not lock.try_acquire():
        assert __import__("time").time() < deadline, "the killed holder's lock was not freed"
        __import__("time").sleep(0.05)
    assert lock.held
    lock.release()
    assert not lock.held
    s.close()


def test_a_lost_postgres_fleet_lock_stops_writes(pg_url: str) -> None:
    """The connection holding a fleet lock drops (server restart, a dropped idle connection): the lock is gone,
    so the holder must not write another record for that fleet."""
    import psycopg

    s = Store(pg_url)
    f, _ = _claim(s)
    lock = s.fleet_lock("train").acquire()
    s.set_fleet_state(f.id, FleetState.ACTIVE)  # while the lock holds, writes go through
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                      "AND pid <> pg_backend_pid()")
    with pytest.raises(StateError, match="lost the lock on fleet 'train'") as e:
        s.set_fleet_state(f.id, FleetState.PARTIAL)
    assert e.value.exit_code == 13 and not lock.held
    assert s.get_fleet("train").state is FleetState.ACTIVE  # nothing was written
    other = Store(pg_url)
    assert other.fleet_lock("train").try_acquire()  # the lock is free for the next host
    other.close()
    s.close()


def test_postgres_user_without_create_rights_gets_a_hint(pg_cluster, pg_url: str) -> None:
    import secrets

    import psycopg

    role = f"visitor_{secrets.token_hex(4)}"  # roles are cluster-wide: one per test
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'visitor-pw'")
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = pg_url.replace(f"vmops:{pg_cluster.password}@", f"{role}:visitor-pw@")
    with pytest.raises(StateError, match="may not do this") as e:
        Store(url)
    assert e.value.exit_code == 13 and "GRANT CREATE" in (e.value.hint or "")
    assert "visitor-pw" not in str(e.value) + (e.value.hint or "")


def _sqlite_schema(path: Path) -> dict[str, list[tuple[str, str, bool]]]:
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = {t: [(c[1], c[2].upper(), bool(c[3]) or bool(c[5])) for c in conn.execute(f'PRAGMA table_info("{t}")')]
           for t in tables}
    out["indexes"] = sorted((r[0], r[1]) for r in conn.execute(
        "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'"))
    conn.close()
    return out


def _pg_schema(url: str) -> dict[str, list[tuple[str, str, bool]]]:
    import psycopg

    words = {"integer": "INTEGER", "text": "TEXT", "double precision": "REAL"}
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position").fetchall()
        out: dict[str, list] = {}
        for t, c, typ, nullable in rows:
            out.setdefault(t, []).append((c, words[typ], nullable == "NO"))
        out["indexes"] = sorted((r[0], r[1]) for r in conn.execute(
            "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexname NOT LIKE '%_pkey'").fetchall())
    return out


def test_the_same_migrations_make_the_same_schema_on_both(tmp_path: Path, pg_url: str) -> None:
    Store(tmp_path / "state.db").close()
    Store(pg_url).close()
    lite, pg = _sqlite_schema(tmp_path / "state.db"), _pg_schema(pg_url)
    assert set(lite) == set(pg) == {"fleet", "member", "event", "fleet_lock", "meta", "schema_version", "indexes"}
    assert lite == pg
