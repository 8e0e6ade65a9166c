"""Applying the migrations (migrations.py) to a backend: once each, in order, one transaction per step,
under the store's write lock (so concurrent openers, on one host or many, apply each step once)."""

from __future__ import annotations

from vmops.errors import StateError
from vmops.state.backend import Backend, transaction
from vmops.state.migrations import MIGRATIONS, SCHEMA_VERSION, Dialect


def schema_version(b: Backend) -> int:
    tables = b.tables()
    if "schema_version" not in tables:
        if tables:
            noun = "state file" if b.dialect is Dialect.SQLITE else "state database"
            raise StateError(f"{b.location} is a database but not vmops' {noun} "
                             f"(tables: {', '.join(sorted(tables)[:5])})",
                             hint="Point VMOPS_HOME / VMOPS_DB_URL at vmops' own state, or move it aside")
        return 0
    rows = b.query("SELECT version FROM schema_version")
    return int(rows[0]["version"]) if rows else 0


def check_version(b: Backend, current: int) -> None:
    if current > SCHEMA_VERSION:
        raise StateError(
            f"the state in {b.location} has schema version {current}, newer than this vmops "
            f"understands ({SCHEMA_VERSION})",
            hint="Upgrade vmops (the state is left as it is; an older vmops never downgrades it)")


def migrate(b: Backend) -> None:
    """Apply pending migrations. Up-to-date state is only read (no write lock taken)."""
    current = schema_version(b)
    check_version(b, current)
    if current == SCHEMA_VERSION:
        return
    while True:
        with transaction(b):
            if "schema_version" not in b.tables():
                b.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                b.execute("INSERT INTO schema_version (version) VALUES (0)")
            current = int(b.query("SELECT version FROM schema_version")[0]["version"])
            check_version(b, current)
            if current == SCHEMA_VERSION:
                return
            for stmt in MIGRATIONS[current].sql(b.dialect):
                b.execute(stmt)
            b.execute("UPDATE schema_version SET version = ?", (current + 1,))
