"""The one price rule and reservations only when asked, against the three simulators.

* What a plan says a fleet costs per hour is what the made fleet costs (priced by vmops.pricing from the
  providers' own instance lists, and by `vm cost`'s inventory), whenever nothing failed over.
* A default fleet and a plain `vm create` stay off reservations (Crusoe rsv-002, Nebius rsv-neb-001) while
  on-demand capacity is free; `prefer`/`only` use them; a VM moved off its reservation is priced on-demand.
Everything is checked at the providers (their instance and reservation lists), not in vmops' record.
"""

from __future__ import annotations

from collections import Counter

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

from tests.fleet.conftest import at_providers, spec

FAST = Timing(poll_interval=0.02, op_timeout=30, retry_attempts=2, retry_base_delay=0.01, retry_max_delay=0.05,
              request_timeout=10)
SEEDED_USE = {"rsv-002": 0, "rsv-neb-001": 1, "rsv-neb-002": 0, "rsv-lambda-001": 1}


@pytest.fixture
def session(config: Config):
    s = Session(config, timing=FAST)
    yield s
    s.close()


def reservation_use(session: Session) -> dict[str, int]:
    """Used VMs of the reservations a create could land on, as the providers report them."""
    out = session.reservations()
    assert not out.failures, out.failures
    return {r.id: r.used_vms for r in out.flat() if r.id in SEEDED_USE}


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
@pytest.mark.parametrize("gpu, count, policy, kw", [
    ("h100:8", 3, "spread", {}),  # the reported default fleet
    ("h200:8", 1, "spread", {}),  # the reported "planned at $0.00, runs at $56/hour" fleet
    ("h200:8", 2, "cheapest", {"reserved_mode": "prefer"}),  # prepaid in the plan, prepaid once made
    ("h100:8", 2, "pack", {}),
    ("h100:1", 3, "spread", {}),
])
def test_plan_total_equals_the_made_fleets_total(sims, config, session, make_manager, gpu, count, policy,
                                                 kw) -> None:
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


def test_default_fleet_plan_and_requests_stay_off_reservations(sims, config, session) -> None:
    s = spec("h100:8", 3, "od3").validated()
    assert s.reserved is ReservedMode.NEVER
    plan = plan_fleet(s, session.provider, config.enabled)
    assert plan.planned == 3 and plan.prepaid_vms == 0
    assert not any(p.offer.reserved for p in plan.placements)
    assert not any(p.offer.provider == "crusoe" and p.offer.region == "us-west1" for p in plan.placements)
    said = [sk.reason for sk in plan.skipped if sk.provider == "crusoe" and sk.region == "us-west1"]
    assert any("rsv-002 by itself" in r for r in said), plan.skipped  # the plan says why plainly
    made = _apply(session, plan, s.reserved, "od3")
    assert Counter(v.provider for v in made) == {"crusoe": 1, "lambda": 1, "nebius": 1}
    assert not any(v.reserved for v in made) and all(v.state is State.RUNNING for v in made)
    assert reservation_use(session) == SEEDED_USE
    assert sum(member_price(v).per_hour for v in made) == pytest.approx(plan.total_per_hour)


@pytest.mark.parametrize("mode", [ReservedMode.PREFER, ReservedMode.ONLY])
def test_prefer_and_only_plan_reservations_first(sims, config, session, mode) -> None:
    s = spec("h100:8", 3, "rs3", reserved_mode=mode.value).validated()
    plan = plan_fleet(s, session.provider, config.enabled)
    assert plan.planned == 3 and plan.prepaid_vms == 3 and plan.total_per_hour == 0.0
    assert {p.offer.reservation_id for p in plan.placements} <= {"rsv-002", "rsv-neb-001"}
    made = _apply(session, plan, mode, "rs3")
    assert all(v.reserved for v in made)
    assert all(member_price(v).per_hour == 0.0 and member_price(v).prepaid for v in made)
    use = reservation_use(session)
    assert use["rsv-002"] + use["rsv-neb-001"] == 3 + SEEDED_USE["rsv-neb-001"]


