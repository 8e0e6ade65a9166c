"""Scheduling policies: how a fleet's VMs are allocated over the offers the providers made.

A policy is a small object with one method, ``allocate(offers, count) -> list[Placement]``; the create
loop never looks inside it. Register a new one in ``POLICIES``.

Every price here is vmops.pricing's (reserved capacity is prepaid: $0 per VM-hour), the same figure the
plan prints and sums, so ``cheapest`` minimises exactly the plan's total.

Offers with an unknown count (a provider that only says "has capacity", or cannot say at all) are
treated as able to take any number: the create loop's failover covers an optimistic guess.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol, Sequence

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

    def allocate(self, offers: Sequence[Offer], count: int) -> list[Placement]:
        """Place up to ``count`` VMs on ``offers``; may place fewer if capacity runs out."""
        ...


class CheapestPolicy:
    name = "cheapest"
    description = "lowest price per GPU-hour first (prepaid reserved capacity costs $0 per hour)"

    def allocate(self, offers: Sequence[Offer], count: int) -> list[Placement]:
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

    def allocate(self, offers: Sequence[Offer], count: int) -> list[Placement]:
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

    def allocate(self, offers: Sequence[Offer], count: int) -> list[Placement]:
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


POLICIES: dict[str, Policy] = {p.name: p for p in (SpreadPolicy(), CheapestPolicy(), PackPolicy())}
DEFAULT_POLICY = "spread"


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; one of {', '.join(POLICIES)}") from None
