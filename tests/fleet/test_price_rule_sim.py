"""The one price rule and reservations only when asked, against the three simulators.

* What a plan says a fleet costs per hour is what the made fleet costs (priced by vmops.pricing from the
  providers' own instance lists, and by `vm cost`'s inventory), whenever nothing failed over.
* A default fleet and a plain `vm create` stay off reservations (Crusoe rsv-002, Nebius rsv-neb-001; on the
  cloud dialect Crusoe's organization reservation) while on-demand capacity is free; `prefer`/`only` use them; a
  VM moved off its reservation is priced on-demand.
Everything is checked at the providers (their instance and reservation lists), not in vmops' record. The tests
run on both dialects' simulators, with each one's seed data from ``SEEDS``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from vmops import inventory as inv
from vmops.config import Config
from vmops.errors import InsufficientCapacity, Unsupported, UsageError
from vmops.fleet.planner import Plan, plan_fleet
from vmops.model import CreateRequest, Instance, State
from vmops.pricing import PriceOrigin, member_price
from vmops.providers.base import Timing
from vmops.reserved import ReservedMode, reservation_request
from vmops.session import Session
from vmops.single import create_requests

from tests.conftest import both_dialects
from tests.fleet.conftest import at_providers, spec

FAST = Timing(poll_interval=0.02, op_timeout=30, retry_attempts=2, retry_base_delay=0.01, retry_max_delay=0.05,
              request_timeout=10)


@dataclass(frozen=True)
class Seed:
    """What one dialect's simulators hold at their seed, for these tests."""

    use: dict[str, int]  # used VMs of the reservations a create could land on
    rsv: str  # Crusoe's 8 x H100 reservation
    rsv_region: str  # where it is
    reserved_vms: int  # 8 x H100 VMs `--reserved only` can place (Lambda's reservation needs its opt-in)
    h100_8: str  # Crusoe's 8 x H100 type
    h100_8_price: float  # its on-demand price, and where that comes from
    price_origin: PriceOrigin
    unreserved_type: str  # a Crusoe type no reservation holds
    one_gpu: str  # a 1-GPU shape every provider that has it prices


SEEDS = {
    "reference": Seed({"rsv-002": 0, "rsv-neb-001": 1, "rsv-neb-002": 0, "rsv-lambda-001": 1}, "rsv-002", "us-west1",
                      6, "h100.8x", 27.68, PriceOrigin.PROVIDER, "h100.1x", "h100:1"),
    # vmops.sim.crusoe_cloud: one organization reservation of 16 H100 GPUs; the API has no prices (the catalogue's
    # are used) and its 1 x H100 product is one no catalogue knows (unpriced); Lambda and Nebius: none read
    "cloud": Seed({"aaaaaaaa-0000-4000-8000-000000000001": 0}, "aaaaaaaa-0000-4000-8000-000000000001", "us-east1-a",
                  2, "h100-80gb-sxm-ib.8x", 31.20, PriceOrigin.CATALOGUE, "a100-80gb.1x", "a100:1"),
}


@pytest.fixture
def session(config: Config):
    s = Session(config, timing=FAST)
    yield s
    s.close()


def reservation_use(session: Session, dialect: str) -> dict[str, int]:
    """Used VMs of the reservations a create could land on, as the providers report them."""
    out = session.reservations()
    assert not out.failures, out.failures
    return {r.id: r.used_vms for r in out.flat() if r.id in SEEDS[dialect].use}


def apply_total(config: Config, fleet: str) -> float:
    """The made fleet's hourly price: the price rule over its VMs as the providers list them."""
    vms = at_providers(config, fleet)
    prices = [member_price(v).per_hour for v in vms if v.state is not State.DELETED]
    assert None not in prices
    return round(sum(prices), 4)  # type: ignore[arg-type]


def assert_plan_is_what_apply_costs(plan: Plan, config: Config, session: Session, fleet: str) -> None:
    assert apply_total(config, fleet) == pytest.approx(plan.total_per_hour)
    cost = inv.cost(inv.instances(session), by="fleet").set_index("fleet")  # `vm cost --by fleet`
    assert cost.loc[fleet, "hourly"] == pytest.approx(plan.total_per_hour)
    assert cost.loc[fleet, "prepaid_vms"] == plan.prepaid_vms


# ---- plan == apply ------------------------------------------------------------------------------------
#: case -> dialect -> (gpu, count, policy, spec keywords)
PLAN_CASES = {
    "default": {d: ("h100:8", 3, "spread", {}) for d in SEEDS},  # the reported default fleet
    # the reported "planned at $0.00, runs at $56/hour" fleet
    "h200": {d: ("h200:8", 1, "spread", {}) for d in SEEDS},
    "prepaid": {  # prepaid in the plan, prepaid once made (the cloud simulators' reservation holds H100s)
        "reference": ("h200:8", 2, "cheapest", {"reserved_mode": "prefer"}),
        "cloud": ("h100:8", 2, "cheapest", {"reserved_mode": "prefer"})},
    "pack": {d: ("h100:8", 2, "pack", {}) for d in SEEDS},
    "one-gpu": {d: (SEEDS[d].one_gpu, 3, "spread", {}) for d in SEEDS},
}