def test_only_with_too_few_reservations_plans_no_on_demand(sims, config, session) -> None:
    plan = plan_fleet(spec("h100:8", 9, "only9", reserved_mode="only").validated(), session.provider,
                      config.enabled)
    assert plan.planned == 6 and plan.shortfall == 3  # rsv-002 (4) + rsv-neb-001 (2); Lambda's needs opt-in
    assert all(p.offer.reserved for p in plan.placements)
    assert any("--reserved only" in sk.reason for sk in plan.skipped)


def test_default_fleet_made_by_the_manager_stays_off_reservations(sims, config, make_manager) -> None:
    mgr = make_manager()
    result = mgr.create(spec("h100:8", 3, "mgr3"))
    assert len(result.running) == 3
    vms = at_providers(config, "mgr3")
    assert not any(v.reserved for v in vms)
    with Session(config) as s:
        assert reservation_use(s) == SEEDED_USE
    mgr.destroy("mgr3")


# ---- `vm create` ----------------------------------------------------------------------------------------
def test_plain_vm_create_at_crusoe_stays_off_its_reservation(sims, session) -> None:
    crusoe = session.provider("crusoe")
    (req,) = create_requests(crusoe, "h100.8x", ["plain"])
    vm = crusoe.create(req, wait=True)
    assert not vm.reserved and vm.region == "us-east1"  # Crusoe would have put it on rsv-002 in us-west1
    assert reservation_use(session)["rsv-002"] == 0
    assert member_price(vm).per_hour == 27.68 and member_price(vm).origin is PriceOrigin.PROVIDER
    # Where the only on-demand location also holds a free reservation, it says so instead of using it.
    (west,) = create_requests(crusoe, "h100.8x", ["west"], region="us-west1")
    with pytest.raises(Unsupported, match="cannot be told not to"):
        crusoe.create(west, wait=False)
    assert reservation_use(session)["rsv-002"] == 0


def test_plain_vm_create_at_nebius_stays_off_its_reservation(sims, session) -> None:
    nebius = session.provider("nebius")
    (req,) = create_requests(nebius, "gpu-h100-sxm/8gpu-160vcpu-1600gb", ["plain"])
    vm = nebius.create(req, wait=True)
    assert not vm.reserved
    assert reservation_use(session)["rsv-neb-001"] == SEEDED_USE["rsv-neb-001"]


def test_vm_create_prefer_only_and_named_reservations(sims, session) -> None:
    crusoe = session.provider("crusoe")
    (pref,) = create_requests(crusoe, "h100.8x", ["pref"], reserved="prefer")
    (only,) = create_requests(crusoe, "h100.8x", ["only"], reserved=ReservedMode.ONLY)
    (named,) = create_requests(crusoe, "h100.8x", ["named"], reservation_ids=["rsv-002"])  # implies only
    made = [crusoe.create(r, wait=True) for r in (pref, only, named)]
    assert all(v.reserved and v.reservation_id == "rsv-002" for v in made)
    assert reservation_use(session)["rsv-002"] == 3
    with pytest.raises(UsageError, match="--reserved never"):
        create_requests(crusoe, "h100.8x", ["x"], reserved="never", reservation_ids=["rsv-002"])
    # Lambda's reservation holds VMs the API cannot terminate: `only` needs the separate opt-in.
    lam = session.provider("lambda")
    with pytest.raises(InsufficientCapacity, match="cannot be terminated"):
        create_requests(lam, "gpu_8x_h100", ["l"], reserved="only")
    (opted,) = create_requests(lam, "gpu_8x_h100", ["l"], reserved="only", allow_unterminable_reserved=True)
    assert opted.reservation_ids == ("rsv-lambda-001",)
    with pytest.raises(InsufficientCapacity, match="no reservation"):
        create_requests(crusoe, "h100.1x", ["none"], reserved="only")


# ---- a VM whose billing changes is priced anew -------------------------------------------------------------
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
