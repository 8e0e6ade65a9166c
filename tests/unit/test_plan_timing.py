"""Unit tests: plans that know time (vmops/fleet/timing.py, the time cap and ``fastest`` in vmops/fleet/policies.py,
the plan's expected times in vmops/fleet/planner.py), on plain offers with made-up paces."""

from __future__ import annotations

import pytest

from vmops.config import load_config
from vmops.fleet.planner import make_plan
from vmops.fleet.policies import POLICIES, CheapestPolicy, FastestPolicy, PackPolicy, SpreadPolicy, cap_by_time
from vmops.fleet.timing import NO_CLOCK, FleetClock, expected_seconds
from vmops.model import GpuShape, Offer
from vmops.providers import get_provider
from vmops.providers.pacing import LaunchPace, PaceLimits

H8 = GpuShape("h100", 8)
LAMBDA_CLOUD = LaunchPace(PaceLimits(request_interval=1.0, launch_interval=12.0, max_per_launch=1), to_running=0.0)


def offer(provider: str, price: float, available: int | None = None, reserved: bool = False) -> Offer:
    return Offer(provider=provider, gpu=H8, native_type=f"{provider}-h100x8", region="r1", price_per_hour=price,
                 price_source="test", available=available, has_capacity=None if available is None else available > 0,
                 reserved=reserved, reservation_id="res-1" if reserved else None)