@both_dialects
@pytest.mark.parametrize("case", PLAN_CASES)
def test_plan_total_equals_the_made_fleets_total(sims, config, session, make_manager, dialect, case) -> None:
    gpu, count, policy, kw = PLAN_CASES[case][dialect]
    name = f"pa-{gpu.replace(':', '')}-{policy}"
    mgr = make_manager()
    result = mgr.create(spec(gpu, count, name, policy=policy, **kw))
    assert len(result.running) == count
    assert not [a for a in result.attempts if a.outcome == "failed"], result.attempts  # nothing failed over
    assert_plan_is_what_apply_costs(result.plan, config, session, name)
    assert mgr.status(name).price_per_hour == pytest.approx(result.plan.total_per_hour)  # `vm fleet status`
    mgr.destroy(name)
    assert at_providers(config, name) == []


# ---- reservations only when asked: the core functions, applied through the adapters ----------------------
def _apply(session: Session, plan: Plan, mode: ReservedMode, fleet: str) -> list[Instance]:
    """Send one create per planned VM with the request the rule gives (what fleet create's loop sends)."""
    made = []
    seq = 0
    for p in plan.placements:
        adapter = session.provider(p.offer.provider)
        policy, ids = reservation_request(mode, adapter.capabilities, offer=p.offer)
        for _ in range(p.count):
            seq += 1
            req = CreateRequest(name=f"vmops-{fleet}-{seq:03d}", native_type=p.offer.native_type,
                                region=p.offer.region, reservation_policy=policy, reservation_ids=ids)
            made.append(adapter.create(req, wait=True))
    return made


@both_dialects
def test_default_fleet_plan_and_requests_stay_off_reservations(sims, config, session, dialect) -> None:
    seed = SEEDS[dialect]
    s = spec("h100:8", 3, "od3").validated()
    assert s.reserved is ReservedMode.NEVER
    plan = plan_fleet(s, session.provider, session.fan_out, config.enabled)
    assert plan.planned == 3 and plan.prepaid_vms == 0
    assert not any(p.offer.reserved for p in plan.placements)
    said = [sk.reason for sk in plan.skipped if sk.provider == "crusoe" and sk.region == seed.rsv_region]
    assert any(seed.rsv in r for r in said), plan.skipped  # the plan says why plainly
    if dialect == "reference":  # a create there would land on rsv-002; the cloud API can ask for on-demand
        assert not any(p.offer.provider == "crusoe" and p.offer.region == "us-west1" for p in plan.placements)
        assert any("rsv-002 by itself" in r for r in said), plan.skipped
    made = _apply(session, plan, s.reserved, "od3")
    assert Counter(v.provider for v in made) == {"crusoe": 1, "lambda": 1, "nebius": 1}
    assert not any(v.reserved for v in made) and all(v.state is State.RUNNING for v in made)
    assert reservation_use(session, dialect) == seed.use
    assert sum(member_price(v).per_hour for v in made) == pytest.approx(plan.total_per_hour)


@both_dialects
@pytest.mark.parametrize("mode", [ReservedMode.PREFER, ReservedMode.ONLY])
def test_prefer_and_only_plan_reservations_first(sims, config, session, dialect, mode) -> None:
    seed = SEEDS[dialect]
    n = min(3, seed.reserved_vms)
    s = spec("h100:8", n, "rs3", reserved_mode=mode.value).validated()
    plan = plan_fleet(s, session.provider, session.fan_out, config.enabled)
    assert plan.planned == n and plan.prepaid_vms == n and plan.total_per_hour == 0.0
    assert {p.offer.reservation_id for p in plan.placements} <= set(seed.use) - {"rsv-lambda-001"}
    made = _apply(session, plan, mode, "rs3")
    assert all(v.reserved for v in made)
    assert all(member_price(v).per_hour == 0.0 and member_price(v).prepaid for v in made)
    use = reservation_use(session, dialect)
    assert sum(use.values()) == n + sum(seed.use.values())


@both_dialects
def test_only_with_too_few_reservations_plans_no_on_demand(sims, config, session, dialect) -> None:
    plan = plan_fleet(spec("h100:8", 9, "only9", reserved_mode="only").validated(), session.provider, session.fan_out,
                      config.enabled)
    # reference: rsv-002 (4) + rsv-neb-001 (2), Lambda's needs opt-in; cloud: Crusoe's 16 GPUs
    have = SEEDS[dialect].reserved_vms
    assert plan.planned == have and plan.shortfall == 9 - have
    assert all(p.offer.reserved for p in plan.placements)
    assert any("--reserved only" in sk.reason for sk in plan.skipped)


@both_dialects
def test_default_fleet_made_by_the_manager_stays_off_reservations(sims, config, make_manager, dialect) -> None:
    mgr = make_manager()
    result = mgr.create(spec("h100:8", 3, "mgr3"))
    assert len(result.running) == 3
    vms = at_providers(config, "mgr3")
    assert not any(v.reserved for v in vms)
    with Session(config) as s:
        assert reservation_use(s, dialect) == SEEDS[dialect].use
    mgr.destroy("mgr3")


