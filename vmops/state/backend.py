"""The seam between the state store's record logic (store.py, written once) and a database.

A backend runs SQL written with ``?`` placeholders, owns the transaction and the store-wide write lock,
makes the fleet locks, and turns its driver's errors into ``StateError`` with a hint. Two exist:
``sqlite_backend.SqliteBackend`` (the default, ``$VMOPS_HOME/state.db``) and
``pg_backend.PostgresBackend`` (a shared PostgreSQL database).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

from vmops.errors import StateError
from vmops.state.migrations import Dialect


class Lock(Protocol):
    """One fleet's operation lock (file lock or PostgreSQL advisory lock): same interface for both."""

    def acquire(self) -> "Lock": ...
    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...
    @property
    def held(self) -> bool: ...
    def __enter__(self) -> "Lock": ...
    def __exit__(self, *exc: object) -> None: ...


class Backend(ABC):
    dialect: Dialect
    #: driver exceptions: constraint violations (re-raised as they are) and every other database error
    integrity: tuple[type[BaseException], ...]
    failures: tuple[type[BaseException], ...]

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the state is, for messages (never with a password)."""

    @property
    @abstractmethod
    def handle(self) -> Any:
        """What ``Store.write()`` yields: an object with ``execute(sql, params)`` (for tests and tools)."""

    @abstractmethod
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...

    @abstractmethod
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None: ...

    @abstractmethod
    def insert(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run an INSERT into a table with an ``id`` primary key; return the new id."""

    @abstractmethod
    def begin_write(self) -> None:
        """Start a transaction holding the store-wide write lock from its first statement."""

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @property
    @abstractmethod
    def in_transaction(self) -> bool: ...

    @abstractmethod
    def tables(self) -> set[str]: ...

    @abstractmethod
    def fleet_lock(self, name: str) -> Lock: ...

    @abstractmethod
    def error(self, action: str, e: BaseException) -> StateError:
        """A typed error for a driver failure, with the hint that fits the cause."""

    @abstractmethod
    def close(self) -> None: ...

    def after_migrate(self) -> None:
        """Backend-specific setup once the schema is current (SQLite: WAL mode)."""


class LazyHandle:
    """The backend's raw handle (``Backend.handle``), made on first use: a write that only runs vmops' own SQL
    never builds it (on SQLite that would import sqlite-utils, ~25 ms of every command that writes)."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._b.handle, name)

    def __getitem__(self, key: Any) -> Any:
        return self._b.handle[key]


class _Transaction:
    """``with transaction(b):`` one write transaction (not nested): commit on success, roll back on error,
    driver errors turned into ``StateError`` (constraint violations are re-raised as they are)."""

    def __init__(self, backend: Backend) -> None:
        self.b = backend

    def __enter__(self) -> Any:
        b = self.b
        try:
            b.begin_write()
        except b.failures as e:
            b.rollback()
            raise b.error("cannot write", e) from None
        return LazyHandle(b)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        b = self.b
        if exc is not None:
            b.rollback()
            if isinstance(exc, b.failures) and not isinstance(exc, b.integrity):
                raise b.error("cannot write", exc) from None
            return False
        try:
            b.commit()
        except b.failures as e:
            b.rollback()
            raise b.error("cannot write", e) from None
        return False


def transaction(backend: Backend) -> _Transaction:
    return _Transaction(backend)
