"""Reservations only when asked (vmops/reserved.py) on plain offers and capability flags: which offers each
`--reserved` mode admits, and the reservation policy + ids of each create request."""

from __future__ import annotations

import pytest

from vmops.errors import UsageError
from vmops.fleet.spec import FleetSpec
from vmops.model import GpuShape, Offer, ReservationPolicy
from vmops.providers.base import Capabilities
from vmops.reserved import ReservedMode, reservation_request, screen_offers

H8 = GpuShape("h100", 8)
PLAIN = Capabilities()  # honours FORBID, can terminate reserved VMs (Nebius-like)
AUTO_PLACES = Capabilities(forbid_reserved=False)  # places into reservations by itself (Crusoe-like)
UNTERMINABLE = Capabilities(terminate_reserved=False)  # reserved VMs cannot be destroyed (Lambda-like)


def od(provider: str, region: str | None, available: int | None = 2) -> Offer:
    return Offer(provider, H8, "t8", region, 10.0, "api", available=available)


def rsv(provider: str, region: str | None, available: int, rid: str) -> Offer:
    return Offer(provider, H8, "t8", region, None, "rsv", available=available, has_capacity=available > 0,
                 reserved=True, reservation_id=rid)


def _kept(mode: ReservedMode, offers: list[Offer], caps: Capabilities, allow: bool = False) -> list[str]:
    ok, _ = screen_offers(mode, offers, {o.provider: caps for o in offers}, allow_unterminable=allow)
    return [o.reservation_id or f"od:{o.region}" for o in ok]


def test_default_mode_is_never_and_the_spec_records_it() -> None:
    s = FleetSpec(H8, 3).validated()
    assert s.reserved is ReservedMode.NEVER
    assert s.reserved_mode is None  # not given: never for a new fleet, the recorded mode on resume
    assert FleetSpec(H8, 3, reserved_mode="prefer").validated().reserved is ReservedMode.PREFER
    with pytest.raises(UsageError, match="never, prefer, only"):
        FleetSpec(H8, 3, reserved_mode="sometimes").validated()
    with pytest.raises(UsageError, match="never, prefer or only"):
        ReservedMode.parse("sometimes")


@pytest.mark.parametrize("mode, expected", [
    (ReservedMode.NEVER, ["od:r1"]),
    (ReservedMode.PREFER, ["od:r1", "rsv-1"]),
    (ReservedMode.ONLY, ["rsv-1"]),
])
def test_each_mode_admits_its_offers(mode: ReservedMode, expected: list[str]) -> None:
    assert _kept(mode, [od("p", "r1"), rsv("p", "r1", 2, "rsv-1")], PLAIN) == expected


def test_never_skips_on_demand_where_the_provider_would_place_into_a_reservation_by_itself() -> None:
    offers = [od("c", "us-east1"), od("c", "us-west1"), rsv("c", "us-west1", 4, "rsv-002")]
    ok, refused = screen_offers(ReservedMode.NEVER, offers, {"c": AUTO_PLACES})
    assert [o.region for o in ok] == ["us-east1"]
    why = {(o.region, o.reserved): reason for o, reason in refused}
    assert "rsv-002 by itself" in why[("us-west1", False)] and "--reserved never" in why[("us-west1", False)]
    # a full reservation does not attract placements: its region is fine again
    full = [od("c", "us-west1"), rsv("c", "us-west1", 0, "rsv-002")]
    assert _kept(ReservedMode.NEVER, full, AUTO_PLACES) == ["od:us-west1"]
    # a provider that honours FORBID keeps its on-demand offer next to a free reservation
    assert _kept(ReservedMode.NEVER, offers, PLAIN) == ["od:us-east1", "od:us-west1"]
    # prefer: landing on the reservation is wanted
    assert _kept(ReservedMode.PREFER, offers, AUTO_PLACES) == ["od:us-east1", "od:us-west1", "rsv-002"]


def test_unterminable_reservations_need_their_own_opt_in_in_every_mode() -> None:
    offers = [od("l", "w"), rsv("l", "w", 1, "rsv-l")]
    for mode in (ReservedMode.PREFER, ReservedMode.ONLY):
        ok, refused = screen_offers(mode, offers, {"l": UNTERMINABLE})
        assert "rsv-l" not in [o.reservation_id for o in ok]
        assert any("--allow-unterminable-reserved" in why for _, why in refused)
        assert "rsv-l" in _kept(mode, offers, UNTERMINABLE, allow=True)
    assert "rsv-l" not in _kept(ReservedMode.NEVER, offers, UNTERMINABLE, allow=True)


@pytest.mark.parametrize("mode, caps, offer, ids, allow, expected", [
    (ReservedMode.NEVER, PLAIN, od("p", "r"), (), False, (ReservationPolicy.FORBID, ())),
    (ReservedMode.NEVER, AUTO_PLACES, None, (), False, (ReservationPolicy.FORBID, ())),
    (ReservedMode.PREFER, PLAIN, od("p", "r"), (), False, (ReservationPolicy.AUTO, ())),
    (ReservedMode.PREFER, UNTERMINABLE, od("p", "r"), (), False, (ReservationPolicy.FORBID, ())),
    (ReservedMode.PREFER, UNTERMINABLE, od("p", "r"), (), True, (ReservationPolicy.AUTO, ())),
    (ReservedMode.PREFER, PLAIN, rsv("p", "r", 1, "r1"), (), False, (ReservationPolicy.STRICT, ("r1",))),
    (ReservedMode.ONLY, PLAIN, rsv("p", "r", 1, "r1"), (), False, (ReservationPolicy.STRICT, ("r1",))),
    (ReservedMode.ONLY, PLAIN, None, ("a", "b"), False, (ReservationPolicy.STRICT, ("a", "b"))),
    (ReservedMode.ONLY, PLAIN, None, (), False, (ReservationPolicy.STRICT, ())),
])
def test_request_policy_for_each_mode(mode, caps, offer, ids, allow, expected) -> None:
    assert reservation_request(mode, caps, offer=offer, reservation_ids=ids, allow_unterminable=allow) == expected


def test_never_with_a_named_reservation_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--reserved never"):
        reservation_request(ReservedMode.NEVER, PLAIN, reservation_ids=("r1",))
    with pytest.raises(UsageError):
        reservation_request(ReservedMode.NEVER, PLAIN, offer=rsv("p", "r", 1, "r1"))
