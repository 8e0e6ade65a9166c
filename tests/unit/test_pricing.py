"""The one price rule (vmops/pricing.py) on plain Offer/Instance values, and the policies and plan that use
it: reserved capacity is prepaid ($0 marginal, commitment apart), and `cheapest` minimises the plan's total."""

from __future__ import annotations

import itertools

import pytest

from vmops.catalogue import PROVIDERS
from vmops.fleet.planner import make_plan
from vmops.fleet.policies import POLICIES, CheapestPolicy, SpreadPolicy
from vmops.model import GpuShape, Instance, Offer, Reservation, State
from vmops.pricing import (
    PriceOrigin,
    instance_price,
    member_price,
    offer_price,
    priced_instance,
    priced_offer,
    reservation_index,
    total,
)

H8 = GpuShape("h100", 8)
CRUSOE_H8 = "h100.8x"
NEBIUS_H8 = "gpu-h100-sxm/8gpu-160vcpu-1600gb"


def od(provider: str, region: str | None, price: float | None, available: int | None = None,
       native: str | None = None, source: str = "test api price") -> Offer:
    return Offer(provider, H8, native or f"{provider}-h8", region, price, source, available=available,
                 has_capacity=None if available is None else available > 0)


def rsv(provider: str, region: str | None, price: float | None, available: int, rid: str,
        native: str | None = None) -> Offer:
    return Offer(provider, H8, native or f"{provider}-h8", region, price, "test reservation price",
                 available=available, has_capacity=available > 0, reserved=True, reservation_id=rid)


def vm(provider: str, native: str, *, reserved: bool = False, rid: str | None = None, price: float | None = None,
       source: str | None = None) -> Instance:
    return Instance(provider, f"id-{provider}-{rid}", "n", State.RUNNING, "RUNNING", native, H8, reserved=reserved,
                    reservation_id=rid, price_per_hour=price, price_source=source)


# ---- offers ---------------------------------------------------------------------------------------------
def test_on_demand_offer_costs_the_api_price_and_says_so() -> None:
    p = offer_price(od("crusoe", "us-east1", 27.68, 1, CRUSOE_H8, "crusoe vm-types API price_per_hour_usd"))
    assert (p.per_hour, p.list_per_hour, p.origin, p.prepaid) == (27.68, 27.68, PriceOrigin.PROVIDER, False)
    assert p.source == "crusoe vm-types API price_per_hour_usd" and p.commitment_per_hour is None


def test_on_demand_offer_without_an_api_price_falls_back_to_the_catalogue_then_unknown() -> None:
    p = offer_price(od("nebius", None, None, native=NEBIUS_H8))
    listed = PROVIDERS["nebius"].type_named(NEBIUS_H8)
    assert p.per_hour == listed.list_price_per_hour and p.origin is PriceOrigin.CATALOGUE
    assert p.source == listed.price_source
    unknown = offer_price(od("nowhere", None, None))
    assert unknown.per_hour is None and unknown.origin is PriceOrigin.UNKNOWN and unknown.label() == "unknown"


def test_cloud_dialect_catalogue_prices_are_catalogue_prices() -> None:
    """Crusoe's public API has no prices: its types' prices come from the catalogue and say so, whether the
    adapter copied the catalogue's figure onto the offer or left it out."""
    listed = PROVIDERS["crusoe"].type_named("h100-80gb-sxm-ib.8x")
    assert listed is not None
    for given in (listed.list_price_per_hour, None):
        p = offer_price(od("crusoe", None, given, native=listed.name, source=listed.price_source))
        assert p.per_hour == listed.list_price_per_hour and p.origin is PriceOrigin.CATALOGUE, given


@pytest.mark.parametrize("commitment", [176.0, None])
def test_reserved_offer_is_prepaid_with_its_commitment_apart(commitment: float | None) -> None:
    p = offer_price(rsv("crusoe", "us-west1", commitment, 4, "rsv-002", CRUSOE_H8))
    assert p.per_hour == 0.0 and p.prepaid and p.origin is PriceOrigin.RESERVATION and p.billing == "reserved"
    assert p.commitment_per_hour == commitment
    assert p.list_per_hour == PROVIDERS["crusoe"].type_named(CRUSOE_H8).list_price_per_hour
    assert "rsv-002" in p.source and p.reservation_id == "rsv-002"
    assert p.label() == ("prepaid" if commitment is None else "prepaid (commitment $176.00)")
    assert p.to_dict()["price_per_hour"] == 0.0 and p.to_dict()["prepaid"] is True


