"""vmops' own state: fleets, their members and an event log, in SQLite (``$VMOPS_HOME/state.db``, the
default) or a shared PostgreSQL database (``VMOPS_DB_URL``)."""

from vmops.state.lock import FleetLock
from vmops.state.records import (
    LIVE,
    RESUMABLE,
    EventRecord,
    FleetRecord,
    FleetState,
    MemberRecord,
    MemberStatus,
)
from vmops.state.store import Store, open_store, store_exists, store_for, utcnow

__all__ = [
    "LIVE",
    "RESUMABLE",
    "EventRecord",
    "FleetLock",
    "FleetRecord",
    "FleetState",
    "MemberRecord",
    "MemberStatus",
    "Store",
    "open_store",
    "store_exists",
    "store_for",
    "utcnow",
]
