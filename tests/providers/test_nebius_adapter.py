"""The Nebius adapters against their simulators on loopback (real gRPC, time scale 0.05): NebiusProvider (the
reference dialect) and NebiusCloudProvider (Nebius' public API, ../shared/cloud-apis.md section 3). Behaviour both
dialects share is tested once, parametrised by the ``rig`` fixture; the rest is per dialect."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from concurrent import futures
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest

from vmops._gen.cloud.nebius.common.v1 import error_pb2
from vmops._gen.cloud.nebius.compute.v1 import instance_pb2 as cloud_pb
from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
from vmops.config import NebiusCloudSettings, ProviderSettings, Secret
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    MalformedAnswer,
    NoAnswer,
    NotFound,
    OperationTimeout,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    Unreachable,
    Unsupported,
    UsageError,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, ReservationPolicy, State
from vmops.providers.base import Provider, Timing
from vmops.providers.nebius import STATE, InstanceFailed, NebiusProvider, map_error
from vmops.providers import nebius_auth
from vmops.providers.nebius_cloud import NebiusCloudProvider
from vmops.providers.nebius_cloud_errors import NameTaken
from vmops.providers.nebius_cloud_errors import map_error as cloud_map_error
from vmops.providers.retry import RetryAfter
from vmops.sim.common import Fault, SimOptions
from vmops.sim.nebius import NebiusSim
from vmops.sim.nebius_cloud import NebiusCloudSim

KEY = "nebius-test-key-001"
P1, P2 = "project-e1a2b3c4", "project-f5d6e7f8"
CLOUD_PARENT = "project-e00vmopssim01"
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


# ---- errors -------------------------------------------------------------------------------------------
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


def test_fail_after_accept_raises_typed_error_and_leaves_the_instance(neb: NebiusProvider,
                                                                      nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="fail_after_accept"))
    with pytest.raises(InstanceFailed) as e:
        neb.create(CreateRequest(name="bad", native_type=H100_1))
    assert isinstance(e.value, InsufficientCapacity)
    assert e.value.state == "ERROR" and e.value.instance_id in str(e.value) and "still exists" in str(e.value)
    assert neb.get_instance(e.value.instance_id).state is State.ERROR
    assert neb.destroy(e.value.instance_id).state is State.DELETED


# =====================================================================================================
# Both dialects: the reference server's (NebiusProvider) and Nebius' public API (NebiusCloudProvider).
# The same behaviour, one test, parametrised by `rig`; what differs between the dialects is said inline.
# =====================================================================================================
CLOUD_TOKEN = "nebius-iam-token-001"
SSH_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvmopsTestKeyOnlyForTheSimulator vmops@test"


def make_cloud(address: str, *, token: str | None = CLOUD_TOKEN, scope: str | None = CLOUD_PARENT,
               timing: Timing = TIMING, tls: bool | None = False, ca_bundle: str | None = None,
               ssh_key_file: Path | None = None, subnet: str | None = None, credentials_file: Path | None = None,
               token_endpoint: str | None = None, page_size: int = 100,
               clock: Callable[[], float] = time.time) -> NebiusCloudProvider:
    """A cloud-dialect adapter; ``tls=None`` leaves TLS at its default (on)."""
    cloud = NebiusCloudSettings(iam_token=Secret(token or ""), ssh_public_key_file=str(ssh_key_file or ""),
                                subnet=subnet, credentials_file=str(credentials_file) if credentials_file else None,
                                token_endpoint=token_endpoint, page_size=page_size)
    sources = {"tls": "default" if tls is None else "env"}
    return NebiusCloudProvider(ProviderSettings(name="nebius", url=address, api_key=Secret(""), scope=scope,
                                                tls=bool(tls), ca_bundle=ca_bundle, sources=sources,
                                                nebius_cloud=cloud), timing, clock=clock)


@dataclass
class Rig:
    dialect: str
    sim: Any
    provider: Provider
    make: Callable[..., Provider]  # make(credential=..., scope=..., timing=...)
    name: str = "nebius"


@pytest.fixture
def ssh_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519.pub"
    path.write_text(SSH_PUB + "\n")
    return path


@pytest.fixture(params=["reference", "cloud"])
def rig(request: pytest.FixtureRequest, ssh_key_file: Path) -> Iterator[Rig]:
    if request.param == "reference":
        sim = request.getfixturevalue("nebius_sim")

        def mk(credential: str = KEY, scope: str | None = P1, timing: Timing = TIMING) -> Provider:
            return make(sim.address, key=credential, scope=scope, timing=timing)
    else:
        sim = request.getfixturevalue("nebius_cloud_sim")

        def mk(credential: str = CLOUD_TOKEN, scope: str | None = CLOUD_PARENT, timing: Timing = TIMING) -> Provider:
            return make_cloud(sim.address, token=credential, scope=scope, timing=timing, ssh_key_file=ssh_key_file)
    p = mk()
    yield Rig(request.param, sim, p, mk)
    p.close()


def test_create_settles_running(rig: Rig) -> None:
    inst = rig.provider.create(CreateRequest(name="job-1", native_type=H100_1, labels={"fleet": "f1"}))
    assert inst.state is State.RUNNING and inst.public_ip and inst.private_ip
    assert "/" not in inst.private_ip and "/" not in inst.public_ip  # the cloud API's CIDR suffix is stripped
    assert dict(inst.labels) == {"fleet": "f1"} and not inst.reserved
    assert inst.gpu == GpuShape("h100", 1) and inst.native_type == H100_1
    counts = rig.sim.requests.counts()
    assert counts["InstanceService/Create"] == 1 and counts.get("InstanceService/Get", 0) == 0
    assert counts["InstanceService/List"] >= 1  # settled by listing, not by one Get per instance
    if rig.dialect == "reference":
        assert inst.private_ip == "10.0.0.21"


def test_create_rejects_unknown_type_and_region_before_calling(rig: Rig) -> None:
    with pytest.raises(InvalidArgument, match="not a Nebius platform"):
        rig.provider.create(CreateRequest(name="x", native_type="h100.8x"))
    with pytest.raises(InvalidArgument, match="no regions"):
        rig.provider.create(CreateRequest(name="x", native_type=H100_1, region="us-east1"))
    assert rig.sim.requests.counts() == {}


def test_idempotency_key_is_honoured(rig: Rig) -> None:
    a = rig.provider.create(CreateRequest(name="idem", native_type=H100_1, idempotency_key="fleet-x-0"), wait=False)
    b = rig.provider.create(CreateRequest(name="idem", native_type=H100_1, idempotency_key="fleet-x-0"), wait=False)
    assert a.id == b.id
    assert [i.id for i in rig.provider.find_by_name("idem")] == [a.id]


def test_stop_start_destroy_settle(rig: Rig) -> None:
    p = rig.provider
    inst = p.create(CreateRequest(name="life", native_type=H100_1))
    with pytest.raises(FailedPrecondition):
        p.start(inst.id)
    stopped = p.stop(inst.id)
    assert stopped.state is State.STOPPED and stopped.public_ip == inst.public_ip
    with pytest.raises(FailedPrecondition):
        p.stop(inst.id)
    assert p.start(inst.id).state is State.RUNNING
    assert p.stop(inst.id, wait=False).state is State.STOPPING
    gone = p.destroy(inst.id)
    assert gone.state is State.DELETED and gone.id == inst.id
    with pytest.raises(NotFound):
        p.get_instance(inst.id)
    with pytest.raises(NotFound):
        p.destroy(inst.id)
    assert p.destroy_many([inst.id])[0].ok  # already gone counts as success


def test_unsupported_verbs_raise_before_any_call(rig: Rig) -> None:
    for verb in (rig.provider.reboot, rig.provider.reset, rig.provider.restart):
        with pytest.raises(Unsupported):
            verb("anything")
    assert rig.sim.requests.counts() == {}
    caps = type(rig.provider).capabilities
    assert caps.stop_start and caps.labels and caps.idempotency_key and caps.terminate_reserved


def test_bad_credential_and_wrong_parent(rig: Rig) -> None:
    secret = "nebius-SECRET-key-999"
    p = rig.make(credential=secret)
    errors: list[VmopsError] = []
    for call in (p.list_instances, lambda: p.get_instance("x"),
                 lambda: p.create(CreateRequest(name="x", native_type=H100_1))):
        with pytest.raises(AuthError) as e:
            call()
        errors.append(e.value)
    q = rig.make(scope="project-zzz")
    with pytest.raises(PermissionDenied, match="project-zzz") as e2:
        q.list_instances()
    errors.append(e2.value)
    for err in errors:
        assert secret not in str(err) and secret not in repr(err) and KEY not in str(err) and CLOUD_TOKEN not in str(err)
    assert "rejected" in str(errors[0])
    assert not any(r.mutating for r in rig.sim.requests.records())  # nothing was created
    p.close()
    q.close()


def test_offers_ask_the_provider_so_a_plan_skips_one_that_does_not_answer(rig: Rig, ssh_key_file: Path) -> None:
    """A fleet plan skips a provider whose offers cannot be read: offers made without asking would plan creates
    at a Nebius that is down or refuses the credential."""
    rig.sim.requests.reset()
    assert rig.provider.offers(GpuShape("h100", 1))
    assert sum(rig.sim.requests.counts().values()) >= 1
    with pytest.raises(AuthError):
        rig.make(credential="nebius-wrong-credential").offers(GpuShape("h100", 1))
    dead = f"127.0.0.1:{free_port()}"
    p = make(dead) if rig.dialect == "reference" else make_cloud(dead, ssh_key_file=ssh_key_file)
    try:
        with pytest.raises(ProviderUnavailable):
            p.offers(GpuShape("h100", 1))
    finally:
        p.close()


def test_reads_retry_and_give_up_after_bounded_retries(rig: Rig) -> None:
    rig.sim.faults.add(Fault(endpoint="InstanceService/List", kind="error", grpc_code="UNAVAILABLE", nth=(1, 2)))
    rig.provider.list_instances()
    assert rig.sim.requests.count("InstanceService/List") == 3
    rig.sim.faults.add(Fault(endpoint="InstanceService/List", kind="error", grpc_code="UNAVAILABLE"))
    with pytest.raises(ProviderUnavailable):
        rig.provider.list_instances()
    assert rig.sim.requests.count("InstanceService/List") == 3 + TIMING.retry_attempts


def test_lost_create_answer_makes_one_instance(rig: Rig) -> None:
    rig.sim.faults.add(Fault(endpoint="InstanceService/Create", kind="lose_response", times=1))
    inst = rig.provider.create(CreateRequest(name="lost-1", native_type=H100_1, labels={"fleet": "L"}))
    assert inst.state is State.RUNNING
    assert [i.id for i in rig.provider.find_by_name("lost-1")] == [inst.id]
    # reference: adopted by name without resending; cloud: resent with the same key, answered with the original
    assert rig.sim.requests.count("InstanceService/Create") == {"reference": 1, "cloud": 2}[rig.dialect]


def test_create_failing_before_commit_is_retried_once_without_duplicate(rig: Rig) -> None:
    rig.sim.faults.add(Fault(endpoint="InstanceService/Create", kind="error", grpc_code="UNAVAILABLE", nth=(1,)))
    inst = rig.provider.create(CreateRequest(name="retry-1", native_type=H100_1))
    assert [i.id for i in rig.provider.find_by_name("retry-1")] == [inst.id]
    assert rig.sim.requests.count("InstanceService/Create") == 2


def test_never_complete_times_out_naming_the_instance(rig: Rig) -> None:
    p = rig.make(timing=Timing(poll_interval=0.02, op_timeout=1.0, retry_base_delay=0.01))
    rig.sim.faults.add(Fault(endpoint="InstanceService/Create", kind="never_complete"))
    with pytest.raises(OperationTimeout) as e:
        p.create(CreateRequest(name="stuck", native_type=H100_1))
    [stuck] = p.find_by_name("stuck")
    assert stuck.state is State.CREATING
    assert e.value.instance_id == stuck.id and stuck.id in str(e.value)
    p.close()


# =====================================================================================================
# Cloud dialect only: boot disks, operations, idempotency keys, pagination, IAM tokens, TLS.
# =====================================================================================================
@pytest.fixture
def cloud(nebius_cloud_sim: NebiusCloudSim, ssh_key_file: Path) -> Iterator[NebiusCloudProvider]:
    p = make_cloud(nebius_cloud_sim.address, ssh_key_file=ssh_key_file)
    yield p
    p.close()


def cloud_sim(scenario: dict[str, Any], **options: Any) -> NebiusCloudSim:
    sim = NebiusCloudSim(SimOptions(time_scale=0.05, scenario=scenario, **options))
    sim.start(0)
    return sim


def test_cloud_every_native_state_maps() -> None:
    p = make_cloud("127.0.0.1:1")
    expected = {"UNSPECIFIED": State.UNKNOWN, "CREATING": State.CREATING, "UPDATING": State.UNKNOWN,
                "STARTING": State.STARTING, "RUNNING": State.RUNNING, "STOPPING": State.STOPPING,
                "STOPPED": State.STOPPED, "DELETING": State.DELETING, "ERROR": State.ERROR}
    for name, number in cloud_pb.InstanceStatus.InstanceState.items():
        msg = cloud_pb.Instance()
        msg.metadata.id = "computeinstance-e00x"
        msg.status.state = number
        assert p.to_instance(msg).state is expected[name], name
    msg.status.state = 42  # type: ignore[assignment]
    assert p.to_instance(msg).state is State.UNKNOWN
    with pytest.raises(MalformedAnswer):
        p.to_instance(cloud_pb.Instance())


def test_cloud_refused_connection_is_unreachable_not_retried_and_never_an_unknown_outcome(ssh_key_file: Path) -> None:
    """Nothing listens at the endpoint: nothing was sent, so a create is not "outcome unknown" (a fleet would
    keep its member unresolved and exit 14), and asking again only waits (design.md, "Deadlines")."""
    refused = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused"
    c = grpc.StatusCode
    assert type(cloud_map_error(c.UNAVAILABLE, refused, None, what="w", mutating=True)) is Unreachable
    assert type(cloud_map_error(c.UNAVAILABLE, "connection reset", None, what="w", mutating=True)) is OutcomeUnknown
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    p = make_cloud(dead, ssh_key_file=ssh_key_file, subnet="vpcsubnet-e00x")
    try:
        with pytest.raises(Unreachable):
            p.create(CreateRequest(name="nowhere", native_type=H100_1))
        with pytest.raises(Unreachable):
            p.list_instances()
    finally:
        p.close()


def test_cloud_create_makes_a_labelled_boot_disk_and_destroy_leaves_nothing(
        cloud: NebiusCloudProvider, nebius_cloud_sim: NebiusCloudSim) -> None:
    sim = nebius_cloud_sim
    a = cloud.create(CreateRequest(name="d-1", native_type=H100_1, labels={"vmops-fleet": "f"}))
    b = cloud.create(CreateRequest(name="d-2", native_type=H100_1, labels={"vmops-fleet": "f"}), wait=False)
    with sim.lock:
        disks = {d.metadata.name: d for d in sim.disks.values()}
        spec = sim.instances[a.id].spec
    assert set(disks) == {"d-1-boot", "d-2-boot"}
    assert dict(disks["d-1-boot"].metadata.labels) == {"vmops-fleet": "f"}
    assert disks["d-1-boot"].spec.source_image_family.image_family == "ubuntu22.04-cuda12"
    assert spec.boot_disk.existing_disk.id == disks["d-1-boot"].metadata.id
    assert SSH_PUB in spec.cloud_init_user_data and spec.cloud_init_user_data.startswith("#cloud-config")
    assert spec.network_interfaces[0].subnet_id.startswith("vpcsubnet-")
    assert cloud.destroy(a.id).state is State.DELETED
    assert sim.disk_count() == 1
    [result] = cloud.destroy_many([b.id], wait=False)  # what fleets do: destroy without waiting, then wait_for
    assert result.ok
    assert cloud.wait_for({b.id: frozenset({State.DELETED})})[b.id].state is State.DELETED
    assert (sim.instance_count(), sim.disk_count()) == (0, 0)
    mutations = [r.endpoint for r in sim.requests.records() if r.mutating]
    assert mutations.count("DiskService/Delete") == 2
    assert mutations.index("InstanceService/Delete") < mutations.index("DiskService/Delete")


def test_cloud_destroy_keeps_a_boot_disk_vmops_did_not_make(nebius_cloud_sim: NebiusCloudSim,
                                                            ssh_key_file: Path) -> None:
    sim = cloud_sim({"instances": [{"name": "theirs", "labels": {"team": "ml"}}]})
    try:
        with sim.lock:
            [disk] = sim.disks.values()
            disk.metadata.name = "a-persistent-disk"
        p = make_cloud(sim.address, ssh_key_file=ssh_key_file)
        [inst] = p.list_instances()
        assert p.destroy(inst.id).state is State.DELETED
        assert (sim.instance_count(), sim.disk_count()) == (0, 1)  # detached, kept
        p.close()
    finally:
        sim.stop()


def test_cloud_late_capacity_failure_deletes_instance_and_disk(cloud: NebiusCloudProvider,
                                                              nebius_cloud_sim: NebiusCloudSim) -> None:
    nebius_cloud_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="fail_after_accept", times=1))
    with pytest.raises(InsufficientCapacity, match="went to STOPPED") as e:
        cloud.create(CreateRequest(name="late", native_type=H100_1))
    assert "deleted" in str(e.value)
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (0, 0)


@pytest.mark.parametrize("mode", ["stop", "operation", "sync"])
def test_cloud_no_capacity_in_every_documented_form_leaves_nothing(mode: str, ssh_key_file: Path) -> None:
    sim = cloud_sim({"capacity_failure": mode, "capacity": {CLOUD_PARENT: {H100_8: 0}}})
    try:
        p = make_cloud(sim.address, ssh_key_file=ssh_key_file)
        with pytest.raises(InsufficientCapacity):
            p.create(CreateRequest(name="big", native_type=H100_8))
        assert (sim.instance_count(), sim.disk_count()) == (0, 0)
        assert p.create(CreateRequest(name="small", native_type=H100_1)).state is State.RUNNING
        p.close()
    finally:
        sim.stop()


def test_cloud_late_failure_seen_by_a_fleet_wait_is_an_error(cloud: NebiusCloudProvider,
                                                             nebius_cloud_sim: NebiusCloudSim) -> None:
    nebius_cloud_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="fail_after_accept", times=1))
    inst = cloud.create(CreateRequest(name="f-0", native_type=H100_1), wait=False)
    settled = frozenset({State.RUNNING, State.ERROR, State.DELETED})
    seen = cloud.wait_for({inst.id: settled})[inst.id]
    assert seen.state is State.ERROR and seen.native_state == "STOPPED"
    assert cloud.stop(cloud.create(CreateRequest(name="f-1", native_type=H100_1)).id).state is State.STOPPED
    # a VM stopped on purpose is STOPPED, not an error
    assert {i.name: i.state for i in cloud.list_instances()}["f-1"] is State.STOPPED
    for i in cloud.list_instances():
        cloud.destroy(i.id)
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (0, 0)


def test_cloud_idempotency_key_on_every_mutation_reused_on_retries(cloud: NebiusCloudProvider,
                                                                   nebius_cloud_sim: NebiusCloudSim) -> None:
    sim = nebius_cloud_sim
    sim.faults.add(Fault(endpoint="DiskService/Create", kind="error", grpc_code="UNAVAILABLE", nth=(1,)))
    sim.faults.add(Fault(endpoint="InstanceService/Create", kind="lose_response", times=1))
    sim.faults.add(Fault(endpoint="InstanceService/Stop", kind="lose_response", times=1))
    inst = cloud.create(CreateRequest(name="k-1", native_type=H100_1))
    cloud.stop(inst.id)
    cloud.start(inst.id)
    cloud.destroy(inst.id)
    keys = list(sim.keys)
    assert all(k and re.fullmatch(r"[A-Za-z0-9-]{8,}", k) for _, k in keys), keys
    by_endpoint: dict[str, list[str | None]] = {}
    for endpoint, k in keys:
        by_endpoint.setdefault(endpoint, []).append(k)
    assert len(by_endpoint["DiskService/Create"]) == 2 and len(set(by_endpoint["DiskService/Create"])) == 1
    assert len(by_endpoint["InstanceService/Create"]) == 2 and len(set(by_endpoint["InstanceService/Create"])) == 1
    assert len(by_endpoint["InstanceService/Stop"]) == 2 and len(set(by_endpoint["InstanceService/Stop"])) == 1
    assert by_endpoint["DiskService/Create"][0] != by_endpoint["InstanceService/Create"][0]
    assert (sim.instance_count(), sim.disk_count()) == (0, 0)


def test_cloud_caller_key_derives_stable_keys(cloud: NebiusCloudProvider, nebius_cloud_sim: NebiusCloudSim) -> None:
    cloud.create(CreateRequest(name="ck", native_type=H100_1, idempotency_key="fleet f/0 (odd chars)"), wait=False)
    keys = dict(nebius_cloud_sim.keys)
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", k or "") for k in keys.values())
    again = make_cloud(nebius_cloud_sim.address, ssh_key_file=Path(cloud.cloud.ssh_public_key_file or ""))
    again.create(CreateRequest(name="ck", native_type=H100_1, idempotency_key="fleet f/0 (odd chars)"), wait=False)
    assert dict(nebius_cloud_sim.keys[-2:]) == keys  # another process, same keys: the server deduplicates
    assert nebius_cloud_sim.instance_count() == 1 and nebius_cloud_sim.disk_count() == 1
    again.close()


def test_cloud_list_follows_pages_to_the_end(ssh_key_file: Path) -> None:
    sim = cloud_sim({"instances": [{"name": "p", "count": 10}], "max_page_size": 3})
    try:
        p = make_cloud(sim.address, ssh_key_file=ssh_key_file)
        names = [i.name for i in p.list_instances()]
        assert sorted(names) == sorted(f"p-{k}" for k in range(10)) and len(set(names)) == 10
        assert sim.requests.count("InstanceService/List") == 4  # 3 + 3 + 3 + 1
        assert len(p.list_disks()) == 10
        p.close()
    finally:
        sim.stop()


def test_cloud_list_of_2500_vms_in_pages_of_100(ssh_key_file: Path) -> None:
    sim = cloud_sim({"instances": [{"name": "big", "count": 2500}], "max_page_size": 100})
    try:
        p = make_cloud(sim.address, ssh_key_file=ssh_key_file)
        got = p.list_instances()
        assert len({i.id for i in got}) == 2500
        assert sim.requests.count("InstanceService/List") == 25
        p.close()
    finally:
        sim.stop()


def test_cloud_subnet_discovery(ssh_key_file: Path) -> None:
    sim = cloud_sim({"subnets": {CLOUD_PARENT: ["default-subnet-a", "default-subnet-b"]}})
    try:
        p = make_cloud(sim.address, ssh_key_file=ssh_key_file)
        with pytest.raises(UsageError, match="2 found.*default-subnet-a.*default-subnet-b") as e:
            p.create(CreateRequest(name="s", native_type=H100_1))
        assert "VMOPS_NEBIUS_SUBNET" in str(e.value)
        assert not any(r.mutating for r in sim.requests.records())
        with sim.lock:
            chosen = sim.projects[CLOUD_PARENT].subnets[1].metadata.id
        q = make_cloud(sim.address, ssh_key_file=ssh_key_file, subnet=chosen)
        q.create(CreateRequest(name="s", native_type=H100_1), wait=False)
        with sim.lock:
            [inst] = sim.instances.values()
        assert inst.spec.network_interfaces[0].subnet_id == chosen
        p.close()
        q.close()
    finally:
        sim.stop()


def test_cloud_missing_or_bad_ssh_key_is_a_configuration_error(nebius_cloud_sim: NebiusCloudSim,
                                                               tmp_path: Path) -> None:
    missing = make_cloud(nebius_cloud_sim.address, ssh_key_file=tmp_path / "nope.pub")
    with pytest.raises(UsageError, match="no SSH public key found") as e:
        missing.create(CreateRequest(name="x", native_type=H100_1))
    assert e.value.exit_code == 2 and "VMOPS_NEBIUS_SSH_PUBLIC_KEY_FILE" in str(e.value)
    private = tmp_path / "id_ed25519"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(UsageError, match="does not hold one OpenSSH public key") as e2:
        make_cloud(nebius_cloud_sim.address, ssh_key_file=private).create(CreateRequest(name="x", native_type=H100_1))
    assert "abc" not in str(e2.value)
    assert nebius_cloud_sim.requests.counts() == {}


def test_cloud_no_credentials_is_a_configuration_error(nebius_cloud_sim: NebiusCloudSim) -> None:
    with pytest.raises(UsageError, match="no Nebius credentials"):
        make_cloud(nebius_cloud_sim.address, token=None)


def test_cloud_map_error_reads_service_error_details() -> None:
    c = grpc.StatusCode
    E = error_pb2.ServiceError

    def err(**kw: Any) -> Any:
        retry = kw.pop("retry_type", E.UNSPECIFIED)
        e = E(service="compute", code="X", retry_type=retry)
        for k, v in kw.items():
            getattr(e, k).CopyFrom(v)
        return e

    nes = error_pb2.NotEnoughResources(violations=[error_pb2.NotEnoughResources.Violation(
        resource_type="gpu-h100-sxm", message="Not enough resources")])
    quota = error_pb2.QuotaFailure(violations=[error_pb2.QuotaFailure.Violation(quota="gpus", message="over")])
    cases = [
        (c.UNAUTHENTICATED, None, AuthError),
        (c.PERMISSION_DENIED, None, PermissionDenied),
        (c.NOT_FOUND, None, NotFound),
        (c.INVALID_ARGUMENT, None, InvalidArgument),
        (c.ALREADY_EXISTS, err(resource_already_exists=error_pb2.ResourceAlreadyExists(resource_id="i")), NameTaken),
        (c.RESOURCE_EXHAUSTED, err(not_enough_resources=nes), InsufficientCapacity),
        (c.RESOURCE_EXHAUSTED, err(quota_failure=quota), InsufficientCapacity),
        (c.RESOURCE_EXHAUSTED, err(too_many_requests=error_pb2.TooManyRequests(violation="rps"),
                                   retry_type=E.CALL), RetryAfter),
        (c.RESOURCE_EXHAUSTED, None, RetryAfter),  # the pysdk's rule: retried unless told otherwise
        (c.FAILED_PRECONDITION, err(operation_conflict=error_pb2.OperationConflict(resource_id="i")), RetryAfter),
        (c.ABORTED, err(operation_aborted=error_pb2.OperationAborted(operation_id="o")), RetryAfter),
        (c.FAILED_PRECONDITION, err(bad_resource_state=error_pb2.BadResourceState(message="attached")),
         FailedPrecondition),
        (c.UNIMPLEMENTED, None, Unsupported),
        (c.INTERNAL, None, ProviderUnavailable),
    ]
    for code, detail, cls in cases:
        got = cloud_map_error(code, "text", detail, what="w")
        assert type(got) is cls, (code, detail, type(got))
    assert cloud_map_error(c.ALREADY_EXISTS, "t", cases[4][1], what="w").resource_id == "i"  # type: ignore[attr-defined]
    assert "gpu-h100-sxm: Not enough resources" in str(cloud_map_error(c.RESOURCE_EXHAUSTED, "no", cases[5][1], what="w"))
    assert isinstance(cloud_map_error(c.UNAVAILABLE, "reset", None, what="w", mutating=True), OutcomeUnknown)
    assert type(cloud_map_error(c.UNAVAILABLE, "Connection refused", None, what="w", mutating=True)) \
        is Unreachable  # nothing was sent (a kind of ProviderUnavailable: same exit code), as in the reference map


# ---- IAM tokens ------------------------------------------------------------------------------------------
SA_ID, KEY_ID = "serviceaccount-e00vmopstest", "publickey-e00vmopstest"


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: Any) -> tuple[str, bytes]:
    from cryptography.hazmat.primitives import serialization

    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture
def credentials_file(tmp_path: Path, rsa_key: Any, nebius_cloud_sim: NebiusCloudSim) -> Path:
    private, public = _pem(rsa_key)
    nebius_cloud_sim.register_service_account(SA_ID, KEY_ID, public)
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"subject-credentials": {"type": "JWT", "alg": "RS256", "private-key": private,
                                                        "kid": KEY_ID, "iss": SA_ID, "sub": SA_ID}}))
    return path


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_jwt_header_claims_and_signature(credentials_file: Path, rsa_key: Any) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    creds = nebius_auth.read_credentials_file(str(credentials_file))
    jwt = nebius_auth.make_jwt(creds, now=1_800_000_000.7)
    h, c, s = jwt.split(".")
    assert json.loads(_b64(h)) == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    assert json.loads(_b64(c)) == {"iss": SA_ID, "sub": SA_ID, "aud": "token-service.iam.new.nebiuscloud.net",
                                   "iat": 1_800_000_000, "exp": 1_800_000_060}
    rsa_key.public_key().verify(_b64(s), f"{h}.{c}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert "PRIVATE" not in repr(creds) and "PRIVATE" not in str(creds)


def test_token_exchanged_then_renewed_at_90_percent_of_its_lifetime(nebius_cloud_sim: NebiusCloudSim,
                                                                   credentials_file: Path) -> None:
    sim = nebius_cloud_sim
    sim.token_lifetime_s = 40  # renewal due at 36 s
    now = [time.time()]
    p = make_cloud(sim.address, token=None, credentials_file=credentials_file, token_endpoint=sim.address,
                   clock=lambda: now[0])
    t0 = now[0]
    p.list_instances()
    assert sim.requests.count("TokenExchangeService/Exchange") == 1
    assert p.credentials.renew_at == pytest.approx(t0 + 36)  # type: ignore[attr-defined]
    now[0] = t0 + 35.9
    p.list_instances()
    p.list_instances()
    assert sim.requests.count("TokenExchangeService/Exchange") == 1  # still fresh: reused, per call
    now[0] = t0 + 36.1
    p.list_instances()
    assert sim.requests.count("TokenExchangeService/Exchange") == 2  # renewed before it expired
    assert sim.requests.count("InstanceService/List") == 4
    assert not any(r.outcome.startswith("error") for r in sim.requests.records())
    p.close()


def test_rejected_token_is_renewed_once(nebius_cloud_sim: NebiusCloudSim, credentials_file: Path) -> None:
    sim = nebius_cloud_sim
    p = make_cloud(sim.address, token=None, credentials_file=credentials_file, token_endpoint=sim.address)
    p.list_instances()
    sim.expire_tokens()  # revoked or expired early: the next call is UNAUTHENTICATED
    p.list_instances()
    assert sim.requests.count("TokenExchangeService/Exchange") == 2
    assert [r.outcome for r in sim.requests.records() if r.endpoint == "InstanceService/List"] == [
        "ok", "error:UNAUTHENTICATED", "ok"]
    p.close()


def test_unknown_service_account_key_is_an_auth_error(tmp_path: Path, nebius_cloud_sim: NebiusCloudSim) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    private, _ = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"subject-credentials": {"alg": "RS256", "private-key": private,
                                                        "kid": "publickey-unknown", "iss": SA_ID, "sub": SA_ID}}))
    p = make_cloud(nebius_cloud_sim.address, token=None, credentials_file=path,
                   token_endpoint=nebius_cloud_sim.address)
    with pytest.raises(AuthError, match="service account's key was rejected") as e:
        p.list_instances()
    assert private.splitlines()[1] not in str(e.value)
    assert nebius_cloud_sim.requests.count("TokenExchangeService/Exchange") == 1  # not retried
    assert nebius_cloud_sim.requests.count("InstanceService/List") == 0
    p.close()


@pytest.mark.parametrize("content, problem", [
    ("not json", "is not JSON"),
    ({"other": {}}, "no 'subject-credentials'"),
    ({"subject-credentials": {"alg": "HS256", "private-key": "-----BEGIN PRIVATE KEY-----", "kid": "k",
                              "iss": "a", "sub": "a"}}, "other than RS256"),
    ({"subject-credentials": {"alg": "RS256", "private-key": "-----BEGIN PRIVATE KEY-----", "kid": "k",
                              "iss": "a", "sub": "b"}}, "'iss' different from 'sub'"),
    ({"subject-credentials": {"alg": "RS256", "kid": "k", "iss": "a", "sub": "a"}}, "lacks 'private-key'"),
])
def test_bad_credentials_file_is_a_configuration_error(tmp_path: Path, content: Any, problem: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(UsageError, match=re.escape(problem)) as e:
        make_cloud("127.0.0.1:1", token=None, credentials_file=path)
    assert str(path) in str(e.value) and "BEGIN PRIVATE KEY" not in str(e.value)


# ---- TLS with a test CA --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 (PEM files)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("ca")
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmops test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return {k: str(v) for k, v in paths.items()}


def test_cloud_tls_with_a_test_ca(test_ca: dict[str, str], ssh_key_file: Path, tmp_path: Path) -> None:
    from vmops.config import load_config

    sim = cloud_sim({}, tls_certfile=test_ca["cert"], tls_keyfile=test_ca["key"])
    quick = Timing(retry_attempts=1, request_timeout=5)
    try:
        env = {"VMOPS_HOME": str(tmp_path), "VMOPS_NEBIUS_ENDPOINT": sim.address,
               "VMOPS_NEBIUS_CA_BUNDLE": test_ca["ca"], "VMOPS_NEBIUS_IAM_TOKEN": CLOUD_TOKEN,
               "VMOPS_NEBIUS_PARENT": CLOUD_PARENT, "VMOPS_NEBIUS_SSH_PUBLIC_KEY_FILE": str(ssh_key_file)}
        p = NebiusCloudProvider(load_config(env).settings("nebius"), TIMING)  # TLS by default
        assert p.tls
        inst = p.create(CreateRequest(name="tls-1", native_type=H100_1))
        assert p.destroy(inst.id).state is State.DELETED and sim.disk_count() == 0
        p.close()
        system_ca = make_cloud(sim.address, tls=None, timing=quick)  # the system's roots do not know the test CA
        with pytest.raises(ProviderUnavailable, match="certificate could not be verified") as e:
            system_ca.list_instances()
        assert "VMOPS_CA_BUNDLE" in str(e.value)
        plaintext = NebiusCloudProvider(load_config({**env, "VMOPS_NEBIUS_TLS": "0"}).settings("nebius"), quick)
        assert not plaintext.tls
        served = sim.requests.count("InstanceService/List")
        with pytest.raises(ProviderUnavailable):
            plaintext.list_instances()
        assert sim.requests.count("InstanceService/List") == served  # never reached the service
    finally:
        sim.stop()


def test_cloud_malformed_create_answer_is_resent_with_the_same_key(cloud: NebiusCloudProvider,
                                                                   nebius_cloud_sim: NebiusCloudSim) -> None:
    sim = nebius_cloud_sim
    sim.faults.add(Fault(endpoint="InstanceService/Create", kind="malformed", variant="missing_fields", times=1))
    inst = cloud.create(CreateRequest(name="m-1", native_type=H100_1))
    assert [i.id for i in cloud.find_by_name("m-1")] == [inst.id]
    creates = [k for e, k in sim.keys if e == "InstanceService/Create"]
    assert len(creates) == 2 and len(set(creates)) == 1
    sim.faults.add(Fault(endpoint="InstanceService/List", kind="malformed", variant="truncated"))
    with pytest.raises(MalformedAnswer):
        cloud.list_instances()
    sim.faults.clear()
    cloud.destroy(inst.id)
    assert (sim.instance_count(), sim.disk_count()) == (0, 0)


def test_cloud_create_after_a_crash_adopts_what_the_first_attempt_made(cloud: NebiusCloudProvider,
                                                                       nebius_cloud_sim: NebiusCloudSim,
                                                                       ssh_key_file: Path) -> None:
    labels = {"vmops-fleet": "crash"}
    first = cloud.create(CreateRequest(name="c-0", native_type=H100_1, labels=labels), wait=False)
    restarted = make_cloud(nebius_cloud_sim.address, ssh_key_file=ssh_key_file)  # a new process: no key kept
    again = restarted.create(CreateRequest(name="c-0", native_type=H100_1, labels=labels))
    assert again.id == first.id and again.state is State.RUNNING
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (1, 1)
    with pytest.raises(NameTaken):  # a namesake without our labels is not ours
        restarted.create(CreateRequest(name="c-0", native_type=H100_1, labels={"vmops-fleet": "other"}))
    restarted.destroy(again.id)
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (0, 0)
    restarted.close()


@pytest.mark.parametrize("endpoint", ["DiskService/Create", "InstanceService/Create", "InstanceService/Stop",
                                      "InstanceService/Start", "InstanceService/Delete", "DiskService/Delete"])
def test_cloud_lost_answer_on_any_mutation_does_it_once(cloud: NebiusCloudProvider, nebius_cloud_sim: NebiusCloudSim,
                                                        endpoint: str) -> None:
    sim = nebius_cloud_sim
    sim.faults.add(Fault(endpoint=endpoint, kind="lose_response", times=1))
    inst = cloud.create(CreateRequest(name="once", native_type=H100_1, labels={"vmops-fleet": "once"}))
    assert sim.disk_count() == 1 and [i.id for i in cloud.find_by_name("once")] == [inst.id]
    assert cloud.stop(inst.id).state is State.STOPPED
    assert cloud.start(inst.id).state is State.RUNNING
    assert cloud.destroy(inst.id).state is State.DELETED
    assert (sim.instance_count(), sim.disk_count()) == (0, 0)
    sent = [k for e, k in sim.keys if e == endpoint]
    assert len(sent) == 2 and sent[0] == sent[1]  # the lost one, and its resend with the same key
    with sim.lock:
        done = [o for o in sim.operations.values() if o.description.split()[0] in ("Create", "Delete")]
    assert len(done) == 4  # disk and instance created once, deleted once


def test_cloud_a_page_token_that_comes_back_is_a_malformed_answer(ssh_key_file: Path) -> None:
    class Looping(NebiusCloudSim):  # a server whose paging never ends
        def _page(self, items: list[Any], page_size: int, token: str) -> tuple[list[Any], str]:
            return items[:1], "again"

    sim = Looping(SimOptions(time_scale=0.05, scenario={"instances": [{"name": "x", "count": 2}]}))
    sim.start(0)
    try:
        p = make_cloud(sim.address, ssh_key_file=ssh_key_file, timing=Timing(retry_attempts=1))
        with pytest.raises(MalformedAnswer, match="page token 'again' came back again"):
            p.list_instances()
        assert sim.requests.count("InstanceService/List") == 2
        p.close()
    finally:
        sim.stop()


def test_get_missing_and_unsafe_ids(rig: Rig) -> None:
    p = rig.provider
    with pytest.raises(NotFound, match="nope not found"):
        p.get_instance("nope")
    with pytest.raises(NotFound, match=r"\.\./\.\./reservations"):
        p.get_instance("../../reservations")
    with pytest.raises(NotFound):
        p.destroy("../../rsv-neb-001")
    before = sum(rig.sim.requests.counts().values())
    for bad in ("", "  ", "a\nb", "x" * 300):
        with pytest.raises(InvalidArgument):
            p.get_instance(bad)
        with pytest.raises(InvalidArgument):
            p.destroy(bad)
    assert sum(rig.sim.requests.counts().values()) == before  # rejected before any call
    assert not any(r.mutating for r in rig.sim.requests.records())  # nothing was touched


@pytest.mark.parametrize("dialect", ["reference", "cloud"])
def test_provider_down_is_unavailable(dialect: str, ssh_key_file: Path) -> None:
    timing = Timing(poll_interval=0.02, op_timeout=1, retry_attempts=2, retry_base_delay=0.01, request_timeout=3)
    address = f"127.0.0.1:{free_port()}"
    p = make(address, timing=timing) if dialect == "reference" else \
        make_cloud(address, timing=timing, ssh_key_file=ssh_key_file)
    with pytest.raises(ProviderUnavailable) as e:
        p.list_instances()
    assert not isinstance(e.value, OutcomeUnknown) and KEY not in str(e.value) and CLOUD_TOKEN not in str(e.value)
    with pytest.raises(ProviderUnavailable):
        p.create(CreateRequest(name="x", native_type=H100_1))
    p.close()


def test_cloud_settings_from_environment_and_config_file(tmp_path: Path) -> None:
    from vmops.config import load_config

    (tmp_path / "config.toml").write_text('[nebius]\nsubnet = "vpcsubnet-from-file"\nimage_family = "ubuntu24.04-cuda12"\n'
                                          'ssh_public_key_file = "~/keys/id.pub"\npage_size = 50\n')
    env = {"VMOPS_HOME": str(tmp_path), "VMOPS_NEBIUS_IAM_TOKEN": "ne1-very-secret-token-value",
           "VMOPS_NEBIUS_SUBNET": "vpcsubnet-from-env", "VMOPS_NEBIUS_TOKEN_ENDPOINT": "127.0.0.1:9"}
    s = load_config(env).settings("nebius")
    c = s.nebius_cloud
    assert c is not None and c.iam_token.reveal() == "ne1-very-secret-token-value"
    assert (c.subnet, c.image_family, c.token_endpoint, c.page_size) == (
        "vpcsubnet-from-env", "ubuntu24.04-cuda12", "127.0.0.1:9", 50)
    assert c.ssh_public_key_file == str(Path("~/keys/id.pub").expanduser())
    shown = repr(s.describe())
    assert "ne1-very-secret-token-value" not in shown and "****" in shown
    assert load_config(env).settings("crusoe").nebius_cloud is None


def test_cloud_unknown_image_family_is_an_invalid_argument(nebius_cloud_sim: NebiusCloudSim,
                                                           ssh_key_file: Path) -> None:
    p = make_cloud(nebius_cloud_sim.address, ssh_key_file=ssh_key_file)
    p.cloud = replace(p.cloud, image_family="windows95-cuda0")
    with pytest.raises(InvalidArgument, match="windows95-cuda0") as e:
        p.create(CreateRequest(name="img", native_type=H100_1))
    assert "VMOPS_NEBIUS_IMAGE_FAMILY" in str(e.value)
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (0, 0)
    p.close()
