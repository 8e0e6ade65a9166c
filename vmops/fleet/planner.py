"""Planning a fleet: ask every eligible provider what it can supply (concurrently), drop what must not
be used, and let the policy allocate. A plan is pure data: rendering it (``--dry-run``) changes nothing."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from vmops.catalogue import provider_entry
from vmops.errors import VmopsError
from vmops.fleet.policies import Placement, Policy, capacity, cheapest_order
from vmops.model import GpuShape, Offer
from vmops.providers.base import Provider

ALLOW_RESERVED_FLAG = "--allow-unterminable-reserved"


@dataclass(frozen=True)
class Skipped:
    """A provider (or one of its offers) the plan does not use, and why."""

    provider: str
    region: str | None
    reason: str
    error: VmopsError | None = None  # the typed error when the provider did not answer

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "region": self.region, "reason": self.reason}


@dataclass(frozen=True)
class ProviderAnswer:
    provider: str
    offers: tuple[Offer, ...] = ()
    error: str | None = None
    exc: VmopsError | None = None


@dataclass
class Plan:
    gpu: GpuShape
    count: int
    policy: str
    placements: list[Placement]
    options: list[Offer]  # every usable offer, in failover order (the policy's choice first)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def planned(self) -> int:
        return sum(p.count for p in self.placements)

    @property
    def shortfall(self) -> int:
        return max(0, self.count - self.planned)

    @property
    def total_per_hour(self) -> float:
        """Sum of the placements' known prices (see ``unpriced_vms`` for those without one)."""
        return round(sum(p.price_per_hour or 0.0 for p in self.placements), 4)

    @property
    def unpriced_vms(self) -> int:
        """Planned VMs whose price is unknown (e.g. prepaid reservations that report no price)."""
        return sum(p.count for p in self.placements if p.price_per_hour is None)

    def rows(self) -> list[dict[str, Any]]:
        """One row per placement, for a table or JSON."""
        out = []
        for p in self.placements:
            o = p.offer
            out.append({
                "provider": o.provider,
                "region": o.region or "-",
                "native_type": o.native_type,
                "capacity": ("reserved " + (o.reservation_id or "")).strip() if o.reserved else "on-demand",
                "available": "?" if capacity(o) == math.inf else int(capacity(o)),
                "count": p.count,
                "price_per_hour": o.price_per_hour,
                "subtotal_per_hour": None if p.price_per_hour is None else round(p.price_per_hour, 4),
            })
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": str(self.gpu),
            "count": self.count,
            "policy": self.policy,
            "planned": self.planned,
            "shortfall": self.shortfall,
            "total_per_hour": self.total_per_hour,
            "unpriced_vms": self.unpriced_vms,
            "placements": self.rows(),
            "failover_options": [o.to_dict() for o in self.options],
            "skipped": [s.to_dict() for s in self.skipped],
        }


def eligible_providers(enabled: Sequence[str], shape: GpuShape) -> tuple[list[str], list[Skipped]]:
    """Enabled providers whose catalogue offers ``shape`` (no network)."""
    ok: list[str] = []
    skipped: list[Skipped] = []
    for name in enabled:
        entry = provider_entry(name)
        if entry.type_for(shape) is None:
            offered = ", ".join(str(s) for s in entry.shapes())
            skipped.append(Skipped(name, None, f"does not offer {shape} (offers {offered})"))
        else:
            ok.append(name)
    return ok, skipped


def gather_offers(providers: Mapping[str, Provider], shape: GpuShape) -> list[ProviderAnswer]:
    """Ask every provider for its offers concurrently; a provider that fails is an answer too."""

    def ask(name: str) -> ProviderAnswer:
        try:
            offers = tuple(o for o in providers[name].offers(shape) if o.gpu == shape)
            return ProviderAnswer(name, offers)
        except VmopsError as e:
            return ProviderAnswer(name, (), e.render(), e)
        except Exception as e:  # an adapter bug must not hide the other providers
            return ProviderAnswer(name, (), f"unexpected error: {type(e).__name__}: {e}")

    if not providers:
        return []
    with ThreadPoolExecutor(max_workers=len(providers), thread_name_prefix="vmops-offers") as pool:
        return list(pool.map(ask, list(providers)))


def usable_offers(
    answers: Sequence[ProviderAnswer],
    providers: Mapping[str, Provider],
    *,
    allow_unterminable_reserved: bool = False,
) -> tuple[list[Offer], list[Skipped]]:
    offers: list[Offer] = []
    skipped: list[Skipped] = []
    for a in answers:
        if a.error is not None:
            skipped.append(Skipped(a.provider, None, f"did not answer: {a.error}", a.exc))
            continue
        if not a.offers:
            skipped.append(Skipped(a.provider, None, "offered nothing for this shape"))
            continue
        can_terminate_reserved = providers[a.provider].capabilities.terminate_reserved
        for o in a.offers:
            if o.reserved and not can_terminate_reserved and not allow_unterminable_reserved:
                skipped.append(Skipped(o.provider, o.region, (
                    f"reservation {o.reservation_id or '?'} holds VMs that cannot be terminated through the API "
                    f"(opt in with {ALLOW_RESERVED_FLAG})")))
            elif capacity(o) <= 0:
                skipped.append(Skipped(o.provider, o.region,
                                       f"no {'reserved' if o.reserved else 'on-demand'} capacity"))
            else:
                offers.append(o)
    return offers, skipped


def make_plan(
    shape: GpuShape,
    count: int,
    policy: Policy,
    offers: Sequence[Offer],
    skipped: Sequence[Skipped] = (),
) -> Plan:
    placements = policy.allocate(list(offers), count)
    chosen = [p.offer for p in placements]
    rest = [o for o in cheapest_order(offers) if all(o is not c for c in chosen)]
    return Plan(shape, count, policy.name, placements, chosen + rest, list(skipped))
