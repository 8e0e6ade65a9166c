"""The state store behind the fleet manager: typed access to fleets, members and the event log.

The record logic here is written once; a backend (backend.py) runs it on SQLite (the default,
``$VMOPS_HOME/state.db``: sqlite_backend.py) or PostgreSQL (``VMOPS_DB_URL=postgresql://...``:
pg_backend.py). Both serialise write transactions store-wide and keep them short (never across a provider
call); both give per-fleet operation locks (``fleet_lock``) that die with their holder.

* One connection per ``Store``, shared by the threads of one process under a lock.
* ``write()`` is one transaction holding the write lock from its first statement; nested ``write()``s
  of the same thread join it.

The database never holds an API key or a database password: only names, ids, states, prices, error
messages (which the adapters build without keys) and who did what (operator, vmops version).
"""

from __future__ import annotations

import os
import threading
import weakref
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from vmops.errors import NotFound, StateError
from vmops.model import State
from vmops.state.backend import Backend, LazyHandle, Lock, transaction
from vmops.state.clock import utcnow
from vmops.state.identity import hostname, operator, version
from vmops.state.records import (
    LIVE,
    RESUMABLE,
    EventRecord,
    FleetRecord,
    FleetState,
    MemberRecord,
    MemberStatus,
)
from vmops.state.schema import migrate, schema_version
from vmops.state.url import SqliteTarget, Target, parse_target

if TYPE_CHECKING:
    from vmops.config import Config

DEFAULT_BUSY_TIMEOUT = 30.0

_UNSET: Any = object()


