"""NebiusProvider against the Nebius simulator on loopback (real gRPC, time scale 0.05)."""

from __future__ import annotations

import socket
from concurrent import futures
from datetime import datetime, timezone
from typing import Iterator

import grpc
import pytest

from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
from vmops.config import ProviderSettings, Secret
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    NoAnswer,
    NotFound,
    OperationTimeout,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    Unreachable,
    Unsupported,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, ReservationPolicy, State
from vmops.providers.base import Timing
from vmops.providers.nebius import STATE, InstanceFailed, NebiusProvider, map_error
from vmops.sim.common import Fault, SimOptions
from vmops.sim.nebius import NebiusSim

KEY = "nebius-test-key-001"
P1, P2 = "project-e1a2b3c4", "project-f5d6e7f8"
H100_1 = "gpu-h100-sxm/1gpu-16vcpu-200gb"
H100_8 = "gpu-h100-sxm/8gpu-160vcpu-1600gb"
H200_8 = "gpu-h200-sxm/8gpu-160vcpu-2048gb"
TIMING = Timing(poll_interval=0.02, op_timeout=10, retry_base_delay=0.01)


def make(address: str, *, key: str = KEY, scope: str | None = P1, timing: Timing = TIMING, tls: bool = False,
         region: str | None = None) -> NebiusProvider:
    return NebiusProvider(ProviderSettings(name="nebius", url=address, api_key=Secret(key), scope=scope, tls=tls,
                                           region=region), timing)


@pytest.fixture
def neb(nebius_sim: NebiusSim) -> Iterator[NebiusProvider]:
    p = make(nebius_sim.address)
    yield p
    p.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- reads and normalization ------------------------------------------------------------------------
def test_list_normalizes_the_seeded_instance(neb: NebiusProvider) -> None:
    [inst] = neb.list_instances()
    assert inst.provider == "nebius" and inst.name == "train-node-01"
    assert inst.state is State.RUNNING and inst.native_state == "RUNNING"
    assert inst.native_type == H100_8 and inst.gpu == GpuShape("h100", 8)
    assert (inst.public_ip, inst.private_ip) == ("185.0.0.10", "10.0.0.10")
    assert inst.reserved and inst.reservation_id == "rsv-neb-001"
    assert inst.created_at == datetime(2026, 3, 15, 8, 0, tzinfo=timezone.utc)
    assert inst.created_at.tzinfo is not None
    assert dict(inst.labels) == {"team": "ml", "env": "prod"}
    assert inst.price_per_hour == pytest.approx(23.6) and "list price" in (inst.price_source or "")
    assert inst.region is None and inst.can_terminate
    assert neb.get_instance(inst.id) == inst


def test_region_is_the_configured_display_region(nebius_sim: NebiusSim) -> None:
    p = make(nebius_sim.address, region="eu-north1")
    assert {i.region for i in p.list_instances()} == {"eu-north1"}
    assert {o.region for o in p.offers()} == {"eu-north1"}


@pytest.mark.parametrize("state", list(pb.InstanceState.keys()))
def test_every_native_state_maps(state: str) -> None:
    msg = pb.Instance()
    msg.metadata.id = "i"
    msg.status.state = pb.InstanceState.Value(state)
    inst = NebiusProvider.to_instance(make("127.0.0.1:1"), msg)
    assert inst.native_state == state
    assert inst.state is STATE[state]
    expected = {"STATE_UNSPECIFIED": State.UNKNOWN, "CREATING": State.CREATING, "RUNNING": State.RUNNING,
                "STOPPING": State.STOPPING, "STOPPED": State.STOPPED, "STARTING": State.STARTING,
                "DELETING": State.DELETING, "ERROR": State.ERROR}
    assert inst.state is expected[state]


