"""The SQLite backend (the default: ``$VMOPS_HOME/state.db``, through sqlite-utils).

One sqlite3 connection per backend. vmops' own statements (reads and writes, all plain SQL) run on it
directly; sqlite-utils' ``Database``, wrapped around that same connection, makes and migrates the schema
(and switches a file to WAL) and is the ``Store.db`` handle for tools and tests: it is made (and
sqlite-utils imported) on the first of those. A command whose state file is current therefore never
imports sqlite-utils (~25-40 ms of its start-up; tests/cli/test_startup.py).

Concurrency rules:

* WAL journal, so readers never block the writer and the writer never blocks readers.
* A busy timeout, so a writer waits for another process's write transaction instead of failing.
* Every write transaction is ``BEGIN IMMEDIATE``: it takes the write lock up front. A deferred
  transaction that reads and later upgrades to a write fails with "database is locked" at once,
  whatever the timeout, when another process wrote in between; an immediate one just waits.
* Fleet locks are OS file locks under the state file's directory (``locks/<fleet>.lock``, lock.py).

A state file vmops cannot use is never replaced: an existing file is opened without the permission to
create (SQLite ``mode=rw``) after its header was checked, so an empty, truncated, garbage, foreign or
newer-schema file, a read-only file or directory, or a file another process keeps locked gives a
``StateError`` naming the path, with a hint, and the file's bytes stay as they were. A new state file is
built under a temporary name and linked into place (``os.link`` fails if another process got there first),
so a half-made file is never visible. Opening only reads unless a migration is due.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from vmops.errors import StateError
from vmops.state.backend import Backend
from vmops.state.lock import FleetLock
from vmops.state.migrations import Dialect

if TYPE_CHECKING:
    from sqlite_utils import Database

SQLITE_MAGIC = b"SQLite format 3\x00"


class SqliteBackend(Backend):
    dialect = Dialect.SQLITE
    integrity = (sqlite3.IntegrityError,)
    failures = (sqlite3.Error,)

    def __init__(self, path: Path, *, busy_timeout: float, migrate: Callable[[Backend], None],
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._db: "Database | None" = None
        if read_only:
            if not self.path.exists():
                raise StateError(f"there is no state file {self.path}", hint="Check the path in the sqlite:/// URL")
            self._check_header()
            try:
                self.conn = self._connect(self.path, mode="ro")
            except sqlite3.Error as e:
                raise self.error("cannot open", e) from None
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create the directory {self.path.parent} for the state file "
                             f"({e.strerror or e})", hint="Check VMOPS_HOME and its permissions") from None
        if not self.path.exists():
            self._create_new(migrate)
        self._check_header()
        try:
            self.conn = self._connect(self.path)
        except sqlite3.Error as e:
            raise self.error("cannot open", e) from None

    # ---- opening -------------------------------------------------------------------------------
    def _connect(self, path: Path, *, create: bool = False, mode: str = "rw") -> sqlite3.Connection:
        """A connection that may not create the file (unless ``create``: then in WAL mode), FKs on."""
        uri = f"file:{quote(str(path.absolute()))}?mode={'rwc' if create else mode}"
        conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if create:
                self._wrap(conn).enable_wal()
            conn.execute("PRAGMA foreign_keys = ON")
            # WAL + NORMAL: a commit is durable once it is in the WAL (an application crash, SIGKILL included,
            # loses nothing); only an OS crash or power cut can roll back the newest commits, whose VMs are
            # then found by their names (reconcile, orphans). FULL fsyncs every commit: 5 ms each on the
            # development disk, two per fleet member, serialised - seconds for a 512-VM fleet (bench).
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _wrap(self, conn: sqlite3.Connection) -> "Database":
        """sqlite-utils' Database on ``conn`` (imported here, on the first migration, write or ``db``)."""
        if self._db is None or self._db.conn is not conn:
            from vmops.state.sqlite_light import Database

            self._db = Database(conn, execute_plugins=False)
        return self._db

    @property
    def db(self) -> "Database":
        """sqlite-utils' Database on this backend's connection: migrations, writes, tools and tests."""
        return self._wrap(self.conn)

    def after_migrate(self) -> None:
        """WAL for a (verified) vmops state file that is not in WAL mode yet (files vmops makes already are)."""
        try:
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                self.db.enable_wal()
        except sqlite3.Error as e:
            raise self.error("cannot open", e) from None

    def _create_new(self, migrate: Callable[[Backend], None]) -> None:
        """Build an empty, migrated state file under a temporary name and link it into place."""
        tmp = self.path.with_name(f".{self.path.name}.new-{os.getpid()}-{threading.get_ident()}")
        try:
            conn = self._connect(tmp, create=True)
            try:
                self.conn = conn
                migrate(self)
            finally:
                conn.close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        except sqlite3.Error as e:
            raise self.error("cannot create", e) from None
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

    def error(self, action: str, e: BaseException) -> StateError:
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

    # ---- running SQL ---------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return f"the state file {self.path}"

    @property
    def handle(self) -> Database:
        return self.db

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(sql, params)

    def insert(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.conn.execute(sql, params).lastrowid or 0)

    def begin_write(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction)

    def tables(self) -> set[str]:
        return {r["name"] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def fleet_lock(self, name: str) -> FleetLock:
        return FleetLock(self.path.parent, name)

    def close(self) -> None:
        self.conn.close()