def shares(plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in plan.placements:
        out[p.offer.provider] = out.get(p.offer.provider, 0) + p.count
    return out


# ---------------------------------------------------------------- the one function
def test_twenty_lambda_launches_at_one_per_twelve_seconds_take_nineteen_gaps_plus_boot() -> None:
    pace = LaunchPace(LAMBDA_CLOUD.limits, to_running=300.0)
    assert expected_seconds(pace, 20) == 19 * 12 + 300
    assert expected_seconds(pace, 1) == 300  # the first launch goes at once
    assert expected_seconds(pace, 0) == 0


def test_pacing_counts_launches_and_the_longer_interval() -> None:
    batch = LaunchPace(PaceLimits(request_interval=1.0, launch_interval=12.0, max_per_launch=4), to_running=5.0)
    assert expected_seconds(batch, 20) == 4 * 12 + 5  # 5 launches of 4
    requests_only = LaunchPace(PaceLimits(request_interval=2.0), to_running=0.0)
    assert expected_seconds(requests_only, 3) == 4.0
    # the reference dialect: no pacing, so any count takes the typical create-to-running time
    assert expected_seconds(LaunchPace(to_running=2.5), 100) == 2.5


# ---------------------------------------------------------------- the time cap (spread, cheapest)
def test_cheapest_no_longer_queues_a_twenty_vm_lambda_share_while_the_others_have_room() -> None:
    offers = [offer("lambda", 10.0), offer("crusoe", 20.0, 50), offer("nebius", 21.0, 50)]
    paces = {"lambda": LAMBDA_CLOUD, "crusoe": LaunchPace(to_running=60.0), "nebius": LaunchPace(to_running=60.0)}
    blind = make_plan(H8, 20, CheapestPolicy(), offers)  # no paces: everything instant, the old allocation
    assert shares(blind) == {"lambda": 20}
    plan = make_plan(H8, 20, CheapestPolicy(), offers, paces=paces)
    # Lambda keeps what it can launch in the 60 s the others take (launches at 0, 12, ..., 60 s): 6 VMs
    assert shares(plan) == {"lambda": 6, "crusoe": 14}
    assert plan.expected_seconds == 60.0
    assert plan.provider_seconds() == {"lambda": 60.0, "crusoe": 60.0}
    uncapped = FleetClock(paces).seconds("lambda", 20)
    assert uncapped == 228.0 and plan.expected_seconds < uncapped


def test_spread_caps_the_paced_provider_and_gives_the_rest_to_the_others() -> None:
    offers = [offer("lambda", 10.0), offer("crusoe", 10.0, 50), offer("nebius", 10.0, 50)]
    paces = {"lambda": LAMBDA_CLOUD, "crusoe": LaunchPace(to_running=60.0), "nebius": LaunchPace(to_running=60.0)}
    assert shares(make_plan(H8, 30, SpreadPolicy(), offers)) == {"lambda": 10, "crusoe": 10, "nebius": 10}
    plan = make_plan(H8, 30, SpreadPolicy(), offers, paces=paces)
    got = shares(plan)
    assert got["lambda"] == 6 and got["crusoe"] + got["nebius"] == 24 and plan.planned == 30
    assert plan.expected_seconds == 60.0


def test_the_cap_gives_way_when_the_others_cannot_hold_the_rest() -> None:
    offers = [offer("lambda", 10.0), offer("crusoe", 20.0, 2)]
    paces = {"lambda": LAMBDA_CLOUD, "crusoe": LaunchPace(to_running=60.0)}
    plan = make_plan(H8, 20, CheapestPolicy(), offers, paces=paces)
    assert shares(plan) == {"lambda": 18, "crusoe": 2}
    assert plan.expected_seconds == 17 * 12.0


def test_a_slow_booting_provider_keeps_at_least_one_vm() -> None:
    offers = [offer("lambda", 10.0, 5), offer("crusoe", 20.0, 50)]
    paces = {"lambda": LaunchPace(LAMBDA_CLOUD.limits, to_running=300.0), "crusoe": LaunchPace(to_running=2.5)}
    assert shares(make_plan(H8, 4, SpreadPolicy(), offers, paces=paces)) == {"lambda": 1, "crusoe": 3}


def test_a_paced_provider_may_launch_while_the_others_boot() -> None:
    offers = [offer("lambda", 10.0), offer("crusoe", 20.0, 50)]
    paces = {"lambda": LaunchPace(LAMBDA_CLOUD.limits, to_running=300.0), "crusoe": LaunchPace(to_running=180.0)}
    # 16 launches go out in the 180 s Crusoe's VMs take to boot (at 0, 12, ..., 180 s); the boot time itself
    # does not grow with the share, so it moves nothing
    assert shares(make_plan(H8, 20, CheapestPolicy(), offers, paces=paces)) == {"lambda": 16, "crusoe": 4}
    assert shares(make_plan(H8, 20, SpreadPolicy(), offers, paces=paces)) == {"lambda": 10, "crusoe": 10}


def test_without_paces_the_cap_changes_nothing() -> None:
    offers = [offer("a", 3.0, 4), offer("b", 1.0), offer("c", 2.0, 1), offer("a", 5.0, 2, reserved=True)]
    for policy in (SpreadPolicy(), CheapestPolicy()):
        got = policy.allocate(offers, 9)
        assert [(p.offer, p.count) for p in cap_by_time(got, offers, NO_CLOCK)] == [(p.offer, p.count) for p in got]


def test_pack_is_not_capped() -> None:
    offers = [offer("lambda", 10.0, 30), offer("crusoe", 20.0, 50)]
    plan = make_plan(H8, 20, PackPolicy(), offers, paces={"lambda": LAMBDA_CLOUD, "crusoe": LaunchPace()})
    assert shares(plan) == {"lambda": 20} and plan.expected_seconds == 228.0


def test_the_on_demand_step_counts_the_reserved_shares() -> None:
    offers = [offer("lambda", 10.0, 5, reserved=True), offer("lambda", 10.0), offer("crusoe", 20.0, 50)]
    paces = {"lambda": LAMBDA_CLOUD, "crusoe": LaunchPace(to_running=60.0)}
    plan = make_plan(H8, 10, CheapestPolicy(), offers, paces=paces)
    # 5 reserved at Lambda already take 48 s; one more on-demand Lambda VM (60 s) still fits in crusoe's 60 s
    assert [(p.offer.provider, p.offer.reserved, p.count) for p in plan.placements] == [
        ("lambda", True, 5), ("lambda", False, 1), ("crusoe", False, 4)]
    assert plan.expected_seconds == 60.0


# ---------------------------------------------------------------- fastest
def test_fastest_beats_spread_on_time() -> None:
    offers = [offer("lambda", 10.0), offer("crusoe", 30.0, 50), offer("nebius", 5.0, 50)]
    paces = {"lambda": LAMBDA_CLOUD, "crusoe": LaunchPace(to_running=60.0), "nebius": LaunchPace(to_running=200.0)}
    spread = make_plan(H8, 9, SpreadPolicy(), offers, paces=paces)
    fastest = make_plan(H8, 9, FastestPolicy(), offers, paces=paces)
    assert spread.expected_seconds == 200.0  # nebius' boot time, not its share, makes it slow
    assert fastest.expected_seconds == 60.0 < spread.expected_seconds
    assert "nebius" not in shares(fastest) and fastest.planned == 9


def test_fastest_breaks_ties_by_price_and_respects_capacity() -> None:
    offers = [offer("a", 3.0, 2), offer("b", 1.0, 3), offer("c", 2.0, 1)]
    plan = make_plan(H8, 5, FastestPolicy(), offers)  # all instant: every placement ties on time
    assert shares(plan) == {"b": 3, "c": 1, "a": 1}
    assert make_plan(H8, 9, FastestPolicy(), offers).shortfall == 3


def test_fastest_is_registered() -> None:
    assert POLICIES["fastest"].name == "fastest" and POLICIES["fastest"].time_capped is False
    assert POLICIES["spread"].time_capped and POLICIES["cheapest"].time_capped and not POLICIES["pack"].time_capped


# ---------------------------------------------------------------- what the plan shows
def test_the_plan_shows_expected_seconds_per_placement_provider_and_total() -> None:
    offers = [offer("lambda", 10.0, 2), offer("lambda", 12.0, 10), offer("crusoe", 20.0, 50)]
    paces = {"lambda": LaunchPace(LAMBDA_CLOUD.limits, to_running=30.0), "crusoe": LaunchPace(to_running=2.5)}
    plan = make_plan(H8, 4, PackPolicy(), offers, paces=paces)
    d = plan.to_dict()
    assert [(r["provider"], r["count"], r["expected_seconds"]) for r in d["placements"]] == [
        ("lambda", 2, 42.0), ("lambda", 2, 66.0)]
    assert d["expected_seconds_by_provider"] == {"lambda": 66.0}
    assert d["expected_seconds"] == 66.0
    empty = make_plan(H8, 4, SpreadPolicy(), [], paces=paces)
    assert empty.expected_seconds == 0.0 and empty.to_dict()["expected_seconds_by_provider"] == {}


# ---------------------------------------------------------------- the adapters' paces (data, per dialect)
@pytest.mark.parametrize("dialect, launch, to_running", [("reference", 0.0, 0.0), ("cloud", 12.0, 300.0)])
def test_the_lambda_adapter_gives_its_dialects_pace(dialect: str, launch: float, to_running: float,
                                                     tmp_path) -> None:
    env = {"VMOPS_HOME": str(tmp_path), "VMOPS_LAMBDA_URL": "http://127.0.0.1:9",
           "VMOPS_LAMBDA_DIALECT": dialect, "VMOPS_LAMBDA_API_KEY": "k", "VMOPS_PROVIDERS": "lambda"}
    pace = get_provider("lambda", load_config(env)).launch_pace()
    assert pace.limits.launch_interval == launch and pace.to_running == to_running
    if dialect == "cloud":
        assert pace.limits.max_per_launch == 1 and pace.limits.request_interval == 1.0
        env["VMOPS_LAMBDA_LAUNCH_INTERVAL"] = "0.5"  # the simulators' override is honoured too
        assert get_provider("lambda", load_config(env)).launch_pace().limits.launch_interval == 0.5
