"""Planning a fleet: ask every eligible provider what it can supply (concurrently), drop what must not
be used (vmops/reserved.py decides which reserved or on-demand offers the fleet's ``--reserved`` mode
admits), and let the policy allocate, reserved offers before on-demand ones. A plan is pure data: rendering it
(``--dry-run``) changes nothing. Its prices are vmops/pricing.py's, the same rule every other view uses; its
times are vmops/fleet/timing.py's, from each provider's launch pace (its adapter's ``launch_pace``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from vmops.catalogue import provider_entry
from vmops.errors import ProviderUnavailable, UsageError, VmopsError
from vmops.fleet.policies import Placement, Policy, cap_by_time, capacity, cheapest_order, get_policy
from vmops.fleet.spec import FleetSpec
from vmops.fleet.timing import FleetClock, expected_seconds
from vmops.model import GpuShape, Offer
from vmops.pricing import offer_price, priced_offer, total
from vmops.providers.base import Provider
from vmops.providers.pacing import LaunchPace
from vmops.reserved import ALLOW_RESERVED_FLAG, DEFAULT_MODE, ReservedMode, screen_offers

__all__ = ["ALLOW_RESERVED_FLAG", "Plan", "ProviderAnswer", "Skipped", "eligible_providers",
           "make_plan", "plan_fleet", "usable_offers"]


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
    error: VmopsError | None = None  # it did not answer


@dataclass
class Plan:
    gpu: GpuShape
    count: int
    policy: str
    placements: list[Placement]
    options: list[Offer]  # every usable offer, in failover order (the policy's choice first)
    skipped: list[Skipped] = field(default_factory=list)
    paces: Mapping[str, LaunchPace] = field(default_factory=dict)  # per provider; none = instant

    @property
    def planned(self) -> int:
        return sum(p.count for p in self.placements)

    @property
    def shortfall(self) -> int:
        return max(0, self.count - self.planned)

    def _sums(self) -> tuple[float, int, int]:
        return total((p.price, p.count) for p in self.placements)

    @property
    def total_per_hour(self) -> float:
        """Marginal USD per hour of the planned VMs under the one price rule (vmops/pricing.py): prepaid
        reserved VMs add $0; VMs with no known price are counted in ``unpriced_vms``, not here."""
        return self._sums()[0]

    @property
    def prepaid_vms(self) -> int:
        """Planned VMs on reserved capacity (prepaid: $0 per hour in ``total_per_hour``)."""
        return self._sums()[1]

    @property
    def unpriced_vms(self) -> int:
        """Planned VMs whose on-demand price is unknown (not in ``total_per_hour``)."""
        return self._sums()[2]

    @property
    def commitment_per_hour(self) -> float | None:
        """What the reservations the plan uses cost per hour whether or not these VMs run (None: no
        reserved VMs, or no reservation with a known price)."""
        known = [(p.price.commitment_per_hour, p.count) for p in self.placements
                 if p.price.prepaid and p.price.commitment_per_hour is not None]
        return round(sum(c * n for c, n in known), 4) if known else None

    @property
    def clock(self) -> FleetClock:
        return FleetClock(self.paces)

    def provider_seconds(self) -> dict[str, float]:
        """Expected seconds until each provider's share runs (vmops/fleet/timing.py), in placement order."""
        counts: dict[str, int] = {}
        for p in self.placements:
            counts[p.offer.provider] = counts.get(p.offer.provider, 0) + p.count
        return self.clock.totals(counts)

    @property
    def expected_seconds(self) -> float:
        """Expected seconds until the whole plan runs: the slowest provider's (providers work in parallel)."""
        return max(self.provider_seconds().values(), default=0.0)

    def rows(self) -> list[dict[str, Any]]:
        """One row per placement, for a table or JSON."""
        out = []
        so_far: dict[str, int] = {}
        for p in self.placements:
            o = p.offer
            so_far[o.provider] = so_far.get(o.provider, 0) + p.count
            out.append({
                **_offer_row(o),
                "count": p.count,
                "subtotal_per_hour": p.price_per_hour,
                # until this placement's VMs run (its provider's earlier placements are sent first)
                "expected_seconds": expected_seconds(self.clock.pace(o.provider), so_far[o.provider]),
            })
        return out

    def fallbacks(self) -> list[dict[str, Any]]:
        """The usable offers the plan did not choose, in the order a create tries them once a chosen offer
        refuses (after the other chosen offers): where VMs may land that the placements do not show. Empty
        when nothing is planned (nothing is created, so nothing fails over)."""
        if not self.planned:
            return []
        chosen = [p.offer for p in self.placements]
        return [_offer_row(o) for o in self.options if all(o is not c for c in chosen)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": str(self.gpu),
            "count": self.count,
            "policy": self.policy,
            "planned": self.planned,
            "shortfall": self.shortfall,
            "total_per_hour": self.total_per_hour,
            "prepaid_vms": self.prepaid_vms,
            "commitment_per_hour": self.commitment_per_hour,
            "unpriced_vms": self.unpriced_vms,
            "expected_seconds": self.expected_seconds,
            "expected_seconds_by_provider": self.provider_seconds(),
            "placements": self.rows(),
            "failover_options": [priced_offer(o) for o in self.options],
            "skipped": [s.to_dict() for s in self.skipped],
        }


