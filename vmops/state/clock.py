"""The store's timestamps: UTC, milliseconds, ISO 8601 with a ``Z`` (the same text on every backend)."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
