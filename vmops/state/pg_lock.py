"""Per-fleet operation lock on PostgreSQL: a session-level advisory lock held on a dedicated connection.

PostgreSQL releases it when that connection ends: a clean exit, a crash or SIGKILL (the kernel closes the
socket, the server sees it at once), or a host that vanished (the server's TCP keepalive, set short on
this connection, notices within about ten seconds). No lease, expiry or heartbeat of our own: the
database already knows which sessions are alive. The holder is labelled (operator, host, pid) in the
``fleet_lock`` table so a refused second writer can say who holds it.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Any

from vmops.errors import StateError
from vmops.state.identity import operator
from vmops.state.lock import LockBase, refusal
from vmops.state.url import PostgresTarget

#: Server-side TCP keepalive for the lock connection: a lock of a host that dropped off the network is
#: freed after about idle + interval * count seconds.
KEEPALIVE = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3}


def lock_key(fleet_name: str) -> int:
    """The 64-bit advisory lock key of a fleet name (a collision needs ~2^32 fleet names)."""
    digest = hashlib.blake2b(f"vmops-fleet:{fleet_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgFleetLock(LockBase):
    """Held while one process creates, destroys or reconciles one fleet (same interface as FleetLock)."""

    def __init__(self, target: PostgresTarget, connect_kwargs: dict[str, Any], fleet_name: str) -> None:
        self.target = target
        self._kw = connect_kwargs
        self.fleet_name = fleet_name
        self._conn: Any = None

    def acquire(self) -> "PgFleetLock":
        import psycopg

        from vmops.state.clock import utcnow
        from vmops.state.pg_errors import pg_error

        if self._conn is not None:
            return self
        try:
            conn = psycopg.connect(self.target.url, autocommit=True, **self._kw)
        except psycopg.Error as e:
            raise pg_error(self.target, "cannot connect to", e) from None
        try:
            for k, v in KEEPALIVE.items():
                conn.execute(f"SET {k} = {int(v)}")
            key = lock_key(self.fleet_name)
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not row or not row[0]:
                owner = conn.execute('SELECT "pid", "operator", "host" FROM "fleet_lock" WHERE "name" = %s',
                                     (self.fleet_name,)).fetchone()
                conn.close()
                raise refusal(self.fleet_name, *(owner or ("?", None, None)))
            conn.execute(
                'INSERT INTO "fleet_lock" ("name", "operator", "host", "pid", "since") VALUES (%s, %s, %s, %s, %s) '
                'ON CONFLICT ("name") DO UPDATE SET "operator" = EXCLUDED."operator", "host" = EXCLUDED."host", '
                '"pid" = EXCLUDED."pid", "since" = EXCLUDED."since"',
                (self.fleet_name, operator(), socket.gethostname(), os.getpid(), utcnow()))
        except psycopg.Error as e:
            conn.close()
            raise pg_error(self.target, "cannot lock a fleet in", e) from None
        self._conn = conn
        return self

    def verify(self) -> None:
        """Raise ``StateError`` if the lock was lost with its connection (server restart, a dropped idle
        connection): from then on another host may be working on the fleet, so this process must stop
        writing. ``Store.write()`` calls it before each transaction while the lock is held."""
        import psycopg

        if self._conn is None:
            return
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            conn, self._conn = self._conn, None
            conn.close()
            raise StateError(f"lost the lock on fleet {self.fleet_name!r}: the connection that held it to the state "
                             f"database {self.target.masked()} dropped, so another vm process may be working on it "
                             "now; stopping before writing anything more",
                             hint=f"Run `vm fleet reconcile {self.fleet_name}` once the database is reachable") from None

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()  # ending the session releases the advisory lock

    @property
    def held(self) -> bool:
        return self._conn is not None
