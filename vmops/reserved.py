"""Reservations only when asked: the ``--reserved never|prefer|only`` mode and the one mapping from a mode to
what a create may use (which offers a plan may take, and the ``ReservationPolicy`` + ids of each request).

Both `vm fleet create` (planner and create loop) and `vm create` call these functions; nothing else decides
whether a VM may land on reserved capacity. The rule (docs/design.md, "Reservations only when asked"):

* ``never`` (the default): on-demand capacity only. Requests say FORBID. Where a provider places a create
  into an eligible reservation by itself and cannot be told not to (``Capabilities.forbid_reserved`` False:
  Crusoe), on-demand capacity in a region that also holds a free reservation of the type is not used, and
  the plan says so.
* ``prefer``: reserved capacity first (prepaid, see vmops/pricing.py), then on-demand.
* ``only``: reserved capacity only; never on-demand.

Reservations whose VMs cannot be terminated through the API (Lambda's) need the separate opt-in
``allow_unterminable_reserved`` in every mode.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping, Sequence

from vmops.errors import UsageError
from vmops.model import Offer, ReservationPolicy
from vmops.providers.base import Capabilities

ALLOW_RESERVED_FLAG = "--allow-unterminable-reserved"
RESERVED_FLAG = "--reserved"


class ReservedMode(str, Enum):
    """May a create use reserved capacity?"""

    NEVER = "never"
    PREFER = "prefer"
    ONLY = "only"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value

    @classmethod
    def parse(cls, text: "str | ReservedMode") -> "ReservedMode":
        if isinstance(text, ReservedMode):
            return text
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise UsageError(f"{RESERVED_FLAG} must be never, prefer or only, not {text!r}") from None


DEFAULT_MODE = ReservedMode.NEVER


def offer_refusal(mode: ReservedMode, offer: Offer, offers: Sequence[Offer], capabilities: Capabilities,
                  *, allow_unterminable: bool = False) -> str | None:
    """Why a plan in ``mode`` must not use ``offer`` (None: it may). ``offers`` are the same provider's other
    offers for the shape (to see reservations the provider would place into by itself)."""
    if offer.reserved:
        if mode is ReservedMode.NEVER:
            return (f"reservation {offer.reservation_id or '?'} is not used without {RESERVED_FLAG} prefer or only "
                    "(on-demand only by default)")
        if not capabilities.terminate_reserved and not allow_unterminable:
            return (f"reservation {offer.reservation_id or '?'} holds VMs that cannot be terminated through the API "
                    f"(opt in with {ALLOW_RESERVED_FLAG})")
        return None
    if mode is ReservedMode.ONLY:
        return f"on-demand capacity is not used with {RESERVED_FLAG} only"
    if mode is ReservedMode.NEVER and not capabilities.forbid_reserved:
        held = [o for o in offers if o.reserved and o.provider == offer.provider
                and o.native_type == offer.native_type and o.region in (None, offer.region)
                and (o.available is None or o.available > 0) and o.has_capacity is not False]
        if held:
            ids = ", ".join(sorted({o.reservation_id or "?" for o in held}))
            return (f"{offer.provider} would place VMs here into reservation {ids} by itself and cannot be told not "
                    f"to; not used with {RESERVED_FLAG} never (use another region, or {RESERVED_FLAG} prefer)")
    return None


def screen_offers(mode: ReservedMode, offers: Sequence[Offer], capabilities: Mapping[str, Capabilities],
                  *, allow_unterminable: bool = False) -> tuple[list[Offer], list[tuple[Offer, str]]]:
    """Split ``offers`` into those a plan in ``mode`` may use and ``(offer, why not)`` for the rest."""
    ok: list[Offer] = []
    refused: list[tuple[Offer, str]] = []
    for o in offers:
        why = offer_refusal(mode, o, offers, capabilities[o.provider], allow_unterminable=allow_unterminable)
        if why is None:
            ok.append(o)
        else:
            refused.append((o, why))
    return ok, refused


def reservation_request(mode: ReservedMode, capabilities: Capabilities, *, offer: Offer | None = None,
                        reservation_ids: Sequence[str] = (), allow_unterminable: bool = False
                        ) -> tuple[ReservationPolicy, tuple[str, ...]]:
    """The ``(reservation_policy, reservation_ids)`` of one create request.

    ``offer`` is the plan's offer the VM goes to (a fleet member), ``reservation_ids`` the reservations the
    user named (`vm create --reservation`). A reserved offer or named ids give STRICT (never on-demand);
    otherwise ``never`` gives FORBID, ``prefer`` AUTO (FORBID where the reservations could not be released
    and no opt-in was given), ``only`` STRICT (the caller supplies the ids; see vmops/single.py).
    """
    ids = tuple(reservation_ids)
    if offer is not None and offer.reserved:
        if offer.reservation_id:
            ids = (offer.reservation_id,)
    if (offer is not None and offer.reserved) or ids:
        if mode is ReservedMode.NEVER:
            raise UsageError(f"reserved capacity ({', '.join(ids) or 'a reservation'}) asked for with "
                             f"{RESERVED_FLAG} never", hint=f"Use {RESERVED_FLAG} only (or prefer)")
        return ReservationPolicy.STRICT, ids
    if mode is ReservedMode.NEVER:
        return ReservationPolicy.FORBID, ()
    if mode is ReservedMode.ONLY:
        return ReservationPolicy.STRICT, ()
    if not capabilities.terminate_reserved and not allow_unterminable:
        return ReservationPolicy.FORBID, ()
    return ReservationPolicy.AUTO, ()
