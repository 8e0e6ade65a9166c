"""What the state store holds, as typed records (rows never cross a module boundary as dicts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from vmops.model import State


class FleetState(str, Enum):
    """Life cycle of a fleet: ``creating -> active | partial | failed -> destroying -> destroyed``.

    ``degraded``: fewer members exist than the fleet's minimum (seen by status/reconcile after VMs went
    away outside vmops); like ``partial`` it can be resumed with ``fleet create``."""

    CREATING = "creating"
    ACTIVE = "active"
    PARTIAL = "partial"
    DEGRADED = "degraded"
    FAILED = "failed"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


#: Fleet states a second ``fleet create`` with the same name resumes instead of refusing.
RESUMABLE: frozenset[FleetState] = frozenset({FleetState.CREATING, FleetState.FAILED, FleetState.PARTIAL,
                                             FleetState.DEGRADED})


class MemberStatus(str, Enum):
    """vmops' own view of one member (one attempt to make one VM), independent of the provider's state."""

    REQUESTED = "requested"  # row written, create sent (or about to be); provider id not known yet
    ACCEPTED = "accepted"  # provider answered with an id; not running yet
    RUNNING = "running"
    FAILED = "failed"  # the create failed and nothing is left at the provider
    DESTROYING = "destroying"  # destroy sent (cleanup, rollback or fleet destroy)
    DESTROYED = "destroyed"  # vmops saw it gone after destroying it
    DESTROY_FAILED = "destroy_failed"  # vmops could not destroy it (reserved, provider down); reason recorded
    GONE = "gone"  # the provider no longer has it, and no fleet command deleted it (a console, `vm destroy`)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value

    @property
    def may_exist(self) -> bool:
        """Could a VM exist at the provider for a member in this status?"""
        return self in LIVE


#: Member statuses whose VM may exist at the provider (what destroy must deal with).
LIVE: frozenset[MemberStatus] = frozenset(
    {
        MemberStatus.REQUESTED,
        MemberStatus.ACCEPTED,
        MemberStatus.RUNNING,
        MemberStatus.DESTROYING,
        MemberStatus.DESTROY_FAILED,
    }
)


@dataclass(frozen=True)
class FleetRecord:
    id: int
    name: str
    gpu: str
    count: int
    min_count: int
    policy: str
    state: FleetState
    allow_unterminable_reserved: bool
    created_at: str
    updated_at: str
    last_error: str | None = None
    owner_pid: int | None = None
    owner_host: str | None = None
    reserved_mode: str = "never"
    operator: str | None = None  # who created (or last resumed) it: VMOPS_OPERATOR or user@hostname
    vmops_version: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "FleetRecord":
        return cls(
            id=int(row["id"]),
            name=row["name"],
            gpu=row["gpu"],
            count=int(row["count"]),
            min_count=int(row["min_count"]),
            policy=row["policy"],
            state=FleetState(row["state"]),
            allow_unterminable_reserved=bool(row["allow_unterminable_reserved"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_error=row["last_error"],
            owner_pid=row["owner_pid"],
            owner_host=row["owner_host"],
            reserved_mode=row.get("reserved_mode") or "never",
            operator=row.get("operator"),  # .get: older schemas (a read-only import source) lack it
            vmops_version=row.get("vmops_version"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gpu": self.gpu,
            "count": self.count,
            "min": self.min_count,
            "policy": self.policy,
            "state": self.state.value,
            "allow_unterminable_reserved": self.allow_unterminable_reserved,
            "reserved_mode": self.reserved_mode,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_error": self.last_error,
            "owner": self.operator,
            "vmops_version": self.vmops_version,
        }


@dataclass(frozen=True)
class MemberRecord:
    id: int
    fleet_id: int
    seq: int
    name: str
    provider: str
    region: str | None
    native_type: str
    status: MemberStatus
    state: State
    idempotency_key: str
    created_at: str
    updated_at: str
    instance_id: str | None = None
    reserved: bool = False
    reservation_id: str | None = None
    price_per_hour: float | None = None
    public_ip: str | None = None
    last_seen_at: str | None = None
    last_error: str | None = None
    #: the provider can never destroy it through its API (a reserved instance): reported, not retried
    undestroyable: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "MemberRecord":
        return cls(
            id=int(row["id"]),
            fleet_id=int(row["fleet_id"]),
            seq=int(row["seq"]),
            name=row["name"],
            provider=row["provider"],
            region=row["region"],
            native_type=row["native_type"],
            status=MemberStatus(row["status"]),
            state=State(row["state"]) if row["state"] in State._value2member_map_ else State.UNKNOWN,
            idempotency_key=row["idempotency_key"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            instance_id=row["instance_id"],
            reserved=bool(row["reserved"]),
            reservation_id=row["reservation_id"],
            price_per_hour=row["price_per_hour"],
            public_ip=row.get("public_ip"),
            last_seen_at=row["last_seen_at"],
            last_error=row["last_error"],
            undestroyable=bool(row.get("undestroyable") or 0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "id": self.instance_id,
            "region": self.region,
            "native_type": self.native_type,
            "status": self.status.value,
            "state": self.state.value,
            "reserved": self.reserved,
            "reservation_id": self.reservation_id,
            "price_per_hour": self.price_per_hour,
            "public_ip": self.public_ip,
            "created_at": self.created_at,
            "last_seen_at": self.last_seen_at,
            "last_error": self.last_error,
            "undestroyable": self.undestroyable,
        }


@dataclass(frozen=True)
class EventRecord:
    id: int
    fleet_id: int
    member_id: int | None
    at: str
    kind: str
    from_state: str | None
    to_state: str | None
    message: str | None
    operator: str | None = None
    vmops_version: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "EventRecord":
        return cls(
            id=int(row["id"]),
            fleet_id=int(row["fleet_id"]),
            member_id=row["member_id"],
            at=row["at"],
            kind=row["kind"],
            from_state=row["from_state"],
            to_state=row["to_state"],
            message=row["message"],
            operator=row.get("operator"),
            vmops_version=row.get("vmops_version"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind,
            "member_id": self.member_id,
            "from": self.from_state,
            "to": self.to_state,
            "message": self.message,
            "operator": self.operator,
            "version": self.vmops_version,
        }
