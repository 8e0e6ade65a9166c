"""Scheduling policies: how a fleet's VMs are allocated over the offers the providers made.

A policy is a small object with one method, ``allocate(offers, count) -> list[Placement]``; the create
loop never looks inside it. Register a new one in ``POLICIES``.

Every price here is vmops.pricing's (reserved capacity is prepaid: $0 per VM-hour), the same figure the
plan prints and sums, so ``cheapest`` minimises exactly the plan's total.

Time (docs/design.md, "Plans that know time"): a policy gets a ``FleetClock`` (vmops/fleet/timing.py) with the
providers' launch paces. ``fastest`` minimises the expected time to a running fleet; a policy that says
``time_capped`` (``spread``, ``cheapest``) has its allocation passed through ``cap_by_time`` by the planner, so no
provider gets more VMs than it can launch in the time the others take while the others have room.

Offers with an unknown count (a provider that only says "has capacity", or cannot say at all) are
treated as able to take any number: the create loop's failover covers an optimistic guess.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol, Sequence

from vmops.fleet.timing import NO_CLOCK, FleetClock, expected_seconds
from vmops.model import Offer
from vmops.pricing import Price, offer_price


@dataclass(frozen=True)
class Placement:
    """``count`` VMs from one offer (one provider, region, and on-demand or one reservation)."""

    offer: Offer
    count: int

    @property
    def price(self) -> Price:
        """The price of one VM-hour on this placement's offer."""
        return offer_price(self.offer)

    @property
    def price_per_hour(self) -> float | None:
        """Marginal USD per hour of all ``count`` VMs (0 on prepaid reservations; None if unknown)."""
        return self.price.subtotal(self.count)


def capacity(offer: Offer) -> float:
    """How many VMs this offer can take: its count, 0 if it says it has none, else infinity (unknown)."""
    if offer.available is not None:
        return max(0, offer.available)
    if offer.has_capacity is False:
        return 0
    return math.inf


def _price_key(offer: Offer) -> float:
    """Marginal price per GPU-hour under the one price rule (unknown prices last)."""
    p = offer_price(offer).per_hour
    return math.inf if p is None else p / offer.gpu.count


def cheapest_order(offers: Sequence[Offer]) -> list[Offer]:
    """By marginal price per GPU-hour (prepaid reservations cost $0, so they come first), then known counts
    before unknown ones, larger counts first."""
    return sorted(
        offers,
        key=lambda o: (_price_key(o), 0 if o.available is not None else 1, -(o.available or 0),
                       0 if o.reserved else 1, o.provider, o.region or ""),
    )


def _merge(placements: list[Placement]) -> list[Placement]:
    """Merge repeated placements on the same offer, keeping first-use order."""
    merged: "OrderedDict[int, Placement]" = OrderedDict()
    keys: dict[int, Offer] = {}
    for p in placements:
        k = id(p.offer)
        keys[k] = p.offer
        merged[k] = Placement(p.offer, merged[k].count + p.count) if k in merged else p
    return list(merged.values())


class Policy(Protocol):
    name: str
    description: str
    time_capped: bool  # the planner applies ``cap_by_time`` to this policy's allocation

    def allocate(self, offers: Sequence[Offer], count: int, clock: FleetClock = NO_CLOCK) -> list[Placement]:
        """Place up to ``count`` VMs on ``offers``; may place fewer if capacity runs out."""
        ...


def _room(offers: Sequence[Offer], placements: Sequence[Placement]) -> dict[int, float]:
    left = {id(o): capacity(o) for o in offers}
    for p in placements:
        left[id(p.offer)] = left.get(id(p.offer), math.inf) - p.count
    return left


def cap_by_time(placements: Sequence[Placement], offers: Sequence[Offer], clock: FleetClock) -> list[Placement]:
    """The time cap, the one rule: no provider gets more VMs than it can launch in the time the others take. While
    the slowest provider's share takes longer than one VM there plus the slowest other provider's share (i.e. its
    launches are still being sent when the others run), move one of its VMs (its most expensive first) to
    another provider's offer of the same kind (reserved or on-demand) with room, the one whose time grows least
    (then the cheapest), as long as that provider's time stays below the slowest one's. A provider keeps at least
    one VM; when the others have no room, it keeps the rest."""
    out = [Placement(p.offer, p.count) for p in placements]
    left = _room(offers, out)
    counts: dict[str, int] = {}
    for p in out:
        counts[p.offer.provider] = counts.get(p.offer.provider, 0) + p.count
    for _ in range(sum(counts.values()) * max(1, len(offers))):  # bound: every move shrinks the slowest share
        times = clock.totals(counts)
        if not times:
            break
        slow = max(times, key=lambda q: (times[q], q))
        others = max((t for q, t in times.items() if q != slow), default=0.0)
        if times[slow] <= others + expected_seconds(clock.pace(slow), 1):
            break
        src = next((i for i in reversed(range(len(out))) if out[i].offer.provider == slow and out[i].count > 0),
                   None)
        if src is None:
            break
        kind = out[src].offer.reserved
        room = [o for o in offers if o.provider != slow and o.reserved == kind and left[id(o)] >= 1]
        if not room:
            break
        dest = min(room, key=lambda o: (clock.seconds(o.provider, counts.get(o.provider, 0) + 1), _price_key(o),
                                         o.provider, o.region or ""))
        if clock.seconds(dest.provider, counts.get(dest.provider, 0) + 1) >= times[slow]:
            break
        out[src] = Placement(out[src].offer, out[src].count - 1)
        left[id(out[src].offer)] += 1
        left[id(dest)] -= 1
        counts[slow] -= 1
        counts[dest.provider] = counts.get(dest.provider, 0) + 1
        out.append(Placement(dest, 1))
    return _merge([p for p in out if p.count > 0])