# ---- `vm create` ----------------------------------------------------------------------------------------
@both_dialects
def test_plain_vm_create_at_crusoe_stays_off_its_reservation(sims, session, dialect) -> None:
    seed = SEEDS[dialect]
    crusoe = session.provider("crusoe")
    (req,) = create_requests(crusoe, seed.h100_8, ["plain"])
    vm = crusoe.create(req, wait=True)
    assert not vm.reserved and reservation_use(session, dialect)[seed.rsv] == 0
    assert member_price(vm).per_hour == seed.h100_8_price and member_price(vm).origin is seed.price_origin
    if dialect == "reference":  # the cloud API's create can ask for on-demand where a reservation is free
        assert vm.region == "us-east1"  # Crusoe would have put it on rsv-002 in us-west1
        # Where the only on-demand location also holds a free reservation, it says so instead of using it.
        (west,) = create_requests(crusoe, "h100.8x", ["west"], region="us-west1")
        with pytest.raises(Unsupported, match="cannot be told not to"):
            crusoe.create(west, wait=False)
        assert reservation_use(session, dialect)["rsv-002"] == 0


# reference only: the Nebius cloud dialect reads no reservations (capacity block groups, another service)
def test_plain_vm_create_at_nebius_stays_off_its_reservation(sims, session, dialect) -> None:
    nebius = session.provider("nebius")
    (req,) = create_requests(nebius, "gpu-h100-sxm/8gpu-160vcpu-1600gb", ["plain"])
    vm = nebius.create(req, wait=True)
    assert not vm.reserved
    assert reservation_use(session, dialect)["rsv-neb-001"] == SEEDS[dialect].use["rsv-neb-001"]


@both_dialects
def test_vm_create_prefer_only_and_named_reservations(sims, session, dialect) -> None:
    seed = SEEDS[dialect]
    crusoe = session.provider("crusoe")
    (pref,) = create_requests(crusoe, seed.h100_8, ["pref"], reserved="prefer")
    (only,) = create_requests(crusoe, seed.h100_8, ["only"], reserved=ReservedMode.ONLY)
    (named,) = create_requests(crusoe, seed.h100_8, ["named"], reservation_ids=[seed.rsv])  # implies only
    for req in (pref, only, named):  # one at a time: the cloud simulator's reservation holds two VMs
        vm = crusoe.create(req, wait=True)
        assert vm.reserved and vm.reservation_id == seed.rsv
        assert reservation_use(session, dialect)[seed.rsv] == 1
        crusoe.destroy(vm.id, wait=True)
    assert reservation_use(session, dialect)[seed.rsv] == 0
    with pytest.raises(UsageError, match="--reserved never"):
        create_requests(crusoe, seed.h100_8, ["x"], reserved="never", reservation_ids=[seed.rsv])
    with pytest.raises(InsufficientCapacity, match="no reservation"):
        create_requests(crusoe, seed.unreserved_type, ["none"], reserved="only")


# reference only: Lambda's public API has no reservations (cloud-apis.md §2)
def test_lambda_reservation_needs_the_unterminable_opt_in(sims, session) -> None:
    # Lambda's reservation holds VMs the API cannot terminate: `only` needs the separate opt-in.
    lam = session.provider("lambda")
    with pytest.raises(InsufficientCapacity, match="cannot be terminated"):
        create_requests(lam, "gpu_8x_h100", ["l"], reserved="only")
    (opted,) = create_requests(lam, "gpu_8x_h100", ["l"], reserved="only", allow_unterminable_reserved=True)
    assert opted.reservation_ids == ("rsv-lambda-001",)


# ---- a VM whose billing changes is priced anew -------------------------------------------------------------
# reference only: the reference server re-labels a started VM on-demand when its reservation slot was taken
# (../shared/provider-apis.md §1.5); the public API documents no such rule (cloud-apis.md §1.3)
def test_vm_moved_off_its_reservation_by_stop_start_is_priced_on_demand(sims, session) -> None:
    crusoe = session.provider("crusoe")
    (req,) = create_requests(crusoe, "h100.8x", ["flip"], reserved="only")
    vm = crusoe.create(req, wait=True)
    assert vm.reserved and member_price(vm).per_hour == 0.0 and member_price(vm).prepaid
    crusoe.stop(vm.id, wait=True)  # frees its slot on rsv-002 ...
    for r in create_requests(crusoe, "h100.8x", [f"fill-{i}" for i in range(4)], reserved="only"):
        crusoe.create(r, wait=True)  # ... which four other VMs take
    started = crusoe.start(vm.id, wait=True)  # Crusoe re-labels it on-demand (../shared/provider-apis.md §1.5)
    assert not started.reserved
    now = member_price(crusoe.get_instance(vm.id))
    assert now.per_hour == 27.68 and not now.prepaid and now.origin is PriceOrigin.PROVIDER