def test_unknown_state_number_and_foreign_type_parse_as_unknown() -> None:
    msg = pb.Instance()
    msg.metadata.id = "i"
    msg.status.state = 42  # type: ignore[assignment]  # a state added by a newer server
    msg.spec.resources.platform, msg.spec.resources.preset = "gpu-b200-sxm", "8gpu"
    inst = make("127.0.0.1:1").to_instance(msg)
    assert inst.state is State.UNKNOWN and inst.native_state == "42"
    assert inst.gpu is None and inst.price_per_hour is None and inst.created_at is None


def test_states_from_the_server(nebius_sim: NebiusSim) -> None:
    states = list(pb.InstanceState.keys())
    scenario = {"instances": [{"name": s.lower(), "state": s} for s in states]}
    sim = NebiusSim(SimOptions(time_scale=0.05, scenario=scenario))
    sim.start(0)
    try:
        p = make(sim.address)
        got = {i.name: (i.state, i.native_state) for i in p.list_instances()}
        assert got == {s.lower(): (STATE[s], s) for s in states}
        p.close()
    finally:
        sim.stop()


def test_get_missing_and_unsafe_ids(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    with pytest.raises(NotFound, match="Instance nope not found"):
        neb.get_instance("nope")
    with pytest.raises(NotFound, match=r"\.\./\.\./reservations"):
        neb.get_instance("../../reservations")
    with pytest.raises(NotFound):
        neb.destroy("../../rsv-neb-001")
    before = sum(nebius_sim.requests.counts().values())
    for bad in ("", "  ", "a\nb"):
        with pytest.raises(InvalidArgument):
            neb.get_instance(bad)
    assert sum(nebius_sim.requests.counts().values()) == before  # rejected before any call
    assert len(neb.reservations()) == 2  # nothing was touched


def test_reservations_and_offers(neb: NebiusProvider) -> None:
    rs = {r.id: r for r in neb.reservations()}
    r1 = rs["rsv-neb-001"]
    assert (r1.native_type, r1.gpu, r1.total_vms, r1.used_vms, r1.available_vms, r1.active) == (
        H100_8, GpuShape("h100", 8), 3, 1, 2, True)
    assert rs["rsv-neb-002"].available_vms == 2 and rs["rsv-neb-002"].name == "h200-8gpu-reserved"
    offers = neb.offers(GpuShape("h100", 8))
    reserved = [o for o in offers if o.reserved]
    on_demand = [o for o in offers if not o.reserved]
    assert [(o.reservation_id, o.available, o.has_capacity) for o in reserved] == [("rsv-neb-001", 2, True)]
    assert [(o.native_type, o.available, o.has_capacity) for o in on_demand] == [(H100_8, None, None)]
    assert on_demand[0].price_per_hour == pytest.approx(23.6) and on_demand[0].price_source.startswith("nebius")
    assert len([o for o in neb.offers() if not o.reserved]) == 4
    assert neb.offers(GpuShape("a100", 8)) == []


# ---- mutations ----------------------------------------------------------------------------------------
def test_create_settles_running_with_one_list_per_tick(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    inst = neb.create(CreateRequest(name="job-1", native_type=H100_1, labels={"fleet": "f1"}))
    assert inst.state is State.RUNNING and inst.public_ip and inst.private_ip == "10.0.0.21"
    assert dict(inst.labels) == {"fleet": "f1"} and not inst.reserved
    assert inst.gpu == GpuShape("h100", 1)
    counts = nebius_sim.requests.counts()
    assert counts["InstanceService/Create"] == 1 and counts.get("InstanceService/Get", 0) == 0
    assert counts["InstanceService/List"] >= 2  # polled by listing


def test_create_without_wait_and_reservation_policies(neb: NebiusProvider) -> None:
    inst = neb.create(CreateRequest(name="r", native_type=H200_8), wait=False)
    assert inst.state is State.CREATING and inst.reservation_id == "rsv-neb-002"
    forbid = neb.create(CreateRequest(name="f", native_type=H100_8, reservation_policy=ReservationPolicy.FORBID))
    assert not forbid.reserved
    strict = neb.create(CreateRequest(name="s", native_type=H100_8, reservation_policy=ReservationPolicy.STRICT,
                                      reservation_ids=("rsv-neb-001",)))
    assert strict.reserved and strict.reservation_id == "rsv-neb-001"
    with pytest.raises(InsufficientCapacity, match="No matching reservation"):
        neb.create(CreateRequest(name="s2", native_type=H100_1, reservation_policy=ReservationPolicy.STRICT,
                                 reservation_ids=("rsv-neb-001",)))
    neb.create(CreateRequest(name="f2", native_type=H200_8, reservation_policy=ReservationPolicy.FORBID), wait=False)
    with pytest.raises(InsufficientCapacity, match="No capacity for gpu-h200-sxm/8gpu-160vcpu-2048gb"):
        neb.create(CreateRequest(name="f3", native_type=H200_8, reservation_policy=ReservationPolicy.FORBID))


def test_create_rejects_unknown_type_and_region_before_calling(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    with pytest.raises(InvalidArgument, match="not a Nebius platform"):
        neb.create(CreateRequest(name="x", native_type="h100.8x"))
    with pytest.raises(InvalidArgument, match="no regions"):
        neb.create(CreateRequest(name="x", native_type=H100_1, region="us-east1"))
    assert nebius_sim.requests.counts() == {}


def test_idempotency_key_is_honoured(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    a = neb.create(CreateRequest(name="idem", native_type=H100_1, idempotency_key="fleet-x-0"), wait=False)
    b = neb.create(CreateRequest(name="idem", native_type=H100_1, idempotency_key="fleet-x-0"), wait=False)
    assert a.id == b.id
    assert [i.id for i in neb.find_by_name("idem")] == [a.id]


def test_stop_start_destroy_settle(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    inst = neb.create(CreateRequest(name="life", native_type=H100_1))
    with pytest.raises(FailedPrecondition, match="Instance not stopped"):
        neb.start(inst.id)
    stopped = neb.stop(inst.id)
    assert stopped.state is State.STOPPED and stopped.public_ip == inst.public_ip
    with pytest.raises(FailedPrecondition, match="Instance not running"):
        neb.stop(inst.id)
    assert neb.start(inst.id).state is State.RUNNING
    assert neb.stop(inst.id, wait=False).state is State.STOPPING
    gone = neb.destroy(inst.id)
    assert gone.state is State.DELETED and gone.id == inst.id
    with pytest.raises(NotFound):
        neb.get_instance(inst.id)
    with pytest.raises(NotFound):
        neb.destroy(inst.id)
    assert neb.destroy_many([inst.id])[0].ok  # already gone counts as success


def test_unsupported_verbs_raise_before_any_call(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    for verb in (neb.reboot, neb.reset, neb.restart):
        with pytest.raises(Unsupported):
            verb("anything")
    assert nebius_sim.requests.counts() == {}
    caps = NebiusProvider.capabilities
    assert caps.stop_start and caps.labels and caps.idempotency_key
    assert not (caps.regions or caps.exact_capacity or caps.capacity_signal or caps.reboot or caps.reset or caps.restart)


# ---- errors -------------------------------------------------------------------------------------------
def test_bad_key_and_wrong_parent(nebius_sim: NebiusSim) -> None:
    secret = "nebius-SECRET-key-999"
    p = make(nebius_sim.address, key=secret)
    errors: list[VmopsError] = []
    for call in (p.list_instances, p.reservations, lambda: p.get_instance("x"),
                 lambda: p.create(CreateRequest(name="x", native_type=H100_1))):
        with pytest.raises(AuthError) as e:
            call()
        errors.append(e.value)
    q = make(nebius_sim.address, scope="project-zzz")
    with pytest.raises(PermissionDenied, match="Parent project-zzz not found") as e2:
        q.list_instances()
    errors.append(e2.value)
    for err in errors:
        assert secret not in str(err) and secret not in repr(err) and KEY not in str(err)
    assert "rejected" in str(errors[0])


def test_provider_down_is_unavailable() -> None:
    p = make(f"127.0.0.1:{free_port()}", timing=Timing(poll_interval=0.02, op_timeout=1, retry_attempts=2,
                                                         retry_base_delay=0.01, request_timeout=3))
    with pytest.raises(ProviderUnavailable) as e:
        p.list_instances()
    assert not isinstance(e.value, OutcomeUnknown) and KEY not in str(e.value)
    with pytest.raises(ProviderUnavailable):
        p.create(CreateRequest(name="x", native_type=H100_1))


def test_tls_against_plaintext_server_is_unavailable(nebius_sim: NebiusSim) -> None:
    p = make(nebius_sim.address, tls=True, timing=Timing(retry_attempts=1, request_timeout=3))
    with pytest.raises(ProviderUnavailable):
        p.list_instances()


def test_unimplemented_is_unsupported() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(Unsupported):
            make(f"127.0.0.1:{port}").list_instances()
    finally:
        server.stop(0)


def test_map_error_table() -> None:
    c = grpc.StatusCode
    cases = {
        (c.UNAUTHENTICATED, "Invalid or missing API key"): AuthError,
        (c.PERMISSION_DENIED, "Parent x not found"): PermissionDenied,
        (c.NOT_FOUND, "Instance x not found"): NotFound,
        (c.INVALID_ARGUMENT, "Unknown platform: x"): InvalidArgument,
        (c.FAILED_PRECONDITION, "Instance not running"): FailedPrecondition,
        (c.FAILED_PRECONDITION, "No matching reservation available for STRICT policy"): InsufficientCapacity,
        (c.RESOURCE_EXHAUSTED, "No capacity for a/b in p"): InsufficientCapacity,
        (c.UNIMPLEMENTED, "Method not found!"): Unsupported,
        (c.INTERNAL, "Exception deserializing request!"): ProviderUnavailable,
        (c.DEADLINE_EXCEEDED, "Deadline Exceeded"): NoAnswer,  # a read with no answer: retried only within the deadline
    }
    for (code, details), cls in cases.items():
        err = map_error(code, details, what="w")
        assert type(err) is cls, (code, details, type(err))
        assert details in str(err) or issubclass(cls, ProviderUnavailable)
    assert isinstance(map_error(c.DEADLINE_EXCEEDED, "Deadline Exceeded", what="w"), ProviderUnavailable)
    lost = map_error(c.DEADLINE_EXCEEDED, "Deadline Exceeded", what="w", mutating=True)
    assert type(lost) is OutcomeUnknown  # a mutation's lost answer stays "may have happened"
    rl = map_error(c.RESOURCE_EXHAUSTED, "rate limit exceeded", what="w", retry_after=1.5)
    assert isinstance(rl, ProviderUnavailable) and rl.retry_after == 1.5  # type: ignore[attr-defined]
    assert isinstance(map_error(c.UNAVAILABLE, "connection reset", what="w", mutating=True), OutcomeUnknown)
    refused = "failed to connect to all addresses; last error: UNKNOWN: Connection refused"
    assert type(map_error(c.UNAVAILABLE, refused, what="w", mutating=True)) is Unreachable  # nothing was sent: not OutcomeUnknown


# ---- retries, lost answers, timeouts --------------------------------------------------------------------
def test_reads_retry_unavailable_internal_and_rate_limit(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/List", kind="error", grpc_code="UNAVAILABLE", nth=(1, 2)))
    assert len(neb.list_instances()) == 1
    assert nebius_sim.requests.count("InstanceService/List") == 3
    nebius_sim.faults.add(Fault(endpoint="ReservationService/List", kind="error", grpc_code="INTERNAL", nth=(1,)))
    assert len(neb.reservations()) == 2
    assert nebius_sim.requests.count("ReservationService/List") == 2
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Get", kind="rate_limit", per_seconds=2))  # 0.1 s scaled
    iid = neb.list_instances()[0].id
    neb.get_instance(iid)
    neb.get_instance(iid)  # rate limited once, waits the retry-after trailer, then served
    assert nebius_sim.requests.count("InstanceService/Get") == 3
    outcomes = [r.outcome for r in nebius_sim.requests.records() if r.endpoint == "InstanceService/Get"]
    assert outcomes == ["ok", "fault:rate_limit", "ok"]


def test_reads_give_up_after_bounded_retries(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/List", kind="error", grpc_code="UNAVAILABLE"))
    with pytest.raises(ProviderUnavailable):
        neb.list_instances()
    assert nebius_sim.requests.count("InstanceService/List") == TIMING.retry_attempts


def test_lost_create_answer_adopts_the_instance(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="lose_response", times=1))
    inst = neb.create(CreateRequest(name="lost-1", native_type=H100_1, labels={"fleet": "L"}))
    assert inst.state is State.RUNNING
    assert [i.id for i in neb.find_by_name("lost-1")] == [inst.id]
    assert nebius_sim.requests.count("InstanceService/Create") == 1  # adopted, not re-sent


def test_create_failing_before_commit_is_retried_once_without_duplicate(neb: NebiusProvider,
                                                                       nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="error", grpc_code="UNAVAILABLE", nth=(1,)))
    inst = neb.create(CreateRequest(name="retry-1", native_type=H100_1))
    assert [i.id for i in neb.find_by_name("retry-1")] == [inst.id]
    assert nebius_sim.requests.count("InstanceService/Create") == 2


def test_create_rate_limited_is_retried(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="error", grpc_code="RESOURCE_EXHAUSTED",
                                message="rate limit exceeded", nth=(1,)))
    inst = neb.create(CreateRequest(name="rl", native_type=H100_1), wait=False)
    assert [i.id for i in neb.find_by_name("rl")] == [inst.id]
    assert nebius_sim.requests.count("InstanceService/Create") == 2


def test_lost_create_answer_does_not_adopt_an_older_namesake(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="error", grpc_code="UNAVAILABLE", nth=(1,)))
    inst = neb.create(CreateRequest(name="train-node-01", native_type=H100_1, labels={"team": "ml"}), wait=False)
    assert inst.native_type == H100_1  # not the seeded train-node-01 (older than this create)
    assert len(neb.find_by_name("train-node-01")) == 2


def test_lost_stop_answer_still_settles(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    inst = neb.create(CreateRequest(name="ls", native_type=H100_1))
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Stop", kind="lose_response", times=1))
    assert neb.stop(inst.id).state is State.STOPPED
    assert nebius_sim.requests.count("InstanceService/Stop") == 2  # retry saw "not running" and checked
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Delete", kind="lose_response", times=1))
    assert neb.destroy(inst.id).state is State.DELETED


def test_never_complete_times_out_naming_instance_and_state(nebius_sim: NebiusSim) -> None:
    p = make(nebius_sim.address, timing=Timing(poll_interval=0.02, op_timeout=0.4, retry_base_delay=0.01))
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="never_complete"))
    with pytest.raises(OperationTimeout) as e:
        p.create(CreateRequest(name="stuck", native_type=H100_1))
    [stuck] = p.find_by_name("stuck")
    assert e.value.instance_id == stuck.id and e.value.stuck_state == "creating"
    assert stuck.id in str(e.value) and "creating" in str(e.value)


def test_fail_after_accept_raises_typed_error_and_leaves_the_instance(neb: NebiusProvider,
                                                                      nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="fail_after_accept"))
    with pytest.raises(InstanceFailed) as e:
        neb.create(CreateRequest(name="bad", native_type=H100_1))
    assert isinstance(e.value, InsufficientCapacity)
    assert e.value.state == "ERROR" and e.value.instance_id in str(e.value) and "still exists" in str(e.value)
    assert neb.get_instance(e.value.instance_id).state is State.ERROR
    assert neb.destroy(e.value.instance_id).state is State.DELETED