class CheapestPolicy:
    name = "cheapest"
    description = "lowest price per GPU-hour first (prepaid reserved capacity costs $0 per hour)"
    time_capped = True

    def allocate(self, offers: Sequence[Offer], count: int, clock: FleetClock = NO_CLOCK) -> list[Placement]:
        out: list[Placement] = []
        left = count
        for o in cheapest_order(offers):
            if left <= 0:
                break
            take = int(min(left, capacity(o)))
            if take > 0:
                out.append(Placement(o, take))
                left -= take
        return out


class SpreadPolicy:
    name = "spread"
    description = "balance VMs across providers for resilience (default)"
    time_capped = True

    def allocate(self, offers: Sequence[Offer], count: int, clock: FleetClock = NO_CLOCK) -> list[Placement]:
        by_provider: "OrderedDict[str, list[Offer]]" = OrderedDict()
        for o in cheapest_order(offers):
            by_provider.setdefault(o.provider, []).append(o)
        left = {id(o): capacity(o) for o in offers}
        assigned = {p: 0 for p in by_provider}
        # Tie-break between equally loaded providers by their cheapest offer, then name.
        rank = {p: (_price_key(opts[0]), p) for p, opts in by_provider.items()}
        out: list[Placement] = []
        for _ in range(count):
            candidates = [p for p, opts in by_provider.items() if any(left[id(o)] > 0 for o in opts)]
            if not candidates:
                break
            p = min(candidates, key=lambda q: (assigned[q], rank[q]))
            offer = next(o for o in by_provider[p] if left[id(o)] > 0)
            left[id(offer)] -= 1
            assigned[p] += 1
            out.append(Placement(offer, 1))
        return _merge(out)


class PackPolicy:
    name = "pack"
    description = "as few providers as possible (one that can supply everything, if any)"
    time_capped = False

    def allocate(self, offers: Sequence[Offer], count: int, clock: FleetClock = NO_CLOCK) -> list[Placement]:
        by_provider: "OrderedDict[str, list[Offer]]" = OrderedDict()
        for o in cheapest_order(offers):
            by_provider.setdefault(o.provider, []).append(o)

        def total(p: str) -> float:
            return sum(capacity(o) for o in by_provider[p])

        def known_total(p: str) -> float:
            return sum(capacity(o) for o in by_provider[p] if o.available is not None)

        # Providers whose *known* capacity covers everything come first (cheapest of them), then the
        # rest by how much they can surely supply, then providers that can only say "maybe".
        order = sorted(
            by_provider,
            key=lambda p: (0 if known_total(p) >= count else 1, -min(known_total(p), count),
                           _price_key(by_provider[p][0]), p),
        )
        out: list[Placement] = []
        left = count
        for p in order:
            if left <= 0:
                break
            if total(p) <= 0:
                continue
            for o in by_provider[p]:
                take = int(min(left, capacity(o)))
                if take > 0:
                    out.append(Placement(o, take))
                    left -= take
                if left <= 0:
                    break
        return out


class FastestPolicy:
    name = "fastest"
    description = "least expected time until the whole fleet runs (launch pacing and boot time), then cheapest"
    time_capped = False  # it minimises the time itself

    def allocate(self, offers: Sequence[Offer], count: int, clock: FleetClock = NO_CLOCK) -> list[Placement]:
        """Greedy: each VM goes where the fleet's expected time (its slowest provider's) grows least; ties go
        to the provider whose own time grows least, then to the cheaper offer."""
        order = cheapest_order(offers)
        rank = {id(o): i for i, o in enumerate(order)}
        left = {id(o): capacity(o) for o in offers}
        counts = {p: 0 for p in dict.fromkeys([*clock.base, *(o.provider for o in order)])}
        out: list[Placement] = []
        for _ in range(count):
            room = [o for o in order if left[id(o)] > 0]
            if not room:
                break
            now = {p: clock.seconds(p, n) for p, n in counts.items()}

            def key(o: Offer) -> tuple[float, float, int]:
                mine = clock.seconds(o.provider, counts[o.provider] + 1)
                rest = max((t for p, t in now.items() if p != o.provider), default=0.0)
                return max(mine, rest), mine, rank[id(o)]

            best = min(room, key=key)
            left[id(best)] -= 1
            counts[best.provider] += 1
            out.append(Placement(best, 1))
        return _merge(out)


POLICIES: dict[str, Policy] = {p.name: p for p in (SpreadPolicy(), CheapestPolicy(), PackPolicy(), FastestPolicy())}
DEFAULT_POLICY = "spread"


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; one of {', '.join(POLICIES)}") from None
