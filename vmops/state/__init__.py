"""vmops' own state: fleets, their members and an event log, in SQLite (``$VMOPS_HOME/state.db``)."""

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
from vmops.state.store import Store, open_store, utcnow

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
    "utcnow",
]