class Store:
    """Typed access to fleets, members and the event log, on SQLite or PostgreSQL."""

    def __init__(self, path: "Path | str | Target", *, busy_timeout: float | None = None,
                 read_only: bool = False) -> None:
        """``path``: an SQLite file path, or a URL (``sqlite:///...``, ``postgresql://...``).

        ``read_only`` (an import/export source): nothing is created, migrated or written.
        """
        self.target = parse_target(path)
        if busy_timeout is None:  # VMOPS_STATE_TIMEOUT: how long to wait for another process's write
            busy_timeout = float(os.environ.get("VMOPS_STATE_TIMEOUT") or DEFAULT_BUSY_TIMEOUT)
        self.busy_timeout = busy_timeout
        self.read_only = read_only
        self._lock = threading.RLock()
        self._locks: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._b: Backend
        if isinstance(self.target, SqliteTarget):
            from vmops.state.sqlite_backend import SqliteBackend

            self.path: Path | None = self.target.path
            self._b = SqliteBackend(self.target.path, busy_timeout=busy_timeout, migrate=migrate,
                                    read_only=read_only)
        else:
            from vmops.state.pg_backend import PostgresBackend

            self.path = None
            self._b = PostgresBackend(self.target, busy_timeout=busy_timeout)
        try:
            if read_only:
                from vmops.state.schema import check_version

                with self._lock:
                    check_version(self._b, self.schema_version())
            else:
                with self._lock:
                    migrate(self._b)  # refuses foreign and newer state before anything is written to it
                    self._b.after_migrate()
        except self._b.failures as e:
            self._b.close()
            raise self._b.error("cannot open", e) from None
        except BaseException:
            self._b.close()
            raise

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._b.dialect.value

    @property
    def location(self) -> str:
        """Where the state is, for messages (a database password is masked)."""
        return self._b.location

    @property
    def db(self) -> Any:
        """The raw connection handle (sqlite-utils ``Database`` on SQLite): for tests and tools only."""
        return self._b.handle

    # ---- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._b.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fleet_lock(self, name: str) -> Lock:
        """The operation lock of fleet ``name`` (not yet acquired): a file lock next to an SQLite state file,
        a session-level advisory lock on PostgreSQL. ``acquire()`` refuses at once (``StateError``, exit 13,
        naming the holder's pid, operator and host) while another process holds it."""
        lock = self._b.fleet_lock(name)
        self._locks.add(lock)
        return lock

    def _verify_locks(self) -> None:
        """Refuse to write for a fleet lock that was lost with its database connection (PostgreSQL)."""
        for lk in list(self._locks):
            verify = getattr(lk, "verify", None)
            if verify is not None and lk.held:
                verify()

    def _holds_lock(self, name: str) -> bool:
        return any(getattr(lk, "held", False) and _lock_name(lk) == name for lk in list(self._locks))

    @contextmanager
    def write(self) -> Iterator[Any]:
        """One write transaction, holding the write lock from its first statement.

        Nested inside another ``write()`` of the same thread it joins that transaction, so a caller can
        batch many record updates into one commit (``with store.write(): ...update_member...``); an error
        anywhere rolls back the whole batch.
        """
        if self.read_only:
            raise StateError(f"{self.location} was opened read-only")
        with self._lock:
            if self._b.in_transaction:  # our own outer write(): the lock is ours, so is the transaction
                yield LazyHandle(self._b)
                return
            self._verify_locks()
            with transaction(self._b) as handle:
                yield handle

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return self._b.query(sql, params)
            except self._b.failures as e:
                raise self._b.error("cannot read", e) from None

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """A statement inside ``write()``."""
        self._b.execute(sql, params)

    def _insert(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """An INSERT inside ``write()``; returns the new row's id."""
        return self._b.insert(sql, params)

    # ---- migrations ----------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._lock:
            try:
                return schema_version(self._b)
            except self._b.failures as e:
                raise self._b.error("cannot read", e) from None

    def migrate(self) -> None:
        with self._lock:
            migrate(self._b)

    # ---- identity ------------------------------------------------------------------------------
    @property
    def identity(self) -> str:
        """This store's identity: VMs are labelled with it where the provider has labels (ownership rule)."""
        if getattr(self, "_identity", None) is None:
            rows = self._query("SELECT value FROM meta WHERE key = 'store_id'")
            if not rows:
                raise StateError(f"the state store {self.location} has no identity (damaged?)",
                                 hint="Restore it from a backup")
            self._identity = str(rows[0]["value"])
        return self._identity

    @property
    def identities(self) -> frozenset[str]:
        """This store's identity and those of the stores imported into it (`vm state import`): the VMs those
        made carry their identity in the ``vmops-store`` label and are this store's now."""
        rows = self._query("SELECT key, value FROM meta WHERE key = 'store_id' OR key LIKE 'imported:%'")
        return frozenset(str(r["value"]) for r in rows) | {self.identity}

    def add_identity(self, store_id: str) -> None:
        """Record that the fleets of the store ``store_id`` are held here now (an import). Idempotent."""
        if store_id in self.identities:
            return
        with self.write():
            self._exec("INSERT INTO meta (key, value) VALUES (?, ?)", (f"imported:{store_id}", store_id))

    # ---- events --------------------------------------------------------------------------------
    def _event(self, fleet_id: int, kind: str, *, member_id: int | None = None,
               from_state: str | None = None, to_state: str | None = None, message: str | None = None) -> None:
        """An event row, inside the caller's ``write()``; it records who (operator) and which vmops."""
        self._exec(
            "INSERT INTO event (fleet_id, member_id, at, kind, from_state, to_state, message, operator, "
            "vmops_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fleet_id, member_id, utcnow(), kind, from_state, to_state, message, operator(), version()),
        )

    def log(self, fleet_id: int, kind: str, message: str, *, member_id: int | None = None) -> None:
        with self.write():
            self._event(fleet_id, kind, member_id=member_id, message=message)

    def events(self, fleet_id: int) -> list[EventRecord]:
        return [EventRecord.from_row(r) for r in self._query(
            "SELECT * FROM event WHERE fleet_id = ? ORDER BY id", (fleet_id,))]

    # ---- fleets --------------------------------------------------------------------------------
    def refusal(self, old: FleetRecord, *, gpu: str, count: int) -> StateError | None:
        """Why `fleet create` may not take the name of fleet ``old`` (None: it may: a destroyed fleet's name is
        reused, an unfinished one is resumed). The one rule for the create (``claim_fleet``) and its dry run."""
        from vmops.procs import pid_alive

        name = old.name
        if old.state is FleetState.DESTROYED:
            return None
        if old.state not in RESUMABLE:
            return StateError(f"a fleet named {name!r} already exists (state {old.state.value})",
                              hint=f"Pick another --name, or see it with `vm fleet status {name}`")
        # Holding the fleet's lock proves its previous creator is gone (a live one holds the lock), also on
        # another host, where a pid cannot be checked.
        if (old.state is FleetState.CREATING and old.owner_pid != os.getpid() and not self._holds_lock(name)
                and pid_alive(old.owner_pid, old.owner_host)):
            return StateError(f"fleet {name!r} is being created by another vm process (pid {old.owner_pid})",
                              hint="Wait for it to finish, or pick another --name")
        if old.gpu != gpu or old.count != count:
            return StateError(
                f"fleet {name!r} already exists as {old.count} x {old.gpu} (state {old.state.value}); "
                f"resuming it needs the same --gpu and --count",
                hint=f"Run `vm fleet create --name {name} --gpu {old.gpu} --count {old.count}` to resume it, "
                     f"or `vm fleet destroy {name}`")
        return None

    def claim_fleet(
        self,
        name: str,
        *,
        gpu: str,
        count: int,
        min_count: int | None,
        policy: str | None,
        allow_unterminable_reserved: bool = False,
        reserved_mode: str | None = None,
    ) -> tuple[FleetRecord, bool]:
        """Create the fleet row (write-ahead, before any provider call), or take over an unfinished one.

        Returns ``(fleet, resumed)``. Exactly one of two concurrent callers with one name gets a new row;
        the other sees it and is refused while its owner is alive. A fleet in ``creating``/``partial``/
        ``degraded``/``failed`` whose owner is gone is resumed, keeping its recorded ``min_count``, policy and
        reservation mode wherever the caller passes None; a destroyed one is archived and the name reused.
        """
        pid, host = os.getpid(), hostname()
        now = utcnow()
        with self.write():
            rows = self._query("SELECT * FROM fleet WHERE name = ?", (name,))
            if rows:
                old = FleetRecord.from_row(rows[0])
                refused = self.refusal(old, gpu=gpu, count=count)
                if refused is not None:
                    raise refused
                if old.state is FleetState.DESTROYED:
                    archived = f"{name}~{old.id}"
                    self._exec("UPDATE fleet SET name = ?, updated_at = ? WHERE id = ?", (archived, now, old.id))
                    self._event(old.id, "archived", message=f"name {name!r} reused; this record is now {archived!r}")
                else:
                    self._exec(
                        "UPDATE fleet SET state = ?, min_count = ?, policy = ?, allow_unterminable_reserved = ?, "
                        "reserved_mode = ?, owner_pid = ?, owner_host = ?, operator = ?, vmops_version = ?, "
                        "updated_at = ?, last_error = NULL WHERE id = ?",
                        (FleetState.CREATING.value, old.min_count if min_count is None else min_count,
                         old.policy if policy is None else policy,
                         int(allow_unterminable_reserved or old.allow_unterminable_reserved),
                         old.reserved_mode if reserved_mode is None else reserved_mode, pid, host, operator(),
                         version(), now, old.id))
                    self._event(old.id, "resume", from_state=old.state.value, to_state=FleetState.CREATING.value,
                                message=f"create resumed by pid {pid}")
                    return self._fleet_by_id(old.id), True
            min_count = count if min_count is None else min_count
            policy = policy or "spread"
            fid = self._insert(
                "INSERT INTO fleet (name, gpu, count, min_count, policy, state, allow_unterminable_reserved, "
                "reserved_mode, created_at, updated_at, owner_pid, owner_host, operator, vmops_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, gpu, count, min_count, policy, FleetState.CREATING.value, int(allow_unterminable_reserved),
                 reserved_mode or "never", now, now, pid, host, operator(), version()))
            self._event(fid, "fleet", to_state=FleetState.CREATING.value,
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
        with self.write():
            old = self._fleet_by_id(fleet_id)
            if error is _UNSET:
                self._exec("UPDATE fleet SET state = ?, updated_at = ? WHERE id = ?",
                           (state.value, utcnow(), fleet_id))
            else:
                self._exec("UPDATE fleet SET state = ?, last_error = ?, updated_at = ? WHERE id = ?",
                           (state.value, error, utcnow(), fleet_id))
            if old.state is not state or message:
                self._event(fleet_id, "fleet", from_state=old.state.value, to_state=state.value,
                            message=message or error if error is not _UNSET else message)
            return self._fleet_by_id(fleet_id)

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
        with self.write():
            seq = int(self._query("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM member WHERE fleet_id = ?",
                                  (fleet_id,))[0]["next"])
            vm_name = name if name is not None else name_for_seq(seq)
            try:
                mid = self._insert(
                    "INSERT INTO member (fleet_id, seq, name, provider, instance_id, region, native_type, status, "
                    "state, reserved, reservation_id, price_per_hour, idempotency_key, created_at, updated_at, "
                    "last_seen_at, public_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fleet_id, seq, vm_name, provider, instance_id, region, native_type, status.value, state.value,
                     int(reserved), reservation_id, price_per_hour, idempotency_key, now, now,
                     now if instance_id else None, public_ip))
            except self._b.integrity as e:
                raise StateError(f"{provider} instance {instance_id} is already recorded ({_first_line(e)})") from e
            self._event(fleet_id, "member", member_id=mid, to_state=status.value,
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
        undestroyable: bool | None = None,
        seen: bool = False,
        message: str | None = None,
    ) -> MemberRecord:
        """Update one member; a status change (or a message) goes to the event log in the same transaction.
        Returns the member as written (the row read before, with these changes: no second read)."""
        changes: dict[str, Any] = {}
        cols: dict[str, Any] = {}
        if status is not None:
            changes["status"], cols["status"] = status, status.value
        if state is not None:
            changes["state"], cols["state"] = state, state.value
        for field, value in (("instance_id", instance_id), ("region", region), ("reservation_id", reservation_id),
                             ("price_per_hour", price_per_hour), ("public_ip", public_ip),
                             ("last_error", last_error)):
            if value is not _UNSET:
                changes[field] = cols[field] = value
        if reserved is not None:
            changes["reserved"], cols["reserved"] = reserved, int(reserved)
        if undestroyable is not None:
            changes["undestroyable"], cols["undestroyable"] = undestroyable, int(undestroyable)
        now = utcnow()
        if seen:
            changes["last_seen_at"] = cols["last_seen_at"] = now
        changes["updated_at"] = cols["updated_at"] = now
        with self.write():
            old = self._member_by_id(member_id)
            try:
                self._exec(f"UPDATE member SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
                           (*cols.values(), member_id))
            except self._b.integrity as e:
                raise StateError(f"{old.provider} instance {instance_id} is already recorded ({_first_line(e)})") from e
            if (status is not None and status is not old.status) or message:
                self._event(old.fleet_id, "member", member_id=member_id, from_state=old.status.value,
                            to_state=(status or old.status).value,
                            message=message or (last_error if last_error is not _UNSET else None))
            return replace(old, **changes)

    def insert_copy(self, fleet: FleetRecord, members: list[MemberRecord], events: list[EventRecord]) -> FleetRecord:
        """Insert a fleet copied from another store, as it was (times, operators, versions kept; new ids).
        For ``vmops.state.transfer``; call it inside ``write()``."""
        with self.write():
            fid = self._insert(
                "INSERT INTO fleet (name, gpu, count, min_count, policy, state, allow_unterminable_reserved, "
                "reserved_mode, created_at, updated_at, last_error, owner_pid, owner_host, operator, vmops_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (fleet.name, fleet.gpu, fleet.count, fleet.min_count, fleet.policy, fleet.state.value,
                 int(fleet.allow_unterminable_reserved), fleet.reserved_mode, fleet.created_at, fleet.updated_at,
                 fleet.last_error, fleet.owner_pid, fleet.owner_host, fleet.operator, fleet.vmops_version))
            new_ids: dict[int, int] = {}
            for m in members:
                new_ids[m.id] = self._insert(
                    "INSERT INTO member (fleet_id, seq, name, provider, instance_id, region, native_type, status, "
                    "state, reserved, reservation_id, price_per_hour, idempotency_key, created_at, updated_at, "
                    "last_seen_at, last_error, public_ip, undestroyable) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fid, m.seq, m.name, m.provider, m.instance_id, m.region, m.native_type, m.status.value,
                     m.state.value, int(m.reserved), m.reservation_id, m.price_per_hour, m.idempotency_key,
                     m.created_at, m.updated_at, m.last_seen_at, m.last_error, m.public_ip, int(m.undestroyable)))
            for e in events:
                self._exec(
                    "INSERT INTO event (fleet_id, member_id, at, kind, from_state, to_state, message, operator, "
                    "vmops_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fid, new_ids.get(e.member_id) if e.member_id is not None else None, e.at, e.kind,
                     e.from_state, e.to_state, e.message, e.operator, e.vmops_version))
            return self._fleet_by_id(fid)

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


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _lock_name(lock: Any) -> str | None:
    return getattr(lock, "fleet_name", None) or (lock.path.stem if hasattr(lock, "path") else None)


def open_store(path: "Path | str | Target") -> Store:
    return Store(path)


def store_exists(config: "Config") -> bool:
    """Is there a state store to read (a database server is assumed to exist; a state file may not yet)?"""
    target = parse_target(config.db_url or config.state_path)
    return not isinstance(target, SqliteTarget) or target.path.exists()


def store_for(config: "Config") -> Store:
    """The store the configuration names: ``db_url`` (VMOPS_DB_URL) if set, else ``$VMOPS_HOME/state.db``."""
    return Store(config.db_url or config.state_path)
