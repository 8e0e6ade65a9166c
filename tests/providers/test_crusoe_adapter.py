"""CrusoeProvider against the Crusoe simulator on loopback (no mocks)."""

from __future__ import annotations

import socket
import time
from datetime import timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from vmops.config import ProviderSettings, Secret
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    NotFound,
    OperationTimeout,
    PermissionDenied,
    ProviderUnavailable,
    Unsupported,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, ReservationPolicy, State
from vmops.providers.base import Timing
from vmops.providers.crusoe import (API_PRICE_SOURCE, RESERVATION_PRICE_SOURCE, STATE, CrusoeProvider,
                                    map_error)
from vmops.sim.common import Fault, SimOptions
from vmops.sim.crusoe import CrusoeSim
from vmops.providers.base import Provider
from vmops.providers.crusoe_cloud import CrusoeCloudProvider
from tests.conftest import DIALECTS
from tests.providers.dialects import WORLDS, World, make_provider

KEY = "crusoe-test-key-001"
TIMING = Timing(poll_interval=0.02, op_timeout=10, retry_base_delay=0.01)


def provider(url: str, key: str = KEY, project: str = "proj-001", timing: Timing = TIMING) -> CrusoeProvider:
    return CrusoeProvider(ProviderSettings("crusoe", url, Secret(key), scope=project, ssh_key="ops"), timing)


@pytest.fixture
def crusoe(crusoe_sim: CrusoeSim) -> Iterator[CrusoeProvider]:
    p = provider(crusoe_sim.address)
    yield p
    p.close()


def names(p: CrusoeProvider) -> list[str]:
    return [i.name for i in p.list_instances()]


# ---------------------------------------------------------------------------------------------- reads
def test_seed_instance_normalized(crusoe: CrusoeProvider) -> None:
    [vm] = crusoe.list_instances()
    assert (vm.provider, vm.name, vm.state, vm.native_state, vm.native_type) == \
        ("crusoe", "gpu-worker-1", State.RUNNING, "STATE_RUNNING", "a100.8x")
    assert vm.gpu == GpuShape("a100", 8) and vm.region == "us-west1"
    assert (vm.public_ip, vm.private_ip, vm.reserved, vm.reservation_id) == \
        ("203.0.113.10", "10.100.0.10", True, "rsv-001")
    assert (vm.price_per_hour, vm.price_source) == (76.0, "crusoe reservation price")  # 9.5 $/GPU-h x 8
    assert vm.created_at is not None and vm.created_at.tzinfo == timezone.utc and vm.created_at.hour == 10
    assert vm.can_terminate and dict(vm.labels) == {}
    assert crusoe.get_instance(vm.id) == vm
    assert crusoe.find_by_name("gpu-worker-1") == [vm] and crusoe.find_by_name("a,b") == []


def test_every_native_state_maps_and_unknown_is_unknown() -> None:
    natives = list(STATE) + ["STATE_HIBERNATING"]
    sc = {"instances": [{"name": s, "type": "h100.1x", "location": "us-east1", "state": s} for s in natives]}
    with CrusoeSim(SimOptions(time_scale=0.05, scenario=sc)) as sim:
        got = {i.name: i.state for i in provider(sim.address).list_instances()}
    assert got == {"STATE_CREATING": State.CREATING, "STATE_RUNNING": State.RUNNING,
                   "STATE_STOPPING": State.STOPPING, "STATE_STOPPED": State.STOPPED,
                   "STATE_STARTING": State.STARTING, "STATE_DELETING": State.DELETING,
                   "STATE_HIBERNATING": State.UNKNOWN}


def test_reservations_in_vm_units(crusoe: CrusoeProvider) -> None:
    rs = {r.id: r for r in crusoe.reservations()}
    assert (rs["rsv-001"].total_vms, rs["rsv-001"].used_vms, rs["rsv-001"].available_vms) == (2, 1, 1)
    assert (rs["rsv-002"].total_vms, rs["rsv-002"].available_vms, rs["rsv-002"].price_per_hour) == (4, 4, 176.0)
    assert rs["rsv-003"].active is False and rs["rsv-003"].available_vms == 0
    assert rs["rsv-002"].gpu == GpuShape("h100", 8) and rs["rsv-002"].region == "us-west1"


def test_offers_exact_counts_and_prices(crusoe: CrusoeProvider) -> None:
    offers = crusoe.offers(GpuShape("h100", 8))
    od = {o.region: o for o in offers if not o.reserved}
    assert {r: (o.available, o.has_capacity) for r, o in od.items()} == \
        {"us-east1": (1, True), "us-west1": (2, True), "eu-west1": (0, False)}
    assert od["us-east1"].price_per_hour == 27.68 and "API" in od["us-east1"].price_source
    [rsv] = [o for o in offers if o.reserved]
    assert (rsv.reservation_id, rsv.region, rsv.available, rsv.price_per_hour) == ("rsv-002", "us-west1", 4, 176.0)
    assert len(crusoe.offers()) == 12 + 2  # every row plus the two active reservations