# ---- instances ------------------------------------------------------------------------------------------
def test_reserved_vm_is_prepaid_whatever_price_its_adapter_reported() -> None:
    # Crusoe reports the reservation's price, Lambda the type's, Nebius the catalogue's: all prepaid.
    for provider, native, price in (("crusoe", CRUSOE_H8, 176.0), ("lambda", "gpu_8x_h100", 27.68),
                                    ("nebius", NEBIUS_H8, 23.6)):
        p = instance_price(vm(provider, native, reserved=True, rid="r1", price=price, source="x"))
        assert p.per_hour == 0.0 and p.prepaid and p.origin is PriceOrigin.RESERVATION
        assert p.commitment_per_hour is None  # not guessed from the adapter's figure


def test_reserved_vm_takes_its_commitment_from_its_reservation() -> None:
    r = Reservation("crusoe", "rsv-002", "x", CRUSOE_H8, H8, "us-west1", True, 4, 1, price_per_hour=176.0)
    index = reservation_index([r])
    p = instance_price(vm("crusoe", CRUSOE_H8, reserved=True, rid="rsv-002", price=176.0), index)
    assert p.per_hour == 0.0 and p.commitment_per_hour == 176.0
    other = instance_price(vm("crusoe", CRUSOE_H8, reserved=True, rid="rsv-009", price=176.0), index)
    assert other.commitment_per_hour is None


def test_a_smaller_vm_in_a_reservation_of_gpus_commits_its_gpus_share() -> None:
    # Crusoe's cloud reservations hold GPUs of a product line; the price per VM is for the line's 8-GPU product
    line = "h100-80gb-sxm-ib.8x"
    r = Reservation("crusoe", "org-rsv", "RIPA h100", line, H8, "us-east1-a", True, 2, 0, price_per_hour=20.0)
    one = Instance("crusoe", "i1", "n", State.RUNNING, "RUNNING", "h100-80gb-sxm.1x", GpuShape("h100", 1),
                   reserved=True, reservation_id="org-rsv")
    assert instance_price(one, reservation_index([r])).commitment_per_hour == 2.5
    eight = vm("crusoe", line, reserved=True, rid="org-rsv")
    assert instance_price(eight, reservation_index([r])).commitment_per_hour == 20.0


def test_cloud_dialect_names_have_the_catalogues_list_price() -> None:
    # the cloud Crusoe API has no prices: its adapter reports the catalogue's, which is a catalogue origin
    listed = PROVIDERS["crusoe"].type_named("h100-80gb-sxm-ib.8x")
    p = instance_price(vm("crusoe", listed.name, price=listed.list_price_per_hour, source=listed.price_source))
    assert (p.per_hour, p.origin) == (listed.list_price_per_hour, PriceOrigin.CATALOGUE)
    reserved = instance_price(vm("crusoe", listed.name, reserved=True, rid="org-rsv"))
    assert reserved.list_per_hour == listed.list_price_per_hour  # on-demand price for comparison


def test_a_member_that_left_its_reservation_is_priced_on_demand() -> None:
    before = member_price(vm("crusoe", CRUSOE_H8, reserved=True, rid="rsv-002", price=176.0))
    after = member_price(vm("crusoe", CRUSOE_H8, price=27.68, source="crusoe vm-types API price_per_hour_usd"))
    assert (before.per_hour, after.per_hour) == (0.0, 27.68)
    assert after.origin is PriceOrigin.PROVIDER and not after.prepaid


def test_total_adds_marginal_prices_and_counts_prepaid_and_unpriced_apart() -> None:
    prices = [(offer_price(od("a", "r", 10.0, 5)), 2), (offer_price(rsv("b", "r", 99.0, 3, "x")), 3),
              (offer_price(od("nowhere", None, None)), 4)]
    assert total(prices) == (20.0, 3, 4)


def test_rows_for_the_command_line_carry_the_rules_price() -> None:
    row = priced_offer(rsv("crusoe", "us-west1", 176.0, 4, "rsv-002", CRUSOE_H8))
    assert (row["price_per_hour"], row["prepaid"], row["commitment_per_hour"], row["billing"]) == \
        (0.0, True, 176.0, "reserved")
    assert row["reservation_id"] == "rsv-002" and row["price_per_gpu_hour"] == 0.0
    od_row = priced_offer(od("lambda", "us-east-1", 27.68))
    assert od_row["price_per_gpu_hour"] == 3.46 and od_row["billing"] == "on-demand"
    vm_row = priced_instance(vm("crusoe", CRUSOE_H8, reserved=True, rid="rsv-002", price=176.0))
    assert vm_row["price_per_hour"] == 0.0 and vm_row["price_origin"] == "reservation" and vm_row["name"] == "n"