def _offer_row(o: Offer) -> dict[str, Any]:
    """An offer as a plan shows it: where, what capacity, and one VM's price under the one price rule."""
    price = offer_price(o)
    return {
        "provider": o.provider,
        "region": o.region or "-",
        "native_type": o.native_type,
        "capacity": " ".join(filter(None, ["reserved", o.reservation_id, "(prepaid)"])) if o.reserved else "on-demand",
        "available": "?" if capacity(o) == math.inf else int(capacity(o)),
        "price_per_hour": price.per_hour,
        "price_source": price.source,
        "price_origin": price.origin.value,
        "prepaid": price.prepaid,
        "commitment_per_hour": price.commitment_per_hour,
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


FanOutFn = Callable[[Callable[[Provider], list[Offer]], Sequence[str]], Any]


def _fanned_offers(fan_out: FanOutFn, names: Sequence[str], shape: GpuShape) -> list[ProviderAnswer]:
    """Every provider's offers of ``shape``, asked through a session's fan-out: a provider that fails, is skipped
    by the breaker or misses the deadline is an answer with its error."""
    def ask(p: Provider) -> list[Offer]:
        try:
            return [o for o in p.offers(shape) if o.gpu == shape]
        except VmopsError:
            raise
        except Exception as e:  # an adapter bug must not hide the other providers
            raise ProviderUnavailable(f"unexpected error: {type(e).__name__}: {e}", provider=p.name) from None

    got = fan_out(ask, list(names))
    out: list[ProviderAnswer] = []
    for n in names:
        if n in got.results:
            out.append(ProviderAnswer(n, tuple(got.results[n])))
        else:
            out.append(ProviderAnswer(n, (), got.failures[n]))
    return out


def usable_offers(
    answers: Sequence[ProviderAnswer],
    providers: Mapping[str, Provider],
    *,
    allow_unterminable_reserved: bool = False,
    reserved: ReservedMode = DEFAULT_MODE,
) -> tuple[list[Offer], list[Skipped]]:
    """The offers a fleet in ``reserved`` mode (FleetSpec.reserved) may use, and why the others are not
    used (vmops/reserved.py decides)."""
    offers: list[Offer] = []
    skipped: list[Skipped] = []
    for a in answers:
        if a.error is not None:
            skipped.append(Skipped(a.provider, None, f"could not be read: {a.error.render(named=False)}", a.error))
            continue
        if not a.offers:
            skipped.append(Skipped(a.provider, None, "offered nothing for this shape"))
            continue
        ok, refused = screen_offers(reserved, a.offers, {a.provider: providers[a.provider].capabilities},
                                    allow_unterminable=allow_unterminable_reserved)
        skipped.extend(Skipped(o.provider, o.region, why) for o, why in refused)
        for o in ok:
            if capacity(o) <= 0:
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
    paces: Mapping[str, LaunchPace] | None = None,
) -> Plan:
    """Allocate ``count`` VMs: reserved offers first (only there in ``--reserved prefer|only``), then the
    rest on on-demand offers, each step by the policy (and the time cap if the policy says ``time_capped``),
    the second step knowing the first's shares. ``paces``: each provider's launch pace (none: instant).
    Failover options: the chosen offers, then the others reserved first, cheapest first."""
    reserved = [o for o in offers if o.reserved]
    on_demand = [o for o in offers if not o.reserved]
    clock = FleetClock(dict(paces or {}))

    def step(step_offers: list[Offer], n: int, clock: FleetClock) -> list[Placement]:
        got = policy.allocate(step_offers, n, clock)
        return cap_by_time(got, step_offers, clock) if policy.time_capped else got

    placements = step(reserved, count, clock) if reserved else []
    left = count - sum(p.count for p in placements)
    if left > 0 and on_demand:
        placements += step(on_demand, left, clock.with_base((p.offer.provider, p.count) for p in placements))
    chosen = [p.offer for p in placements]
    rest = [o for o in cheapest_order(reserved) + cheapest_order(on_demand) if all(o is not c for c in chosen)]
    return Plan(shape, count, policy.name, placements, chosen + rest, list(skipped), dict(paces or {}))


def plan_fleet(spec: FleetSpec, provider: Callable[[str], Provider], fan_out: "FanOutFn", enabled: Sequence[str],
               count: int | None = None) -> Plan:
    """Plan ``count`` (default: the spec's) VMs of a validated ``spec`` over the ``enabled`` providers:
    the whole of a fleet plan, reads only. ``provider(name)`` gives the adapter and ``fan_out`` asks for the
    offers with the session's fail-fast rules (``Session.provider``/``Session.fan_out``: the circuit breaker,
    the deadline, each provider asked as soon as its adapter is made)."""
    names, skipped = eligible_providers(enabled, spec.gpu)
    if not names:
        raise UsageError(f"no enabled provider offers {spec.gpu}",
                         hint="`vm capacity` shows the shapes each provider offers")
    answers = _fanned_offers(fan_out, names, spec.gpu)
    providers = {n: provider(n) for n in names}
    offers, more = usable_offers(answers, providers, allow_unterminable_reserved=spec.allow_unterminable_reserved,
                                 reserved=spec.reserved)
    return make_plan(spec.gpu, spec.count if count is None else count, get_policy(spec.policy_name), offers,
                     skipped + more, {n: p.launch_pace() for n, p in providers.items()})
