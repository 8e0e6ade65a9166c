"""The normalized model every layer above the adapters speaks.

Nothing in here knows about a particular provider: adapters translate their native objects into these
dataclasses, and the CLI, fleet manager, notebooks and playbooks only ever see these.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, Iterable, Mapping


class State(str, Enum):
    """Canonical lifecycle state of a VM, whatever the provider calls it."""

    CREATING = "creating"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    STARTING = "starting"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"
    UNKNOWN = "unknown"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value

    @property
    def is_gone(self) -> bool:
        return self is State.DELETED


#: States in which a VM is assumed to bill by the hour. Stopped and deleted VMs are not counted (GPU
#: providers bill compute only while a VM holds its GPUs; storage is ignored).
BILLED_STATES: frozenset[State] = frozenset(
    {State.CREATING, State.RUNNING, State.STARTING, State.STOPPING, State.ERROR, State.UNKNOWN}
)


def map_state(native: str | None, table: Mapping[str, State]) -> State:
    """Map a native state through an adapter's table; anything unmapped is UNKNOWN, never an error."""
    if native is None:
        return State.UNKNOWN
    return table.get(native, State.UNKNOWN)


_SHAPE_RE = re.compile(r"^\s*([a-z][a-z0-9]*)\s*(?::\s*(\d+))?\s*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class GpuShape:
    """A canonical GPU shape: GPU model and GPUs per VM, written ``h100`` or ``h100:8``."""

    model: str  # lower case, e.g. "h100"
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "GpuShape":
        m = _SHAPE_RE.match(text or "")
        if not m:
            raise ValueError(f"{text!r} is not a GPU shape; write TYPE[:GPUS_PER_VM], e.g. h100 or h100:8")
        count = int(m.group(2)) if m.group(2) else 1
        if count < 1:
            raise ValueError(f"{text!r}: GPUs per VM must be at least 1")
        return cls(m.group(1).lower(), count)

    def __str__(self) -> str:
        return f"{self.model}:{self.count}"


@dataclass(frozen=True)
class Instance:
    """One VM at one provider, normalized."""

    provider: str
    id: str
    name: str
    state: State
    native_state: str
    native_type: str
    gpu: GpuShape | None = None
    region: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    reserved: bool = False
    reservation_id: str | None = None
    price_per_hour: float | None = None
    price_source: str | None = None
    created_at: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    can_terminate: bool = True

    def to_dict(self) -> dict[str, Any]:
        # Shallow, field by field: dataclasses.asdict deep-copies every value and was most of the time of
        # `vm list` over 10,000 instances (bench figure 5).
        d = {f.name: getattr(self, f.name) for f in _INSTANCE_FIELDS}
        d["state"] = self.state.value
        d["gpu"] = str(self.gpu) if self.gpu else None
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        d["labels"] = dict(self.labels)
        return d


_INSTANCE_FIELDS = fields(Instance)


@dataclass(frozen=True)
class Reservation:
    """Capacity a provider holds for us, in VMs of one native type."""

    provider: str
    id: str
    name: str
    native_type: str
    gpu: GpuShape | None
    region: str | None
    active: bool
    total_vms: int
    used_vms: int
    price_per_hour: float | None = None  # per VM, where the provider says
    start: str | None = None
    end: str | None = None

    @property
    def available_vms(self) -> int:
        return max(0, self.total_vms - self.used_vms) if self.active else 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gpu"] = str(self.gpu) if self.gpu else None
        d["available_vms"] = self.available_vms
        return d


@dataclass(frozen=True)
class Offer:
    """What one provider can supply now for one shape in one region.

    ``available`` is a VM count where the provider reports counts, ``None`` where it only says whether
    there is capacity (``has_capacity``) or cannot say at all (both ``None``).
    """

    provider: str
    gpu: GpuShape
    native_type: str
    region: str | None
    price_per_hour: float | None
    price_source: str
    available: int | None = None
    has_capacity: bool | None = None
    reserved: bool = False
    reservation_id: str | None = None

    @property
    def price_per_gpu_hour(self) -> float | None:
        return None if self.price_per_hour is None else self.price_per_hour / self.gpu.count

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gpu"] = str(self.gpu)
        return d


class ReservationPolicy(str, Enum):
    """How a create may use reserved capacity."""

    AUTO = "auto"  # use a matching reservation if the provider places into one, else on-demand
    FORBID = "forbid"  # on-demand only
    STRICT = "strict"  # only the given reservation(s); never on-demand


@dataclass(frozen=True)
class CreateRequest:
    """Everything an adapter needs to create one VM."""

    name: str
    native_type: str
    region: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    reservation_policy: ReservationPolicy = ReservationPolicy.AUTO
    reservation_ids: tuple[str, ...] = ()
    #: Ids of every VM already carrying ``name``, from a list the caller made just before (a fleet lists each
    #: provider once per batch of creates). None: the adapter looks the name up itself before creating.
    #: Either way a lost answer adopts only a VM that is not in this set.
    known_ids: frozenset[str] | None = None
    #: With ``wait=False``: read the new VM back from the provider (reservation, addresses, native state) before
    #: returning. False: return what the create's answer says (its id, state ``creating``) and save one request
    #: per VM, for a caller that waits on a list anyway (a fleet: bench figure 3). Creates that settle ignore it.
    read_back: bool = True


def reserved_offers(reservations: Iterable[Reservation], shape: GpuShape | None, price_source: str, *,
                    priced: bool = True) -> list[Offer]:
    """The reserved offers of a provider's active reservations (of ``shape``, if given): what each still holds,
    at the reservation's price per VM (``priced``) or none (a prepaid reservation whose price is not said)."""
    return [Offer(provider=r.provider, gpu=r.gpu, native_type=r.native_type, region=r.region,
                  price_per_hour=r.price_per_hour if priced else None, price_source=price_source,
                  available=r.available_vms, has_capacity=r.available_vms > 0, reserved=True, reservation_id=r.id)
            for r in reservations
            if r.active and r.gpu is not None and (shape is None or r.gpu == shape)]
