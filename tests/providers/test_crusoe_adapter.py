"""CrusoeProvider against the Crusoe simulator on loopback (no mocks)."""

from __future__ import annotations

import socket
import time
from datetime import timezone
from typing import Iterator

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
from vmops.providers.crusoe import STATE, CrusoeProvider, map_error
from vmops.sim.common import Fault, SimOptions
from vmops.sim.crusoe import CrusoeSim

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


def test_reads_retry_5xx_and_429(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    crusoe_sim.faults.add(Fault("list_instances", "error", status=503, nth=(1, 2)))
    assert names(crusoe) == ["gpu-worker-1"]
    assert crusoe_sim.requests.count("list_instances") == 3
    crusoe_sim.faults.add(Fault("get_capacity", "error", status=429, retry_after=0.2, times=1))
    t = time.monotonic()
    assert crusoe.offers(GpuShape("h100", 1))
    assert crusoe_sim.requests.count("get_capacity") == 2 and time.monotonic() - t >= 0.9  # Retry-After: 1
    crusoe_sim.faults.add(Fault("get_instance", "error", status=503))
    with pytest.raises(ProviderUnavailable):
        crusoe.get_instance("whatever")
    assert crusoe_sim.requests.count("get_instance") == TIMING.retry_attempts


def test_create_retried_after_5xx_without_duplicates(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    crusoe_sim.faults.add(Fault("create_instance", "error", status=503, nth=(1,)))
    crusoe_sim.faults.add(Fault("create_instance", "error", status=429, retry_after=0, nth=(2,)))
    vm = crusoe.create(CreateRequest("retry", "h100.1x", region="us-west1"))
    assert vm.state is State.RUNNING
    assert names(crusoe).count("retry") == 1
    assert crusoe_sim.requests.count("create_instance") == 3


def test_lost_create_response_adopts_the_vm(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    crusoe_sim.faults.add(Fault("create_instance", "lose_response", times=1))
    vm = crusoe.create(CreateRequest("lost", "h100.1x", region="us-west1"))
    assert vm.name == "lost" and vm.state is State.RUNNING
    assert [i.id for i in crusoe.find_by_name("lost")] == [vm.id]
    assert crusoe_sim.requests.count("create_instance") == 1


def test_lost_create_with_existing_namesake_is_not_confused(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    old = crusoe.create(CreateRequest("dup", "h100.1x", region="us-west1"))
    crusoe_sim.faults.add(Fault("create_instance", "lose_response", times=1))
    new = crusoe.create(CreateRequest("dup", "h100.1x", region="us-east1"))
    assert new.id != old.id and new.region == "us-east1"
    assert len(crusoe.find_by_name("dup")) == 2


def test_lost_stop_and_delete_responses_settle(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    vm = crusoe.create(CreateRequest("ls", "h100.1x", region="us-west1"))
    crusoe_sim.faults.add(Fault("patch_instance", "lose_response", times=1))
    assert crusoe.stop(vm.id).state is State.STOPPED
    assert crusoe_sim.requests.count("patch_instance") == 1
    crusoe_sim.faults.add(Fault("delete_instance", "lose_response", times=1))
    assert crusoe.destroy(vm.id).state is State.DELETED
    assert crusoe_sim.requests.count("delete_instance") == 1 and "ls" not in names(crusoe)


def test_mutation_retried_after_503(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    vm = crusoe.create(CreateRequest("m", "h100.1x", region="us-west1"))
    crusoe_sim.faults.add(Fault("reboot_instance", "error", status=503, nth=(1,)))
    assert crusoe.reboot(vm.id).state is State.RUNNING
    assert crusoe_sim.requests.count("reboot_instance") == 2


def test_operation_timeout_names_instance_and_state(crusoe_sim: CrusoeSim) -> None:
    p = provider(crusoe_sim.address, timing=Timing(poll_interval=0.02, op_timeout=0.6, retry_base_delay=0.01))
    crusoe_sim.faults.add(Fault("create_instance", "never_complete", times=1))
    with pytest.raises(OperationTimeout) as e:
        p.create(CreateRequest("stuck", "h100.1x", region="us-west1"))
    [vm] = p.find_by_name("stuck")
    assert e.value.instance_id == vm.id and e.value.stuck_state == "creating" and vm.id in str(e.value)
    crusoe_sim.faults.add(Fault("delete_instance", "never_complete", times=1))
    with pytest.raises(OperationTimeout) as e2:
        p.destroy(vm.id)
    assert e2.value.stuck_state == "deleting"


def test_failed_create_operation_raises_capacity_and_leaves_nothing(crusoe_sim: CrusoeSim,
                                                                    crusoe: CrusoeProvider) -> None:
    crusoe_sim.faults.add(Fault("create_instance", "fail_after_accept", times=1))
    with pytest.raises(InsufficientCapacity) as e:
        crusoe.create(CreateRequest("oos", "h100.8x", region="us-west1"))
    assert "Out of stock" in str(e.value)
    assert crusoe.find_by_name("oos") == []
    assert {r.id: r.available_vms for r in crusoe.reservations()}["rsv-002"] == 4


def test_prices_cached_per_adapter(crusoe_sim: CrusoeSim, crusoe: CrusoeProvider) -> None:
    crusoe.create(CreateRequest("c1", "h100.1x", region="us-west1"))
    for _ in range(3):
        crusoe.list_instances()
    assert crusoe_sim.requests.count("list_vm_types") == 1
