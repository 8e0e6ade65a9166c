"""The SQLite state store (``$VMOPS_HOME/state.db``) behind the fleet manager.

Concurrency rules:

* WAL journal, so readers never block the writer and the writer never blocks readers.
* A busy timeout, so a writer waits for another process's write transaction instead of failing.
* Every write transaction is ``BEGIN IMMEDIATE``: it takes the write lock up front. A deferred
  transaction that reads and later upgrades to a write fails with "database is locked" at once,
  whatever the timeout, when another process wrote in between; an immediate one just waits.
* One connection per ``Store``, shared by the threads of one process under a lock.

A state file vmops cannot use is never replaced: an existing file is opened without the permission to
create (SQLite ``mode=rw``) after its header was checked, so an empty, truncated, garbage, foreign or
newer-schema file, a read-only file or directory, or a file another process keeps locked gives a
``StateError`` naming the path, with a hint, and the file's bytes stay as they were. A new state file is
built under a temporary name and linked into place (``os.link`` fails if another process got there first),
so a half-made file is never visible. Opening only reads unless a migration is due.

The database never holds an API key: only names, ids, states, prices and error messages (which the
adapters build without keys).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from vmops.errors import NotFound, StateError
from vmops.procs import pid_alive
from vmops.model import State
from vmops.state.migrations import MIGRATIONS, SCHEMA_VERSION
if TYPE_CHECKING:  # sqlite-utils loads when a store is first opened, not when vmops.state is imported
    from vmops.state.sqlite_light import Database

from vmops.state.records import (
    LIVE,
    RESUMABLE,
    EventRecord,
    FleetRecord,
    FleetState,
    MemberRecord,
    MemberStatus,
)

DEFAULT_BUSY_TIMEOUT = 30.0
SQLITE_MAGIC = b"SQLite format 3\x00"

_UNSET: Any = object()


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """Typed access to fleets, members and the event log."""

    def __init__(self, path: Path | str, *, busy_timeout: float | None = None) -> None:
        self.path = Path(path)
        if busy_timeout is None:  # VMOPS_STATE_TIMEOUT: how long to wait for another process's write
            busy_timeout = float(os.environ.get("VMOPS_STATE_TIMEOUT") or DEFAULT_BUSY_TIMEOUT)
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create the directory {self.path.parent} for the state file "
                             f"({e.strerror or e})", hint="Check VMOPS_HOME and its permissions") from None
        if not self.path.exists():
            self._create_new()
        self._check_header()
        try:
            self.db = self._connect(self.path)
        except sqlite3.Error as e:
            raise self._error("cannot open", e) from None
        self.migrate()  # refuses foreign and newer files before anything is written to them
        self._ensure_wal()

    # ---- opening -------------------------------------------------------------------------------
    def _connect(self, path: Path, *, create: bool = False) -> Database:
        """A connection that may not create the file (unless ``create``: then in WAL mode), FKs on."""
        from urllib.parse import quote

        uri = f"file:{quote(str(path.absolute()))}?mode={'rwc' if create else 'rw'}"
        conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            from vmops.state.sqlite_light import Database

            db = Database(conn, execute_plugins=False)
            if create:
                db.enable_wal()
            db.execute("PRAGMA foreign_keys = ON")
            # WAL + NORMAL: a commit is durable once it is in the WAL (an application crash, SIGKILL included,
            # loses nothing); only an OS crash or power cut can roll back the newest commits, whose VMs are
            # then found by their names (reconcile, orphans). FULL fsyncs every commit: 5 ms each on the
            # development disk, two per fleet member, serialised - seconds for a 512-VM fleet (bench).
            db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return db

    def _ensure_wal(self) -> None:
        """WAL for a (verified) vmops state file that is not in WAL mode yet (files vmops makes already are)."""
        try:
            with self._lock:
                if self.db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self.db.enable_wal()
        except sqlite3.Error as e:
            raise self._error("cannot open", e) from None

    def _create_new(self) -> None:
        """Build an empty, migrated state file under a temporary name and link it into place."""
        tmp = self.path.with_name(f".{self.path.name}.new-{os.getpid()}-{threading.get_ident()}")
        try:
            db = self._connect(tmp, create=True)
            try:
                self.db = db
                self.migrate()
            finally:
                db.close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        except sqlite3.Error as e:
            raise self._error("cannot create", e) from None
        except OSError as e:
            raise StateError(f"cannot create the state file {self.path} ({e.strerror or e})",
                             hint=f"Check that {self.path.parent} is writable (VMOPS_HOME)") from None
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                try:
                    leftover.unlink()
                except OSError:
                    pass

    def _check_header(self) -> None:
        """Refuse a file that is not an SQLite database before SQLite gets a chance to reuse it."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except IsADirectoryError:
            raise StateError(f"the state file {self.path} is a directory",
                             hint="Point VMOPS_HOME at a directory whose state.db is a file") from None
        except OSError as e:
            raise StateError(f"cannot read the state file {self.path} ({e.strerror or e})",
                             hint=f"Check the permissions of {self.path} (it must be readable and writable)") from None
        if head != SQLITE_MAGIC:
            what = "is empty (0 bytes)" if not head else "is not an SQLite database"
            raise StateError(f"the state file {self.path} {what}: it is damaged or not vmops' state file; "
                             "vmops will not start a new one over it",
                             hint=self._damaged_hint())

    def _damaged_hint(self) -> str:
        return (f"Restore {self.path} from a backup, or move it aside to start with an empty state (fleets it "
                "recorded then show up as orphans in `vm list` and the inventory)")

    def _error(self, action: str, e: BaseException) -> StateError:
        """A typed error for an SQLite failure on the state file, with the hint that fits the cause."""
        text = str(e)
        low = text.lower()
        if "locked" in low or "busy" in low:
            return StateError(f"the state file {self.path} is locked by another process ({text})",
                              hint="Retry when the other vm command has finished "
                                   "(VMOPS_STATE_TIMEOUT sets how long to wait)")
        if "readonly" in low or "read-only" in low or "unable to open" in low or "permission" in low:
            return StateError(f"{action} the state file {self.path}: it is not writable ({text})",
                              hint=f"vmops needs to write {self.path} and create files next to it in "
                                   f"{self.path.parent} (SQLite -wal/-shm); check their permissions")
        if "malformed" in low or "not a database" in low or "corrupt" in low or "disk i/o" in low:
            return StateError(f"the state file {self.path} is damaged ({text})", hint=self._damaged_hint())
        return StateError(f"{action} the state file {self.path} ({text})",
                          hint="Check VMOPS_HOME and the file's permissions")

    # ---- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One write transaction, holding the write lock from its first statement (BEGIN IMMEDIATE).

        Nested inside another ``write()`` of the same thread it joins that transaction, so a caller can
        batch many record updates into one commit (``with store.write(): ...update_member...``); an error
        anywhere rolls back the whole batch.
        """
        with self._lock:
            if self.db.conn.in_transaction:  # our own outer write(): the lock is ours, so is the transaction
                yield self.db
                return
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise self._error("cannot write", e) from None
            try:
                yield self.db
            except sqlite3.IntegrityError:
                self._rollback()
                raise
            except sqlite3.DatabaseError as e:
                self._rollback()
                raise self._error("cannot write", e) from None
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self.db.execute("COMMIT")
                except sqlite3.DatabaseError as e:
                    self._rollback()
                    raise self._error("cannot write", e) from None

    def _rollback(self) -> None:
        try:
            if self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cur = self.db.execute(sql, params)
                cols = [c[0] for c in cur.description]
                return [dict(zip(cols, r)) for r in cur.fetchall()]
            except sqlite3.DatabaseError as e:
                raise self._error("cannot read", e) from None

    # ---- migrations ----------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._lock:
            tables = {r["name"] for r in self._query("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "schema_version" not in tables:
                if tables:
                    raise StateError(f"{self.path} is an SQLite database but not vmops' state file "
                                     f"(tables: {', '.join(sorted(tables)[:5])})",
                                     hint="Point VMOPS_HOME at vmops' own directory, or move the file aside")
                return 0
            rows = self._query("SELECT version FROM schema_version")
            return int(rows[0]["version"]) if rows else 0

    def _check_version(self, current: int) -> None:
        if current > SCHEMA_VERSION:
            raise StateError(
                f"the state file {self.path} has schema version {current}, newer than this vmops "
                f"understands ({SCHEMA_VERSION})",
                hint="Upgrade vmops (the file is left as it is; an older vmops never downgrades it)")

    def migrate(self) -> None:
        """Apply pending migrations, each in its own immediate transaction (safe with concurrent openers).
        An up-to-date file is only read (no write lock, so a busy writer elsewhere does not block opening)."""
        current = self.schema_version()
        self._check_version(current)
        if current == SCHEMA_VERSION:
            return
        while True:
            with self.write() as db:
                if not db["schema_version"].exists():
                    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    db.execute("INSERT INTO schema_version (version) VALUES (0)")
                current = int(db.execute("SELECT version FROM schema_version").fetchone()[0])
                self._check_version(current)
                if current == SCHEMA_VERSION:
                    return
                MIGRATIONS[current](db)
                db.execute("UPDATE schema_version SET version = ?", (current + 1,))

    # ---- events --------------------------------------------------------------------------------
    def _event(self, db: Database, fleet_id: int, kind: str, *, member_id: int | None = None,
               from_state: str | None = None, to_state: str | None = None, message: str | None = None) -> None:
        db.execute(
            "INSERT INTO event (fleet_id, member_id, at, kind, from_state, to_state, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (fleet_id, member_id, utcnow(), kind, from_state, to_state, message),
        )

    def log(self, fleet_id: int, kind: str, message: str, *, member_id: int | None = None) -> None:
        with self.write() as db:
            self._event(db, fleet_id, kind, member_id=member_id, message=message)

    def events(self, fleet_id: int) -> list[EventRecord]:
        return [EventRecord.from_row(r) for r in self._query(
            "SELECT * FROM event WHERE fleet_id = ? ORDER BY id", (fleet_id,))]

    # ---- fleets --------------------------------------------------------------------------------
    def claim_fleet(
        self,
        name: str,
        *,
        gpu: str,
        count: int,
        min_count: int,
        policy: str,
        allow_unterminable_reserved: bool = False,
    ) -> tuple[FleetRecord, bool]:
        """Create the fleet row (write-ahead, before any provider call), or take over an unfinished one.

        Returns ``(fleet, resumed)``. Exactly one of two concurrent callers with one name gets a new row;
        the other sees it and is refused while its owner is alive. A fleet in ``creating``/``partial``/
        ``failed`` whose owner is gone is resumed; a destroyed one is archived and the name reused.
        """
        pid, host = os.getpid(), socket.gethostname()
        now = utcnow()
        with self.write() as db:
            rows = self._query("SELECT * FROM fleet WHERE name = ?", (name,))
            if rows:
                old = FleetRecord.from_row(rows[0])
                if old.state is FleetState.DESTROYED:
                    archived = f"{name}~{old.id}"
                    db.execute("UPDATE fleet SET name = ?, updated_at = ? WHERE id = ?", (archived, now, old.id))
                    self._event(db, old.id, "archived", message=f"name {name!r} reused; this record is now {archived!r}")
                elif old.state in RESUMABLE:
                    if old.state is FleetState.CREATING and old.owner_pid != pid and pid_alive(old.owner_pid, old.owner_host):
                        raise StateError(
                            f"fleet {name!r} is being created by another vm process (pid {old.owner_pid})",
                            hint="Wait for it to finish, or pick another --name")
                    if old.gpu != gpu or old.count != count:
                        raise StateError(
                            f"fleet {name!r} already exists as {old.count} x {old.gpu} (state {old.state.value}); "
                            f"resuming it needs the same --gpu and --count",
                            hint=f"Run `vm fleet create --name {name} --gpu {old.gpu} --count {old.count}` to resume it, "
                                 f"or `vm fleet destroy {name}`")
                    db.execute(
                        "UPDATE fleet SET state = ?, min_count = ?, policy = ?, allow_unterminable_reserved = ?, "
                        "owner_pid = ?, owner_host = ?, updated_at = ?, last_error = NULL WHERE id = ?",
                        (FleetState.CREATING.value, min_count, policy, int(allow_unterminable_reserved),
                         pid, host, now, old.id))
                    self._event(db, old.id, "resume", from_state=old.state.value, to_state=FleetState.CREATING.value,
                                message=f"create resumed by pid {pid}")
                    return self._fleet_by_id(old.id), True
                else:
                    raise StateError(
                        f"a fleet named {name!r} already exists (state {old.state.value})",
                        hint=f"Pick another --name, or see it with `vm fleet status {name}`")
            cur = db.execute(
                "INSERT INTO fleet (name, gpu, count, min_count, policy, state, allow_unterminable_reserved, "
                "created_at, updated_at, owner_pid, owner_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, gpu, count, min_count, policy, FleetState.CREATING.value, int(allow_unterminable_reserved),
                 now, now, pid, host))
            fid = int(cur.lastrowid)
            self._event(db, fid, "fleet", to_state=FleetState.CREATING.value,
                        message=f"create {count} x {gpu} (min {min_count}, policy {policy}) by pid {pid}")
            return self._fleet_by_id(fid), False

    def _fleet_by_id(self, fleet_id: int) -> FleetRecord:
        rows = self._query("SELECT * FROM fleet WHERE id = ?", (fleet_id,))
        if not rows:
            raise StateError(f"fleet #{fleet_id} vanished from the state file")
        return FleetRecord.from_row(rows[0])

    def fleet(self, fleet_id: int) -> FleetRecord:
        return self._fleet_by_id(fleet_id)

    def find_fleet(self, name: str) -> FleetRecord | None:
        rows = self._query("SELECT * FROM fleet WHERE name = ?", (name,))
        return FleetRecord.from_row(rows[0]) if rows else None

    def get_fleet(self, name: str) -> FleetRecord:
        rec = self.find_fleet(name)
        if rec is None:
            raise NotFound(f"there is no fleet named {name!r}", hint="List fleets with `vm fleet list`")
        return rec

    def list_fleets(self) -> list[FleetRecord]:
        return [FleetRecord.from_row(r) for r in self._query("SELECT * FROM fleet ORDER BY id")]

    def set_fleet_state(self, fleet_id: int, state: FleetState, *, error: str | None = _UNSET,
                        message: str | None = None) -> FleetRecord:
        with self.write() as db:
            old = self._fleet_by_id(fleet_id)
            if error is _UNSET:
                db.execute("UPDATE fleet SET state = ?, updated_at = ? WHERE id = ?",
                           (state.value, utcnow(), fleet_id))
            else:
                db.execute("UPDATE fleet SET state = ?, last_error = ?, updated_at = ? WHERE id = ?",
                           (state.value, error, utcnow(), fleet_id))
            if old.state is not state or message:
                self._event(db, fleet_id, "fleet", from_state=old.state.value, to_state=state.value,
                            message=message or error if error is not _UNSET else message)
            return self._fleet_by_id(fleet_id)

    def set_owner(self, fleet_id: int) -> None:
        with self.write() as db:
            db.execute("UPDATE fleet SET owner_pid = ?, owner_host = ?, updated_at = ? WHERE id = ?",
                       (os.getpid(), socket.gethostname(), utcnow(), fleet_id))

    # ---- members -------------------------------------------------------------------------------
    def add_member(
        self,
        fleet_id: int,
        *,
        name: str | None,
        name_for_seq: "Any" = None,
        provider: str,
        region: str | None,
        native_type: str,
        idempotency_key: str,
        status: MemberStatus = MemberStatus.REQUESTED,
        state: State = State.UNKNOWN,
        instance_id: str | None = None,
        reserved: bool = False,
        reservation_id: str | None = None,
        price_per_hour: float | None = None,
        public_ip: str | None = None,
        message: str | None = None,
    ) -> MemberRecord:
        """Write a member row (with the next sequence number) before anything is asked of the provider.

        ``name_for_seq(seq)`` derives the deterministic VM name from the sequence number allocated here;
        ``name`` is used as-is instead (adopted VMs keep their own name).
        """
        now = utcnow()
        with self.write() as db:
            seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM member WHERE fleet_id = ?",
                                 (fleet_id,)).fetchone()[0])
            vm_name = name if name is not None else name_for_seq(seq)
            try:
                cur = db.execute(
                    "INSERT INTO member (fleet_id, seq, name, provider, instance_id, region, native_type, status, "
                    "state, reserved, reservation_id, price_per_hour, idempotency_key, created_at, updated_at, "
                    "last_seen_at, public_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fleet_id, seq, vm_name, provider, instance_id, region, native_type, status.value, state.value,
                     int(reserved), reservation_id, price_per_hour, idempotency_key, now, now,
                     now if instance_id else None, public_ip))
            except sqlite3.IntegrityError as e:
                raise StateError(f"{provider} instance {instance_id} is already recorded ({e})") from e
            mid = int(cur.lastrowid)
            self._event(db, fleet_id, "member", member_id=mid, to_state=status.value,
                        message=message or f"{vm_name} at {provider}/{region or '-'}")
            return self._member_by_id(mid)

    def _member_by_id(self, member_id: int) -> MemberRecord:
        rows = self._query("SELECT * FROM member WHERE id = ?", (member_id,))
        if not rows:
            raise StateError(f"member #{member_id} vanished from the state file")
        return MemberRecord.from_row(rows[0])

    def member(self, member_id: int) -> MemberRecord:
        return self._member_by_id(member_id)

    def update_member(
        self,
        member_id: int,
        *,
        status: MemberStatus | None = None,
        state: State | None = None,
        instance_id: str | None = _UNSET,
        region: str | None = _UNSET,
        reserved: bool | None = None,
        reservation_id: str | None = _UNSET,
        price_per_hour: float | None = _UNSET,
        public_ip: str | None = _UNSET,
        last_error: str | None = _UNSET,
        seen: bool = False,
        message: str | None = None,
    ) -> MemberRecord:
        """Update one member; a status change (or a message) goes to the event log in the same transaction."""
        sets: list[str] = []
        vals: list[Any] = []

        def put(col: str, val: Any) -> None:
            sets.append(f"{col} = ?")
            vals.append(val)

        if status is not None:
            put("status", status.value)
        if state is not None:
            put("state", state.value)
        if instance_id is not _UNSET:
            put("instance_id", instance_id)
        if region is not _UNSET:
            put("region", region)
        if reserved is not None:
            put("reserved", int(reserved))
        if reservation_id is not _UNSET:
            put("reservation_id", reservation_id)
        if price_per_hour is not _UNSET:
            put("price_per_hour", price_per_hour)
        if public_ip is not _UNSET:
            put("public_ip", public_ip)
        if last_error is not _UNSET:
            put("last_error", last_error)
        now = utcnow()
        if seen:
            put("last_seen_at", now)
        put("updated_at", now)
        with self.write() as db:
            old = self._member_by_id(member_id)
            try:
                db.execute(f"UPDATE member SET {', '.join(sets)} WHERE id = ?", (*vals, member_id))
            except sqlite3.IntegrityError as e:
                raise StateError(f"{old.provider} instance {instance_id} is already recorded ({e})") from e
            if (status is not None and status is not old.status) or message:
                self._event(db, old.fleet_id, "member", member_id=member_id, from_state=old.status.value,
                            to_state=(status or old.status).value,
                            message=message or (last_error if last_error is not _UNSET else None))
            return self._member_by_id(member_id)

    def members(self, fleet_id: int, *, live_only: bool = False) -> list[MemberRecord]:
        rows = [MemberRecord.from_row(r) for r in self._query(
            "SELECT * FROM member WHERE fleet_id = ? ORDER BY seq", (fleet_id,))]
        return [m for m in rows if m.status in LIVE] if live_only else rows

    def members_by_fleet(self) -> dict[int, list[MemberRecord]]:
        """Every member row grouped by fleet id, in one query (listing 1,000 fleets: not 1,000 queries)."""
        out: dict[int, list[MemberRecord]] = {}
        for r in self._query("SELECT * FROM member ORDER BY fleet_id, seq"):
            out.setdefault(int(r["fleet_id"]), []).append(MemberRecord.from_row(r))
        return out

    def member_by_instance(self, provider: str, instance_id: str) -> MemberRecord | None:
        rows = self._query("SELECT * FROM member WHERE provider = ? AND instance_id = ?", (provider, instance_id))
        return MemberRecord.from_row(rows[0]) if rows else None


def open_store(path: Path | str) -> Store:
    return Store(path)