# ---------------------------------------------------------------------------------------------- mutations
def test_create_auto_without_region_prefers_reserved_and_settles(crusoe: CrusoeProvider) -> None:
    vm = crusoe.create(CreateRequest("r1", "h100.8x"))
    assert (vm.state, vm.region, vm.reserved, vm.reservation_id) == (State.RUNNING, "us-west1", True, "rsv-002")
    assert (vm.price_per_hour, vm.price_source) == (176.0, "crusoe reservation price")
    od = crusoe.create(CreateRequest("o1", "h100.1x"))
    assert (od.state, od.region, od.reserved, od.price_per_hour) == (State.RUNNING, "us-east1", False, 3.46)
    quick = crusoe.create(CreateRequest("q", "h100.1x", region="eu-west1"), wait=False)
    assert quick.state is State.CREATING and quick.region == "eu-west1"


def test_lifecycle_settled(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    vm = crusoe.create(CreateRequest("life", "h100.1x", region="us-west1"))
    assert crusoe.stop(vm.id).state is State.STOPPED
    assert crusoe.start(vm.id).state is State.RUNNING
    assert crusoe.reboot(vm.id).state is State.RUNNING
    assert crusoe.reset(vm.id).state is State.RUNNING
    again = crusoe.restart(vm.id)
    assert again.state is State.RUNNING and again.public_ip != vm.public_ip
    assert again.public_ip.startswith("203.0.113.2")
    gone = crusoe.destroy(vm.id)
    assert gone.state is State.DELETED and gone.id == vm.id
    assert names(crusoe) == ["gpu-worker-1"]
    assert crusoe_sim.requests.count("reboot_instance") == 1 and crusoe_sim.requests.count("reset_instance") == 1
    with pytest.raises(NotFound):
        crusoe.stop(vm.id)


def test_wait_false_returns_transitional_states(crusoe: CrusoeProvider) -> None:
    vm = crusoe.create(CreateRequest("w", "h100.1x", region="us-west1"))
    assert crusoe.stop(vm.id, wait=False).state is State.STOPPING
    crusoe.settle(vm, "stop")
    assert crusoe.start(vm.id, wait=False).state is State.STARTING
    crusoe.settle(vm, "start")
    assert crusoe.destroy(vm.id, wait=False).state is State.DELETING


def test_reservation_policies(crusoe: CrusoeProvider) -> None:
    strict = crusoe.create(CreateRequest("s1", "a100.8x", reservation_policy=ReservationPolicy.STRICT,
                                         reservation_ids=("rsv-001",)))
    assert (strict.reservation_id, strict.region) == ("rsv-001", "us-west1")
    with pytest.raises(FailedPrecondition) as e:  # rsv-001 is now full; Crusoe never falls back
        crusoe.create(CreateRequest("s2", "a100.8x", reservation_policy=ReservationPolicy.STRICT,
                                    reservation_ids=("rsv-001",)))
    assert "rsv-001" in str(e.value) and "vm reservations" in str(e.value)
    with pytest.raises(InsufficientCapacity):
        crusoe.create(CreateRequest("s3", "a100.8x", reservation_policy=ReservationPolicy.STRICT))
    auto_strict = crusoe.create(CreateRequest("s4", "h100.8x", reservation_policy=ReservationPolicy.STRICT))
    assert auto_strict.reservation_id == "rsv-002"
    with pytest.raises(Unsupported):
        crusoe.create(CreateRequest("f1", "h100.8x", region="us-west1", reservation_policy=ReservationPolicy.FORBID))
    forbid = crusoe.create(CreateRequest("f2", "h100.8x", reservation_policy=ReservationPolicy.FORBID))
    assert (forbid.region, forbid.reserved) == ("us-east1", False)
    with pytest.raises(InsufficientCapacity):  # us-east1 is used up, us-west1 still has reserved slots
        crusoe.create(CreateRequest("f3", "h100.8x", reservation_policy=ReservationPolicy.FORBID))
    assert "f1" not in names(crusoe) and "f3" not in names(crusoe)


# ---------------------------------------------------------------------------------------------- errors
def test_error_classes(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    with pytest.raises(AuthError):
        provider(crusoe_sim.address, key="crusoe-wrong-key-123").list_instances()
    with pytest.raises(PermissionDenied) as e:
        provider(crusoe_sim.address, project="proj-999").list_instances()
    assert "proj-999" in str(e.value)
    with pytest.raises(NotFound):
        crusoe.get_instance("does-not-exist")
    with pytest.raises(InsufficientCapacity) as cap:
        crusoe.create(CreateRequest("x", "h100.8x", region="eu-west1"))
    assert "No capacity for h100.8x in eu-west1" in str(cap.value)
    with pytest.raises(InvalidArgument):
        crusoe.create(CreateRequest("x", "h100.1x", region="mars-1"))
    before = sum(crusoe_sim.requests.counts().values())
    with pytest.raises(InvalidArgument):
        crusoe.create(CreateRequest("x", "b200.8x"))
    assert sum(crusoe_sim.requests.counts().values()) == before  # rejected before any network call
    seed = crusoe.list_instances()[0]
    with pytest.raises(FailedPrecondition):
        crusoe.start(seed.id)
    vm = crusoe.create(CreateRequest("p", "h100.1x", region="us-east1"), wait=False)
    with pytest.raises(FailedPrecondition):
        crusoe.reboot(vm.id)


def test_map_error_validation_and_framework_404(crusoe_sim: CrusoeSim) -> None:
    with httpx.Client(base_url=crusoe_sim.address) as c:
        r422 = c.post("/v1alpha5/projects/proj-001/compute/vms/instances", json={"name": "x"})
        r404 = c.get("/v1alpha5/projects/proj-001/nothing")
    err = map_error(r422)
    assert isinstance(err, InvalidArgument) and "location" in str(err) and "ssh_key" in str(err)
    assert isinstance(map_error(r404), NotFound)


def test_path_traversal_ids_never_reach_other_endpoints(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    seed = crusoe.list_instances()[0].id
    op = crusoe.create(CreateRequest("t", "h100.1x", region="us-west1"))
    for bad in ("../../reservations", "../rsv-001", "x/../../capacity", f"{seed}/restart", "..",
                f"operations/{op.id}", "%2e%2e%2f%2e%2e%2freservations"):
        with pytest.raises((NotFound, InvalidArgument)):
            crusoe.get_instance(bad)
        with pytest.raises((NotFound, InvalidArgument)):
            crusoe.destroy(bad)
        with pytest.raises((NotFound, InvalidArgument)):
            crusoe.restart(bad)
    with pytest.raises(NotFound):
        crusoe.get_instance("operations")  # shadowed list-operations route: a plain 404
    assert crusoe_sim.requests.count("get_reservation") == 0 and crusoe_sim.requests.count("get_capacity") == 0
    assert crusoe_sim.requests.count("delete_instance") == 0  # destroy looks the id up first: 404
    assert crusoe_sim.requests.count("restart_instance") <= 1  # only the literal-'%' id, answered 404
    assert names(crusoe) == ["gpu-worker-1", "t"]
    time.sleep(0.2)  # a restart of the seed would have changed its state/IP by now
    s = crusoe.get_instance(seed)
    assert (s.state, s.public_ip) == (State.RUNNING, "203.0.113.10")


def test_api_key_never_in_error_text(crusoe_sim: CrusoeSim) -> None:
    secret = "crusoe-super-secret-key-987"
    errors: list[VmopsError] = []
    for p, call in [(provider(crusoe_sim.address, key=secret), lambda p: p.list_instances()),
                    (provider(crusoe_sim.address, key=secret), lambda p: p.create(CreateRequest("k", "h100.1x"))),
                    (provider(f"http://127.0.0.1:{_free_port()}", key=secret), lambda p: p.list_instances())]:
        with pytest.raises(VmopsError) as e:
            call(p)
        errors.append(e.value)
    assert all(secret not in str(e) and secret not in repr(e) for e in errors)
    assert any(isinstance(e, ProviderUnavailable) for e in errors)


# ---------------------------------------------------------------------------------------------- resilience
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_provider_down_is_unavailable() -> None:
    p = provider(f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ProviderUnavailable):
        p.list_instances()
    with pytest.raises(ProviderUnavailable):
        p.create(CreateRequest("down", "h100.1x", region="us-west1"))


# ------------------------------------------------------------------ both dialects (reference and cloud)
@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def any_crusoe(dialect: str, request: pytest.FixtureRequest, public_key_file: str,
               tmp_path: Path) -> Iterator[tuple[Provider, Any, World]]:
    """(adapter, simulator, names) for the reference and the cloud dialect, built through the config."""
    sim = request.getfixturevalue("crusoe_sim" if dialect == "reference" else "crusoe_cloud_sim")
    p = make_provider("crusoe", dialect, sim, public_key_file, tmp_path)
    yield p, sim, WORLDS[("crusoe", dialect)]
    p.close()


def test_dialect_adapter_class(any_crusoe: tuple[Provider, Any, World], dialect: str) -> None:
    p, _, w = any_crusoe
    assert isinstance(p, CrusoeCloudProvider) == (dialect == "cloud")
    [seed] = p.list_instances()
    assert (seed.name, seed.state, seed.gpu) == (w.seed_name, State.RUNNING, GpuShape("a100", 8))
    assert p.get_instance(seed.id) == seed and p.find_by_name(w.seed_name) == [seed]
    offers = p.offers(GpuShape("h100", 8))
    assert offers and all(o.gpu == GpuShape("h100", 8) and o.native_type == w.big for o in offers if not o.reserved)
    assert any(o.has_capacity and (o.available or 0) > 0 for o in offers)


def test_lifecycle_both_dialects(any_crusoe: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_crusoe
    vm = p.create(CreateRequest("life", w.small, region=w.region))
    assert (vm.state, vm.region, vm.native_type) == (State.RUNNING, w.region, w.small) and vm.public_ip
    assert p.stop(vm.id).state is State.STOPPED
    assert p.start(vm.id).state is State.RUNNING
    assert p.reset(vm.id).state is State.RUNNING
    assert p.restart(vm.id).state is State.RUNNING
    quick = p.create(CreateRequest("quick", w.small, region=w.region2), wait=False)
    assert quick.state is State.CREATING
    assert p.destroy(vm.id).state is State.DELETED and p.destroy(quick.id).state is State.DELETED
    assert [i.name for i in p.list_instances()] == [w.seed_name]
    with pytest.raises(NotFound):
        p.stop(vm.id)


def test_unknown_id_and_bad_key(any_crusoe: tuple[Provider, Any, World], dialect: str, public_key_file: str,
                                tmp_path: Path) -> None:
    p, sim, _ = any_crusoe
    with pytest.raises(NotFound):
        p.get_instance("0f0f0f0f-0000-4000-8000-000000000000")
    secret = "c3VwZXItc2VjcmV0LWtleS05ODc" if dialect == "cloud" else "crusoe-super-secret-key-987"
    var = "VMOPS_CRUSOE_SECRET_KEY" if dialect == "cloud" else "VMOPS_CRUSOE_API_KEY"
    bad = make_provider("crusoe", dialect, sim, public_key_file, tmp_path, **{var: secret})
    with pytest.raises(AuthError) as e:
        bad.list_instances()
    assert secret not in str(e.value) and secret not in repr(e.value)


def test_reads_retry_5xx_and_429(any_crusoe: tuple[Provider, Any, World], dialect: str) -> None:
    p, sim, w = any_crusoe
    sim.faults.add(Fault("list_instances", "error", status=503, nth=(1, 2)))
    assert [i.name for i in p.list_instances()] == [w.seed_name]
    assert sim.requests.count("list_instances") == 3
    capacity = "get_capacity" if dialect == "reference" else "list_capacities"
    sim.faults.add(Fault(capacity, "error", status=429, retry_after=0.2, times=1))
    assert p.offers(GpuShape("a100", 1))
    assert sim.requests.count(capacity) == 2
    sim.faults.add(Fault("get_instance", "error", status=503))
    with pytest.raises(ProviderUnavailable):
        p.get_instance("whatever")
    assert sim.requests.count("get_instance") == TIMING.retry_attempts


def test_create_retried_after_5xx_without_duplicates(any_crusoe: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_crusoe
    sim.faults.add(Fault("create_instance", "error", status=503, nth=(1,)))
    sim.faults.add(Fault("create_instance", "error", status=429, retry_after=0, nth=(2,)))
    vm = p.create(CreateRequest("retry", w.small, region=w.region))
    assert vm.state is State.RUNNING
    assert [i.name for i in p.list_instances()].count("retry") == 1
    assert sim.requests.count("create_instance") == 3


def test_lost_create_response_adopts_the_vm(any_crusoe: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_crusoe
    sim.faults.add(Fault("create_instance", "lose_response", times=1))
    vm = p.create(CreateRequest("lost", w.small, region=w.region))
    assert vm.name == "lost" and vm.state is State.RUNNING
    assert [i.id for i in p.find_by_name("lost")] == [vm.id]
    assert sim.requests.count("create_instance") == 1


def test_lost_create_with_existing_namesake_is_not_confused(any_crusoe: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_crusoe
    old = p.create(CreateRequest("dup", w.small, region=w.region))
    sim.faults.add(Fault("create_instance", "lose_response", times=1))
    new = p.create(CreateRequest("dup", w.small, region=w.region2))
    assert new.id != old.id and new.region == w.region2
    assert len(p.find_by_name("dup")) == 2


def test_lost_stop_and_delete_responses_settle(any_crusoe: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_crusoe
    vm = p.create(CreateRequest("ls", w.small, region=w.region))
    sim.faults.add(Fault("patch_instance", "lose_response", times=1))
    assert p.stop(vm.id).state is State.STOPPED
    assert sim.requests.count("patch_instance") == 1
    sim.faults.add(Fault("delete_instance", "lose_response", times=1))
    assert p.destroy(vm.id).state is State.DELETED
    assert sim.requests.count("delete_instance") == 1 and "ls" not in [i.name for i in p.list_instances()]


def test_mutation_retried_after_503(any_crusoe: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_crusoe
    vm = p.create(CreateRequest("m", w.small, region=w.region))
    sim.faults.add(Fault("patch_instance", "error", status=503, nth=(1,)))
    assert p.stop(vm.id).state is State.STOPPED
    assert sim.requests.count("patch_instance") == 2


def test_operation_timeout_names_instance_and_state(dialect: str, request: pytest.FixtureRequest,
                                                    public_key_file: str, tmp_path: Path) -> None:
    sim = request.getfixturevalue("crusoe_sim" if dialect == "reference" else "crusoe_cloud_sim")
    w = WORLDS[("crusoe", dialect)]
    p = make_provider("crusoe", dialect, sim, public_key_file, tmp_path,
                      timing=Timing(poll_interval=0.02, op_timeout=0.6, retry_base_delay=0.01))
    sim.faults.add(Fault("create_instance", "never_complete", times=1))
    with pytest.raises(OperationTimeout) as e:
        p.create(CreateRequest("stuck", w.small, region=w.region))
    [vm] = p.find_by_name("stuck")
    assert e.value.instance_id == vm.id and e.value.stuck_state == "creating" and vm.id in str(e.value)
    sim.faults.add(Fault("delete_instance", "never_complete", times=1))
    with pytest.raises(OperationTimeout) as e2:
        p.destroy(vm.id)
    assert e2.value.stuck_state == "deleting"


def test_failed_create_operation_raises_capacity_and_leaves_nothing(any_crusoe: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_crusoe
    sim.faults.add(Fault("create_instance", "fail_after_accept", times=1))
    before = {o.region: o.available for o in p.offers(GpuShape("a100", 1)) if not o.reserved}
    with pytest.raises(InsufficientCapacity) as e:
        p.create(CreateRequest("oos", w.small, region=w.region))
    assert "out of stock" in str(e.value).lower() or "capacity" in str(e.value).lower()
    assert p.find_by_name("oos") == []
    assert {o.region: o.available for o in p.offers(GpuShape("a100", 1)) if not o.reserved} == before


def test_prices_cached_per_adapter(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    crusoe.create(CreateRequest("c1", "h100.1x", region="us-west1"))
    for _ in range(3):
        crusoe.list_instances()
    assert crusoe_sim.requests.count("list_vm_types") == 1


def _listing_price_reads(vms: int, endpoint: str, scenario_vm: dict[str, Any]) -> tuple[int, list[Any]]:
    """Requests to ``endpoint`` (answering 503 every time) made by one fresh adapter's listing of ``vms`` VMs."""
    sc = {"instances": [{**scenario_vm, "count": vms} if vms > 1 else scenario_vm]}
    with CrusoeSim(SimOptions(scenario=sc, faults=[Fault(endpoint, "error", status=503)])) as sim:
        p = provider(sim.address)
        try:
            got = p.list_instances()
        finally:
            p.close()
        return sim.requests.count(endpoint), got


def test_a_failing_price_table_is_read_once_per_listing_not_once_per_vm() -> None:
    """Crusoe's VM answers carry no price: the adapter reads the vm-types table (on-demand) and the reservations
    (reserved VMs). When that read fails, a listing of 6 VMs used to read it again for every VM, each with its
    retries (~3 s per VM against a 503); it is read once and the catalogue's list price stands in."""
    on_demand = {"name": "od", "type": "h100.1x", "location": "us-east1", "billing_type": "on_demand"}
    one, [vm] = _listing_price_reads(1, "list_vm_types", on_demand)
    many, vms = _listing_price_reads(6, "list_vm_types", on_demand)
    assert one >= 1 and many == one
    assert len(vms) == 6 and {v.price_source for v in vms} == {vm.price_source}
    assert vm.price_source != API_PRICE_SOURCE and vm.price_per_hour is not None
    reserved = {"name": "rs", "type": "h100.1x", "location": "us-east1", "billing_type": "reserved",
                "reservation_id": "rsv-001"}
    one, _ = _listing_price_reads(1, "list_reservations", reserved)
    many, vms = _listing_price_reads(6, "list_reservations", reserved)
    assert one >= 1 and many == one and len(vms) == 6


def test_price_tables_are_read_again_only_after_a_while(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A VM whose type or reservation the tables lack does not make every listing read them again; after
    ``PRICE_REREAD_S`` they are read once more (a reservation made since then gets its price)."""
    crusoe_sim.faults.add(Fault("list_reservations", "error", status=503))
    [vm] = crusoe.list_instances()  # the seeded VM is reserved
    once = crusoe_sim.requests.count("list_reservations")  # one read, with its retries
    for _ in range(3):
        [vm] = crusoe.list_instances()
    assert vm.reserved and once >= 1 and crusoe_sim.requests.count("list_reservations") == once
    crusoe_sim.faults.clear()
    assert vm.price_source != RESERVATION_PRICE_SOURCE
    import vmops.providers.crusoe as crusoe_module

    monkeypatch.setattr(crusoe_module, "PRICE_REREAD_S", 0.0)
    [vm] = crusoe.list_instances()
    assert crusoe_sim.requests.count("list_reservations") == once + 1
    assert vm.price_source == RESERVATION_PRICE_SOURCE


# ------------------------------------------------------------------ cloud dialect only (../shared/cloud-apis.md §1)
def _cloud(sim: Any, public_key: str, home: Path, **env: str) -> CrusoeCloudProvider:
    p = make_provider("crusoe", "cloud", sim, public_key, home, **env)
    assert isinstance(p, CrusoeCloudProvider)
    return p


def test_cloud_pagination_follows_every_page(public_key_file: str, tmp_path: Path) -> None:
    from vmops.sim.crusoe_cloud import CrusoeCloudSim

    sc = {"page_size": 100, "instances": [{"name": "bulk", "type": "a100-80gb.1x", "location": "us-east1-a",
                                           "count": 2500}]}
    with CrusoeCloudSim(SimOptions(time_scale=0.05, scenario=sc)) as sim:
        p = _cloud(sim, public_key_file, tmp_path)
        got = p.list_instances()
        assert len(got) == 2500 and len({i.id for i in got}) == 2500
        assert sim.requests.count("list_instances") == 25
        assert {i.name for i in p.find_by_name("bulk-2499")} == {"bulk-2499"}


def test_cloud_rejects_stale_timestamp_and_bad_signature(crusoe_cloud_sim: Any, public_key_file: str,
                                                         tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from vmops.providers.crusoe_sign import CrusoeSigner
    from tests.conftest import CRUSOE_CLOUD_KEY

    p = _cloud(crusoe_cloud_sim, public_key_file, tmp_path)
    assert p.list_instances()
    path = f"{crusoe_cloud_sim.address}/projects/{p.project()}/compute/vms/instances"
    stale = CrusoeSigner(*CRUSOE_CLOUD_KEY, clock=lambda: datetime.now(timezone.utc) - timedelta(minutes=20))
    wrong = CrusoeSigner(CRUSOE_CLOUD_KEY[0], "AAAAAAAAAAAAAAAAAAAAAA")
    with httpx.Client() as c:
        answers = [c.get(path, auth=stale), c.get(path, auth=wrong), c.get(path)]
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert all(r.json()["code"] == "bad_credential" for r in answers)
    assert "away from server time" in answers[0].json()["message"]
    err = _cloud(crusoe_cloud_sim, public_key_file, tmp_path, VMOPS_CRUSOE_SECRET_KEY="AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(AuthError) as e:
        err.list_instances()
    assert "clock" in (e.value.hint or "")
    missing = _cloud(crusoe_cloud_sim, public_key_file, tmp_path, VMOPS_CRUSOE_ACCESS_KEY_ID="")
    before = sum(crusoe_cloud_sim.requests.counts().values())
    with pytest.raises(AuthError, match="access key id"):
        missing.list_instances()
    assert sum(crusoe_cloud_sim.requests.counts().values()) == before  # refused before anything was sent


def test_cloud_project_discovery(public_key_file: str, tmp_path: Path) -> None:
    from vmops.sim.crusoe_cloud import CrusoeCloudSim

    two = ["11111111-2222-3333-4444-555555555555", "22222222-2222-3333-4444-555555555555"]
    with CrusoeCloudSim(SimOptions(time_scale=0.05, scenario={"projects": two})) as sim:
        with pytest.raises(InvalidArgument) as e:
            _cloud(sim, public_key_file, tmp_path).list_instances()
        assert "2 projects" in str(e.value) and two[1] in (e.value.hint or "")
        p = _cloud(sim, public_key_file, tmp_path, VMOPS_CRUSOE_PROJECT=two[1])
        assert p.list_instances() == []
        with pytest.raises(PermissionDenied):
            _cloud(sim, public_key_file, tmp_path, VMOPS_CRUSOE_PROJECT="33333333-0000-0000-0000-000000000000"
                   ).list_instances()


def test_cloud_unconfirmed_variants(public_key_file: str, tmp_path: Path) -> None:
    """States without STATE_, no id in operation.metadata (found by name), a missing VM answered with 403."""
    from vmops.sim.crusoe_cloud import CrusoeCloudSim

    sc = {"state_prefix": False, "metadata_id": False, "missing_vm_status": 403}
    with CrusoeCloudSim(SimOptions(time_scale=0.05, scenario=sc)) as sim:
        p = _cloud(sim, public_key_file, tmp_path)
        vm = p.create(CreateRequest("variant", "a100-80gb.1x"))
        assert (vm.state, vm.native_state, vm.name) == (State.RUNNING, "RUNNING", "variant")
        assert p.stop(vm.id).native_state == "SHUTOFF"
        assert p.destroy(vm.id).state is State.DELETED
        with pytest.raises(NotFound):
            p.get_instance(vm.id)
        quick = p.create(CreateRequest("quick", "a100-80gb.1x"), wait=False)  # as fleets create
        assert quick.id and quick.name == "quick" and quick.id in {i.id for i in p.find_by_name("quick")}
        sim.faults.add(Fault("create_instance", "fail_after_accept", times=1))
        with pytest.raises(InsufficientCapacity):  # found by name, then its operation FAILED
            p.create(CreateRequest("oos", "a100-80gb.1x"))
        assert sorted(sim.instance_names()) == ["gpu-worker-1", "quick"]


def test_cloud_maps_reference_type_names_and_refuses_unknown(crusoe_cloud_sim: Any, public_key_file: str,
                                                             tmp_path: Path) -> None:
    p = _cloud(crusoe_cloud_sim, public_key_file, tmp_path)
    vm = p.create(CreateRequest("mapped", "a100.8x"), wait=False)  # a reference name, mapped by its shape
    assert vm.native_type == "a100-80gb.8x" and vm.gpu == GpuShape("a100", 8)
    before = crusoe_cloud_sim.requests.count("create_instance")
    with pytest.raises(InvalidArgument, match="not a Crusoe product"):
        p.create(CreateRequest("nope", "b200.8x"))
    with pytest.raises(Unsupported):
        p.reboot(vm.id)
    nokey = _cloud(crusoe_cloud_sim, public_key_file, tmp_path,
                   VMOPS_CRUSOE_SSH_PUBLIC_KEY_FILE=str(tmp_path / "missing.pub"))
    with pytest.raises(InvalidArgument, match="no SSH public key") as e:
        nokey.create(CreateRequest("nokey", "a100-80gb.1x"))
    assert "VMOPS_CRUSOE_SSH_PUBLIC_KEY_FILE" in (e.value.hint or "")
    assert crusoe_cloud_sim.requests.count("create_instance") == before


# ------------------------------------------------------------------ cloud: organization reservations (§1.3, §4 rows 24/25)
ORG_ID = "99999999-8888-7777-6666-555555555555"
OTHER = "22222222-2222-3333-4444-555555555555"
RSV_H100 = "aaaaaaaa-0000-4000-8000-000000000001"


def _reservation_world(project: str) -> dict[str, Any]:
    """Five reservations over two pages (page size 2): two usable by ``project``, three not."""
    return {"page_size": 2, "reservations": [
        {"id": RSV_H100, "product_line": "h100", "quantity": 16, "locations": ["us-east1-a"], "projects": [project],
         "price": 2.5},
        {"id": "rsv-a100-all", "product_line": "a100", "quantity": 3, "used_quantity": 1, "projects": [],
         "locations": ["us-northcentral1-a", "us-east1-a"], "price": 1.25, "contract_start_date": "2026-01-01",
         "contract_end_date": "2099-01-01"},
        {"id": "rsv-other-project", "product_line": "h100", "quantity": 8, "locations": ["us-east1-a"],
         "projects": [OTHER], "price": 1.0},
        {"id": "rsv-expired", "product_line": "h100", "quantity": 8, "locations": ["us-east1-a"],
         "projects": [project], "price": 0.5, "contract_start_date": "2024-01-01T00:00:00Z",
         "contract_end_date": "2025-01-01T00:00:00Z"},
        {"id": "rsv-l40s", "product_line": "l40s", "quantity": 2, "locations": ["us-east1-a"], "projects": [project],
         "price": None},
    ]}


def test_cloud_reservations_are_the_organizations_for_this_project(public_key_file: str, tmp_path: Path) -> None:
    from vmops.sim.crusoe_cloud import TEST_PROJECT, CrusoeCloudSim

    with CrusoeCloudSim(SimOptions(time_scale=0.05, scenario=_reservation_world(TEST_PROJECT))) as sim:
        p = _cloud(sim, public_key_file, tmp_path)
        rs = {r.id: r for r in p.reservations()}
        assert sorted(rs) == sorted([RSV_H100, "rsv-a100-all", "rsv-expired", "rsv-l40s"])  # not the other project's
        assert sim.requests.count("list_reservations") == 3  # every page followed
        h = rs[RSV_H100]  # 16 GPUs of the h100 line = two 8 x H100 VMs, priced per GPU-hour x 8
        assert (h.native_type, h.gpu, h.region, h.active, h.total_vms, h.used_vms, h.price_per_hour) == \
            ("h100-80gb-sxm-ib.8x", GpuShape("h100", 8), "us-east1-a", True, 2, 0, 20.0)
        a = rs["rsv-a100-all"]  # dates alone parse; 3 GPUs with 1 used = 0 free 8x VMs
        assert (a.native_type, a.active, a.total_vms, a.used_vms, a.region) == \
            ("a100-80gb.8x", True, 0, 0, "us-northcentral1-a")
        assert not rs["rsv-expired"].active and rs["rsv-expired"].available_vms == 0
        assert (rs["rsv-l40s"].native_type, rs["rsv-l40s"].total_vms, rs["rsv-l40s"].price_per_hour) == \
            ("l40s-48gb.1x", 2, None)
        reserved = {o.reservation_id: o for o in p.offers() if o.reserved}
        assert set(reserved) == {RSV_H100, "rsv-a100-all", "rsv-l40s"}  # active ones; expired/other project: not
        assert reserved["rsv-a100-all"].has_capacity is False
        assert (reserved[RSV_H100].available, reserved[RSV_H100].has_capacity) == (2, True)
        assert {o.reservation_id for o in p.offers(GpuShape("h100", 8)) if o.reserved} == {RSV_H100}
        # the organization came from the project listing; a configured one is used as given
        assert p.organization() == ORG_ID
        wrong = _cloud(sim, public_key_file, tmp_path, VMOPS_CRUSOE_ORGANIZATION_ID="12345678-0000-0000-0000-000000000000")
        assert wrong.organization() == "12345678-0000-0000-0000-000000000000"
        with pytest.raises(PermissionDenied):
            wrong.reservations()
        od = wrong.offers(GpuShape("h100", 8))  # on-demand offers survive an organization it may not read
        assert od and not any(o.reserved for o in od)


def test_cloud_reservation_specification_at_create(public_key_file: str, tmp_path: Path) -> None:
    from vmops.sim.crusoe_cloud import TEST_PROJECT, CrusoeCloudSim

    with CrusoeCloudSim(SimOptions(time_scale=0.05, scenario=_reservation_world(TEST_PROJECT))) as sim:
        p = _cloud(sim, public_key_file, tmp_path)
        big, on_demand = "h100-80gb-sxm-ib.8x", sim.capacity_of("us-east1-a", "h100-80gb-sxm-ib.8x")
        named = p.create(CreateRequest("named", big, reservation_policy=ReservationPolicy.STRICT,
                                       reservation_ids=(RSV_H100,)))
        assert (named.reserved, named.reservation_id, named.region) == (True, RSV_H100, "us-east1-a")
        forbid = p.create(CreateRequest("forbid", big, region="us-east1-a",
                                        reservation_policy=ReservationPolicy.FORBID))
        assert (forbid.reserved, forbid.region) == (False, "us-east1-a")  # on_demand: next to a free reservation
        assert sim.capacity_of("us-east1-a", big) == on_demand - 1
        picked = p.create(CreateRequest("picked", big, reservation_policy=ReservationPolicy.STRICT))
        assert picked.reservation_id == RSV_H100  # the only eligible one (the cheaper rsv-expired is over)
        assert sim.reservation_use(RSV_H100) == 16 and sim.capacity_of("us-east1-a", big) == on_demand - 1
        before = sim.requests.count("create_instance")
        with pytest.raises(InsufficientCapacity, match="no reservation"):
            p.create(CreateRequest("full", big, reservation_policy=ReservationPolicy.STRICT))
        assert sim.requests.count("create_instance") == before  # nothing sent
        with pytest.raises(InvalidArgument, match="16 free|0 of 16 free"):  # a named full one: Crusoe says why
            p.create(CreateRequest("full2", big, reservation_policy=ReservationPolicy.STRICT,
                                   reservation_ids=(RSV_H100,)))
        assert [r.used_vms for r in p.reservations() if r.id == RSV_H100] == [2]
        p.destroy(named.id)
        assert sim.reservation_use(RSV_H100) == 8
        auto = p.create(CreateRequest("auto", big, region="us-east1-a"))  # no specification: lowest_cost
        assert auto.reservation_id == RSV_H100
        small = p.create(CreateRequest("small", "l40s-48gb.1x", reservation_policy=ReservationPolicy.STRICT,
                                       reservation_ids=("rsv-l40s",)))
        assert (small.reservation_id, sim.reservation_use("rsv-l40s")) == ("rsv-l40s", 1)
        with pytest.raises(InvalidArgument, match="does not include project"):
            p.create(CreateRequest("theirs", big, reservation_policy=ReservationPolicy.STRICT,
                                   reservation_ids=("rsv-other-project",)))


def test_cloud_sim_checks_reservation_specification_and_organization(crusoe_cloud_sim: Any, public_key_file: str,
                                                                    tmp_path: Path) -> None:
    """The simulator answers like the contract says: the two forms are mutually exclusive, the strategy is one of
    two words, another organization is 403; nothing is created by a refused body."""
    from vmops.providers.crusoe_sign import CrusoeSigner
    from vmops.sim.crusoe_cloud import TEST_PROJECT
    from tests.conftest import CRUSOE_CLOUD_KEY

    base = crusoe_cloud_sim.address
    auth = CrusoeSigner(*CRUSOE_CLOUD_KEY)
    body = {"name": "spec", "type": "h100-80gb-sxm-ib.8x", "location": "us-east1-a",
            "ssh_public_key": "ssh-ed25519 AAAA x"}
    url = f"{base}/projects/{TEST_PROJECT}/compute/vms/instances"
    with httpx.Client(auth=auth) as c:
        both = c.post(url, json={**body, "reservation_specification": {"id": RSV_H100,
                                                                         "selection_strategy": "lowest_cost"}})
        odd = c.post(url, json={**body, "reservation_specification": {"selection_strategy": "cheapest"}})
        other = c.get(f"{base}/organizations/00000000-0000-0000-0000-000000000000/reservations")
        mine = c.get(f"{base}/organizations/{ORG_ID}/reservations")
    assert [r.status_code for r in (both, odd, other, mine)] == [400, 400, 403, 200]
    assert "mutually exclusive" in both.json()["message"]
    (row,) = mine.json()["items"]
    assert {"id", "reservation_type", "product_line", "duration", "quantity", "used_quantity", "locations",
            "projects", "contract_start_date", "contract_end_date", "delivery_deadline", "date_delivered", "vm_ids",
            "price"} <= set(row)
    assert "spec" not in crusoe_cloud_sim.instance_names()
