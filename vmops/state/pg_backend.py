"""The PostgreSQL backend: one shared state database for a team (``VMOPS_DB_URL=postgresql://...``).

* One connection per ``Store`` (shared by the threads of one process under the store's lock), in
  autocommit mode: a read is its own statement; a write is an explicit ``BEGIN ... COMMIT``.
* Every write transaction first takes one transaction-level advisory lock (``pg_advisory_xact_lock``),
  so writes are serialised store-wide exactly as SQLite's ``BEGIN IMMEDIATE`` serialises them: the
  record logic (read, decide, write) is the same code and the same reasoning on both backends. The lock
  goes with the transaction's end (commit, rollback, lost connection). ``lock_timeout`` bounds the wait
  (``VMOPS_STATE_TIMEOUT``). Transactions are short: never held across a provider call.
* Fleet locks are session-level advisory locks on a dedicated connection (pg_lock.py).
* Credentials: whatever libpq finds (the URL, ``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE``), or the file
  named by ``VMOPS_DB_PASSWORD_FILE`` when the URL carries no password. None of them is ever printed:
  messages show the URL with its password masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vmops.errors import StateError
from vmops.state.backend import Backend
from vmops.state.migrations import Dialect
from vmops.state.pg_errors import pg_error
from vmops.state.pg_lock import PgFleetLock
from vmops.state.url import PostgresTarget

#: ``pg_advisory_xact_lock`` key of the store-wide write lock ("vmopsWRT" as a 64-bit integer).
WRITE_LOCK_KEY = int.from_bytes(b"vmopsWRT", "big", signed=True)
DEFAULT_CONNECT_TIMEOUT = 10


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StateError("the PostgreSQL driver (psycopg) is not installed",
                         hint="pip install 'psycopg[binary]' (it comes with vmops' dependencies)") from None
    return psycopg


def connect_kwargs(target: PostgresTarget) -> dict[str, Any]:
    """Connection parameters added to the URL's: a password from VMOPS_DB_PASSWORD_FILE (only when the URL
    has none), a connect timeout, an application name."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = conninfo_to_dict(target.url)
    except Exception as e:  # noqa: BLE001 - psycopg raises ProgrammingError subclasses for bad URIs
        raise StateError(f"VMOPS_DB_URL {target.masked()} is not a valid PostgreSQL URL "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                         hint="Write postgresql://user@host:port/dbname") from None
    kw: dict[str, Any] = {"application_name": "vmops"}
    if "connect_timeout" not in given:
        kw["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    pw_file = os.environ.get("VMOPS_DB_PASSWORD_FILE", "")
    if pw_file and "password" not in given:
        path = Path(pw_file).expanduser()
        try:
            kw["password"] = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise StateError(f"the password file {path} (VMOPS_DB_PASSWORD_FILE) cannot be read "
                             f"({getattr(e, 'strerror', None) or type(e).__name__})",
                             hint="Point VMOPS_DB_PASSWORD_FILE at a file readable only by you") from None
    return kw


class _Handle:
    """What ``Store.write()`` yields on PostgreSQL: ``execute(sql, params)`` with ``?`` placeholders."""

    def __init__(self, backend: "PostgresBackend") -> None:
        self._b = backend

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._b.conn.execute(_pg_sql(sql), params or None)


def _pg_sql(sql: str) -> str:
    """``?`` placeholders -> psycopg's ``%s`` (the store's SQL holds no other ``?`` and no ``%``)."""
    return sql.replace("?", "%s")


class PostgresBackend(Backend):
    dialect = Dialect.POSTGRES

    def __init__(self, target: PostgresTarget, *, busy_timeout: float) -> None:
        psycopg = _psycopg()
        self.target = target
        self.busy_timeout = busy_timeout
        self.integrity = (psycopg.IntegrityError,)
        self.failures = (psycopg.Error,)
        self._kw = connect_kwargs(target)
        try:
            self.conn = psycopg.connect(target.url, autocommit=True, **self._kw)
        except psycopg.Error as e:
            raise self.error("cannot connect to", e) from None

    @property
    def location(self) -> str:
        return f"the state database {self.target.masked()}"

    @property
    def handle(self) -> _Handle:
        return _Handle(self)

    def error(self, action: str, e: BaseException) -> StateError:
        return pg_error(self.target, action, e)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_pg_sql(sql), params or None)
            return list(cur.fetchall())

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(_pg_sql(sql), params or None)

    def insert(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        row = self.conn.execute(_pg_sql(sql) + ' RETURNING "id"', params or None).fetchone()
        assert row is not None
        return int(row[0])

    def begin_write(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute(f"SET LOCAL lock_timeout = {int(self.busy_timeout * 1000)}")
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        try:
            if self.in_transaction:
                self.conn.execute("ROLLBACK")
        except self.failures:
            pass

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def tables(self) -> set[str]:
        return {r["table_name"] for r in self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}

    def fleet_lock(self, name: str) -> PgFleetLock:
        return PgFleetLock(self.target, self._kw, name)

    def close(self) -> None:
        self.conn.close()
