"""Unit tests: fleet/member naming and the scheduling policies (pure functions over offers)."""

from __future__ import annotations

import math
import random

import pytest

from vmops.fleet.naming import (
    belongs_to,
    generate_fleet_name,
    member_name,
    parse_member_name,
    validate_fleet_name,
)
from vmops.fleet.planner import Skipped, make_plan
from vmops.fleet.policies import POLICIES, CheapestPolicy, PackPolicy, SpreadPolicy, capacity, get_policy
from vmops.model import GpuShape, Offer

H100 = GpuShape("h100", 1)


def offer(provider: str, region: str | None, price: float | None, available: int | None = None,
          has_capacity: bool | None = None, reserved: bool = False, rid: str | None = None) -> Offer:
    return Offer(provider=provider, gpu=H100, native_type=f"{provider}-h100", region=region, price_per_hour=price,
                 price_source="test", available=available, has_capacity=has_capacity, reserved=reserved,
                 reservation_id=rid)


# ---------------------------------------------------------------- naming
@pytest.mark.parametrize("fleet", ["ab", "train", "a-001", "swift-otter-42", "x1-r2-003"])
@pytest.mark.parametrize("seq", [1, 7, 999, 1000, 12345])
def test_member_names_parse_back_to_their_fleet(fleet: str, seq: int) -> None:
    name = member_name(fleet, seq)
    assert name.startswith("vmops-") and fleet in name
    assert parse_member_name(name) == (fleet, seq)
    assert belongs_to(name, fleet)


def test_belongs_to_is_exact_never_a_prefix_match() -> None:
    assert not belongs_to(member_name("a-001", 2), "a")
    assert not belongs_to(member_name("train", 1), "trai")
    assert not belongs_to(member_name("train", 1), "train-x")
    for junk in ("gpu-worker-1", "vmops-", "vmops-a", "vmops-train-01", "vmops-Train-001", "", None, 42,
                 "xvmops-train-001", "vmops-train-001-extra"):
        assert parse_member_name(junk) is None, junk
        assert not belongs_to(junk, "train")


@pytest.mark.parametrize("bad", ["", "a", "A-b", "1abc", "ab_c", "ab--c", "ab-", "-ab", "a" * 41, "ab c", "../x"])
def test_invalid_fleet_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid fleet name"):
        validate_fleet_name(bad)


def test_generated_names_are_valid_readable_and_unused() -> None:
    rng = random.Random(1)
    taken: set[str] = set()
    for _ in range(200):
        n = generate_fleet_name(taken, rng)
        assert validate_fleet_name(n) == n
        assert n not in taken
        assert len(n.split("-")) == 3
        taken.add(n)


# ---------------------------------------------------------------- policies
def test_capacity_semantics() -> None:
    assert capacity(offer("p", "r", 1.0, available=3)) == 3
    assert capacity(offer("p", "r", 1.0, available=0, has_capacity=False)) == 0
    assert capacity(offer("p", "r", 1.0, has_capacity=False)) == 0
    assert capacity(offer("p", "r", 1.0, has_capacity=True)) == math.inf
    assert capacity(offer("p", "r", 1.0)) == math.inf  # unknown is a valid answer


def test_registry_and_lookup() -> None:
    assert set(POLICIES) == {"spread", "cheapest", "pack", "fastest"}
    assert get_policy("SPREAD").name == "spread"
    with pytest.raises(ValueError, match="unknown policy 'slowest'"):
        get_policy("slowest")


def _by_provider(placements) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in placements:
        out[p.offer.provider] = out.get(p.offer.provider, 0) + p.count
    return out


def test_spread_balances_across_providers() -> None:
    offers = [offer("a", "r1", 3.0, available=10), offer("b", "r1", 2.0, has_capacity=True), offer("c", None, 4.0)]
    got = SpreadPolicy().allocate(offers, 7)
    counts = _by_provider(got)
    assert sum(counts.values()) == 7
    assert max(counts.values()) - min(counts.values()) <= 1
    assert set(counts) == {"a", "b", "c"}
    assert counts["b"] == 3  # the cheapest provider takes the odd one


def test_spread_respects_known_counts_and_moves_the_rest_elsewhere() -> None:
    offers = [offer("a", "r1", 3.0, available=1), offer("b", "r1", 3.0, available=10)]
    got = SpreadPolicy().allocate(offers, 5)
    assert _by_provider(got) == {"a": 1, "b": 4}


def test_spread_places_fewer_when_capacity_runs_out() -> None:
    offers = [offer("a", "r1", 3.0, available=1), offer("b", "r1", 3.0, available=2)]
    assert sum(p.count for p in SpreadPolicy().allocate(offers, 9)) == 3


def test_cheapest_uses_paid_reservations_first_then_price_per_gpu_hour() -> None:
    offers = [
        offer("a", "r1", 3.0, available=5),
        offer("b", "r1", 2.0, available=2),
        offer("c", "r1", 9.0, available=1, reserved=True, rid="rsv-1"),
    ]
    got = CheapestPolicy().allocate(offers, 4)
    assert [(p.offer.provider, p.count) for p in got] == [("c", 1), ("b", 2), ("a", 1)]


def test_cheapest_compares_per_gpu_not_per_vm() -> None:
    eight = GpuShape("h100", 8)
    o1 = Offer("a", eight, "a8", "r", 24.0, "t", available=1)  # 3.0 / GPU-hour
    o2 = Offer("b", eight, "b8", "r", 20.0, "t", available=1)  # 2.5 / GPU-hour
    assert [p.offer.provider for p in CheapestPolicy().allocate([o1, o2], 2)] == ["b", "a"]


def test_pack_prefers_one_provider_that_can_supply_everything() -> None:
    offers = [offer("a", "r1", 2.0, available=2), offer("b", "r1", 3.0, available=3), offer("b", "r2", 3.5, available=3),
              offer("c", None, 1.0)]
    got = PackPolicy().allocate(offers, 5)
    assert _by_provider(got) == {"b": 5}


def test_pack_uses_as_few_providers_as_possible_when_none_suffices() -> None:
    offers = [offer("a", "r1", 2.0, available=2), offer("b", "r1", 3.0, available=4), offer("c", "r1", 1.0, available=1)]
    got = PackPolicy().allocate(offers, 6)
    assert _by_provider(got) == {"b": 4, "a": 2}


def test_plan_lists_failover_options_after_the_policy_choice_and_totals_prices() -> None:
    offers = [offer("a", "r1", 3.0, available=2), offer("b", "r1", 2.0, available=5), offer("c", None, None)]
    plan = make_plan(H100, 3, CheapestPolicy(), offers, [Skipped("d", None, "down")])
    assert [(p.offer.provider, p.count) for p in plan.placements] == [("b", 3)]
    assert [o.provider for o in plan.options] == ["b", "a", "c"]
    assert plan.total_per_hour == 6.0
    assert plan.shortfall == 0
    d = plan.to_dict()
    assert d["placements"][0]["subtotal_per_hour"] == 6.0 and d["skipped"][0]["reason"] == "down"
    short = make_plan(H100, 9, CheapestPolicy(), offers[:2])
    assert short.planned == 7 and short.shortfall == 2
