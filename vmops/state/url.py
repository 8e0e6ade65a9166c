"""Where the state lives: ``sqlite:///relative/path``, ``sqlite:////absolute/path`` or
``postgresql://user@host:port/dbname`` (``postgres://`` too). A plain path means an SQLite file.

Relative SQLite paths are relative to the current directory (the usual URL convention: three slashes
then the path; an absolute path therefore has four).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from vmops.config import mask_db_url as mask_url
from vmops.errors import StateError


@dataclass(frozen=True)
class SqliteTarget:
    path: Path

    def masked(self) -> str:
        return f"sqlite:///{self.path}"


@dataclass(frozen=True)
class PostgresTarget:
    url: str  # a libpq connection URI; may hold a password: never print it, use masked()

    def masked(self) -> str:
        return mask_url(self.url)


Target = SqliteTarget | PostgresTarget


def parse_target(where: "str | Path | Target") -> Target:
    if isinstance(where, (SqliteTarget, PostgresTarget)):
        return where
    if isinstance(where, Path):
        return SqliteTarget(where)
    text = str(where).strip()
    low = text.lower()
    if low.startswith(("postgresql://", "postgres://")):
        return PostgresTarget(text)
    if low.startswith("sqlite:"):
        if not low.startswith("sqlite:///") or len(text) == len("sqlite:///"):
            raise StateError(f"{mask_url(text)} is not a usable SQLite URL",
                             hint="Write sqlite:///relative/path or sqlite:////absolute/path")
        return SqliteTarget(Path(text[len("sqlite:///"):]).expanduser())
    if "://" in text:
        raise StateError(f"unsupported state store URL {mask_url(text)}",
                         hint="VMOPS_DB_URL / db_url takes sqlite:///path or postgresql://user@host:port/dbname")
    return SqliteTarget(Path(text).expanduser())