# ---- the plan and the policies use the same figure ------------------------------------------------------
def test_plan_calls_reserved_capacity_prepaid_and_never_adds_its_commitment() -> None:
    # The reported demo: Crusoe's reservation ($176/VM-hour commitment) was ranked "free" and then summed.
    offers = [od("lambda", "us-east-1", 27.68), rsv("crusoe", "us-west1", 176.0, 4, "rsv-002", CRUSOE_H8),
              rsv("nebius", None, None, 2, "rsv-neb-001", NEBIUS_H8)]
    plan = make_plan(H8, 6, SpreadPolicy(), offers)
    assert plan.planned == 6 and plan.prepaid_vms == 6 and plan.unpriced_vms == 0
    assert plan.total_per_hour == 0.0
    assert plan.commitment_per_hour == pytest.approx(176.0 * sum(p.count for p in plan.placements
                                                                  if p.offer.provider == "crusoe"))
    rows = plan.rows()
    assert all(r["prepaid"] and r["price_per_hour"] == 0.0 and "(prepaid)" in r["capacity"] for r in rows)
    d = plan.to_dict()
    assert d["prepaid_vms"] == 6 and d["commitment_per_hour"] == plan.commitment_per_hour
    crusoe = [o for o in d["failover_options"] if o["provider"] == "crusoe"]
    assert crusoe and all(o["price_per_hour"] == 0.0 and o["commitment_per_hour"] == 176.0 for o in crusoe)


def test_plan_fills_reserved_offers_before_on_demand_for_every_policy() -> None:
    offers = [od("a", "r", 1.0, 10), rsv("b", "r", 50.0, 2, "rb"), od("b", "r", 2.0, 10)]
    for policy in POLICIES.values():
        plan = make_plan(H8, 5, policy, offers)
        assert sum(p.count for p in plan.placements if p.offer.reserved) == 2, policy.name
        assert plan.placements[0].offer.reserved and plan.prepaid_vms == 2, policy.name
    assert make_plan(H8, 5, CheapestPolicy(), offers).total_per_hour == 3.0


def test_plan_total_is_the_sum_of_its_rows() -> None:
    offers = [od("a", "r1", 27.68, 2), od("b", None, None), rsv("c", "r", 176.0, 1, "rc"), od("d", "r", 23.6)]
    for policy in POLICIES.values():
        plan = make_plan(H8, 5, policy, offers)
        subtotals = [r["subtotal_per_hour"] for r in plan.rows() if r["subtotal_per_hour"] is not None]
        assert plan.total_per_hour == pytest.approx(sum(subtotals))
        assert plan.unpriced_vms == sum(r["count"] for r in plan.rows() if r["subtotal_per_hour"] is None)


def _best_total(offers: list[Offer], count: int) -> float:
    """The smallest plan total over every way to place ``count`` VMs on ``offers`` (known counts only)."""
    prices = [offer_price(o).per_hour for o in offers]
    best = float("inf")
    for split in itertools.product(*(range(o.available + 1) for o in offers)):
        if sum(split) == count:
            best = min(best, sum(n * p for n, p in zip(split, prices)))
    return round(best, 4)


@pytest.mark.parametrize("offers", [
    [od("crusoe", "us-east1", 27.68, 1), od("crusoe", "us-west1", 27.68, 2), rsv("crusoe", "us-west1", 176.0, 4, "r2"),
     od("nebius", None, 23.6, 2), rsv("nebius", None, None, 2, "rn")],
    [od("a", "r", 30.0, 3), od("b", "r", 20.0, 1), od("c", "r", 25.0, 2), rsv("d", "r", 500.0, 1, "rd")],
    [od("a", "r", 3.0, 2), od("b", "r", 3.0, 2), od("c", "r", 1.0, 1)],
])
def test_cheapest_minimises_exactly_the_total_the_plan_prints(offers: list[Offer]) -> None:
    on_demand = [o for o in offers if not o.reserved]
    for count in range(1, sum(o.available for o in offers) + 1):
        plan = make_plan(H8, count, CheapestPolicy(), offers)
        assert plan.total_per_hour == _best_total(offers, count), count
        for other in POLICIES.values():
            assert plan.total_per_hour <= make_plan(H8, count, other, offers).total_per_hour + 1e-9
        # the same holds on on-demand offers alone (a fleet in --reserved never)
        if count <= sum(o.available for o in on_demand):
            assert make_plan(H8, count, CheapestPolicy(), on_demand).total_per_hour == _best_total(on_demand, count)
