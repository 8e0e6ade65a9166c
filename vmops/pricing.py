"""The one price rule: what one VM-hour of an offer or of a VM costs, and where that figure came from.

Every view that shows or sums a price (the fleet plan and the ``cheapest`` policy, fleet members, ``vm cost``,
``vm capacity``, the inventory frames and notebooks) asks this module, so a plan's total and the same VMs'
cost once made are the same figure.

The rule (docs/design.md, "One price rule"):

* **On-demand** capacity costs its list price: the provider API's price where the adapter has one
  (origin ``provider``), else vmops' dated catalogue price for the native type (``catalogue``), else unknown.
* **Reserved** capacity is **prepaid**: the marginal price of running a VM on it is $0 (origin
  ``reservation``), whatever the reservation cost. The reservation's own price per VM-hour (the commitment,
  paid whether the VM runs or not) is carried separately in ``commitment_per_hour`` where it is known, and
  the on-demand list price of the same type in ``list_per_hour`` for comparison.

Sums (a plan's total, a fleet's $/hour, ``vm cost``) add ``per_hour``, the marginal price; a VM whose
``per_hour`` is None has no known price and is counted apart (``unpriced``), never as $0.

What the adapters report (normalized model): an ``Offer`` for reserved capacity carries the reservation's
price in ``price_per_hour`` (None where the API has none); a reserved ``Instance`` carries whatever the
adapter found (Crusoe: the reservation's price, Lambda: the type's list price, Nebius: the catalogue), so a
VM's commitment is taken from its ``Reservation`` when the caller has listed them, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any, Iterable, Mapping

from vmops.catalogue import PROVIDERS
from vmops.model import Instance, Offer, Reservation


class PriceOrigin(str, Enum):
    """Where a price came from."""

    PROVIDER = "provider"  # the provider's API reported the on-demand price
    CATALOGUE = "catalogue"  # vmops' dated list-price table (the API has none, e.g. Nebius)
    RESERVATION = "reservation"  # reserved capacity: prepaid, marginal $0
    UNKNOWN = "unknown"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


@dataclass(frozen=True)
class Price:
    """The price of one VM-hour under the rule above."""

    #: Marginal USD per VM-hour: what running this VM adds to the bill. 0.0 when prepaid; None if unknown.
    per_hour: float | None
    #: The on-demand list price of the same native type (for comparison; equal to per_hour when on-demand).
    list_per_hour: float | None
    #: Exact source of the figure (API field, catalogue table and date, or the reservation).
    source: str
    origin: PriceOrigin
    prepaid: bool = False
    #: A reservation's own price per VM-hour, paid whether the VM runs or not; None if not reserved or unknown.
    commitment_per_hour: float | None = None
    reservation_id: str | None = None

    @property
    def billing(self) -> str:
        return "reserved" if self.prepaid else "on-demand"

    def subtotal(self, vms: int) -> float | None:
        """``vms`` VM-hours at the marginal price (None if the price is unknown)."""
        return None if self.per_hour is None else round(self.per_hour * vms, 4)

    def label(self) -> str:
        """A short human label: ``$27.68``, ``prepaid`` or ``prepaid (commitment $176.00)``, ``unknown``."""
        if self.prepaid:
            return "prepaid" if self.commitment_per_hour is None else f"prepaid (commitment ${self.commitment_per_hour:,.2f})"
        return "unknown" if self.per_hour is None else f"${self.per_hour:,.2f}"

    def to_dict(self) -> dict[str, Any]:
        """The row fields every view shows (same names in plan rows, inventory frames and JSON)."""
        return {
            "price_per_hour": self.per_hour,
            "list_price_per_hour": self.list_per_hour,
            "price_source": self.source,
            "price_origin": self.origin.value,
            "prepaid": self.prepaid,
            "commitment_per_hour": self.commitment_per_hour,
        }


@lru_cache(maxsize=1)
def _catalogue() -> tuple[dict[tuple[str, str], tuple[float, str]], frozenset[str]]:
    prices = {(p.name, t.name): (t.list_price_per_hour, t.price_source) for p in PROVIDERS.values()
              for t in p.all_types()}  # both dialects' types: a cloud API without prices uses the catalogue too
    return prices, frozenset(src for _, src in prices.values())


def list_price(provider: str, native_type: str, price: float | None = None,
               source: str | None = None) -> tuple[float | None, str, PriceOrigin]:
    """The on-demand price of a native type: the adapter's ``price`` where it has one, else the catalogue's
    list price, else unknown. Returns ``(price, source, origin)``."""
    prices, sources = _catalogue()
    if price is not None:
        src = source or "adapter (source not given)"
        return float(price), src, PriceOrigin.CATALOGUE if src in sources else PriceOrigin.PROVIDER
    listed = prices.get((provider, native_type))
    if listed is not None:
        return listed[0], listed[1], PriceOrigin.CATALOGUE
    return None, "", PriceOrigin.UNKNOWN


def _prepaid(provider: str, native_type: str, reservation_id: str | None, commitment: float | None,
             commitment_source: str | None) -> Price:
    listed, _, _ = list_price(provider, native_type)
    what = f"prepaid reservation {reservation_id or '(id not reported)'}"
    if commitment is not None and commitment_source:
        what += f"; commitment from {commitment_source}"
    return Price(per_hour=0.0, list_per_hour=listed, source=what, origin=PriceOrigin.RESERVATION, prepaid=True,
                 commitment_per_hour=None if commitment is None else round(float(commitment), 4),
                 reservation_id=reservation_id)


def offer_price(offer: Offer) -> Price:
    """The price of one VM-hour on ``offer`` (a reserved offer's own price is its commitment)."""
    if offer.reserved:
        return _prepaid(offer.provider, offer.native_type, offer.reservation_id, offer.price_per_hour,
                        offer.price_source)
    price, source, origin = list_price(offer.provider, offer.native_type, offer.price_per_hour, offer.price_source)
    return Price(per_hour=price, list_per_hour=price, source=source, origin=origin)


ReservationIndex = Mapping[tuple[str, str], Reservation]


def reservation_index(reservations: Iterable[Reservation]) -> dict[tuple[str, str], Reservation]:
    """``{(provider, reservation id): reservation}``, for :func:`instance_price`'s commitments."""
    return {(r.provider, r.id): r for r in reservations}


def instance_price(inst: Instance, reservations: ReservationIndex | None = None) -> Price:
    """The price of one hour of the VM ``inst`` as it is billed now (its ``reserved`` flag is the provider's
    current word: a VM moved from a reservation to on-demand by a stop/start is priced on-demand).

    ``reservations`` (see :func:`reservation_index`) supplies the commitment of reserved VMs; without it the
    commitment is unknown (the marginal price is $0 either way)."""
    if inst.reserved:
        rsv = (reservations or {}).get((inst.provider, inst.reservation_id or ""))
        commitment = rsv.price_per_hour if rsv is not None else None
        return _prepaid(inst.provider, inst.native_type, inst.reservation_id, commitment,
                        f"{inst.provider} reservation price" if commitment is not None else None)
    price, source, origin = list_price(inst.provider, inst.native_type, inst.price_per_hour, inst.price_source)
    return Price(per_hour=price, list_per_hour=price, source=source, origin=origin)


def member_price(inst: Instance, reservations: ReservationIndex | None = None) -> Price:
    """The price of a fleet member's VM, from the provider's current view of it. Call it on every refresh:
    a member whose billing changed (e.g. reserved -> on-demand after a stop/start) gets its new price."""
    return instance_price(inst, reservations)


def priced_instance(inst: Instance, reservations: ReservationIndex | None = None) -> dict[str, Any]:
    """``inst.to_dict()`` with the rule's price fields (and ``billing``): what `vm list`/`vm get` print."""
    price = instance_price(inst, reservations)
    return {**inst.to_dict(), **price.to_dict(), "billing": price.billing}


def priced_offer(offer: Offer) -> dict[str, Any]:
    """``offer.to_dict()`` with the rule's price fields (and ``billing``): what `vm capacity` prints."""
    price = offer_price(offer)
    return {**offer.to_dict(), **price.to_dict(), "billing": price.billing,
            "price_per_gpu_hour": None if price.per_hour is None else round(price.per_hour / offer.gpu.count, 4)}


def total(prices: Iterable[tuple[Price, int]]) -> tuple[float, int, int]:
    """``(marginal USD per hour, prepaid VMs, unpriced VMs)`` of ``(price, vms)`` pairs: the one way every
    view sums prices (unknown prices are counted, never added as $0)."""
    hourly, prepaid, unpriced = 0.0, 0, 0
    for p, n in prices:
        if p.per_hour is None:
            unpriced += n
            continue
        hourly += p.per_hour * n
        if p.prepaid:
            prepaid += n
    return round(hourly, 4), prepaid, unpriced
