"""Contract tests of the Nebius simulator: replay of every recorded wire exchange over a real gRPC channel,
plus focused behaviour tests (policies, counters, reflection, auth, faults, idempotency)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Iterator

import grpc
import pytest
from google.protobuf import json_format

from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops.sim.common import Fault, SimOptions
from vmops.sim.nebius import NebiusSim
from tests.wire import wire_file

WIRE = wire_file("nebius")
KEY = "nebius-test-key-001"
AUTH = (("authorization", f"Bearer {KEY}"),)
P1, P2 = "project-e1a2b3c4", "project-f5d6e7f8"
H100_1, H100_8 = ("gpu-h100-sxm", "1gpu-16vcpu-200gb"), ("gpu-h100-sxm", "8gpu-160vcpu-1600gb")
H200_1, H200_8 = ("gpu-h200-sxm", "1gpu-20vcpu-256gb"), ("gpu-h200-sxm", "8gpu-160vcpu-2048gb")
TIMING_TOLERANCE_S = 0.6
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

RPCS: dict[str, tuple[str, str, type]] = {
    "InstanceService/Get": ("instances", "Get", svc.GetInstanceRequest),
    "InstanceService/List": ("instances", "List", svc.ListInstancesRequest),
    "InstanceService/Create": ("instances", "Create", svc.CreateInstanceRequest),
    "InstanceService/Delete": ("instances", "Delete", svc.DeleteInstanceRequest),
    "InstanceService/Start": ("instances", "Start", svc.StartInstanceRequest),
    "InstanceService/Stop": ("instances", "Stop", svc.StopInstanceRequest),
    "ReservationService/Get": ("reservations", "Get", svc.GetReservationRequest),
    "ReservationService/List": ("reservations", "List", svc.ListReservationsRequest),
}
MUTATING = {"InstanceService/Create", "InstanceService/Delete", "InstanceService/Start", "InstanceService/Stop"}


@dataclass
class Reply:
    body: dict[str, Any] | None = None
    code: str | None = None
    details: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None


class Client:
    """A raw gRPC client on the generated stubs (what a Nebius SDK user would write)."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.instances = svc_grpc.InstanceServiceStub(self.channel)
        self.reservations = svc_grpc.ReservationServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def call(self, rpc: str, request: dict[str, Any], metadata: tuple[tuple[str, str], ...] = AUTH) -> Reply:
        stub_name, method, req_cls = RPCS[rpc]
        req = json_format.ParseDict(request, req_cls(), ignore_unknown_fields=False)
        fn = getattr(getattr(self, stub_name), method)
        try:
            resp = fn(req, metadata=metadata, timeout=10)
        except grpc.RpcError as e:
            return Reply(code=e.code().name, details=e.details())
        return Reply(body=json_format.MessageToDict(resp, preserving_proto_field_name=True))

    def raw(self, rpc: str, req: Any, metadata: tuple[tuple[str, str], ...] = AUTH) -> Any:
        stub_name, method, _ = RPCS[rpc]
        return getattr(getattr(self, stub_name), method)(req, metadata=metadata, timeout=10)


def wire_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in WIRE.read_text().splitlines() if line.strip()]


# ---- shape comparison -----------------------------------------------------------------------------
_DEFAULTS: tuple[Any, ...] = ("", False, 0, "0", [], {}, "AUTO", "STATE_UNSPECIFIED", "RESERVATION_STATE_UNSPECIFIED")
#: keys whose values legitimately differ from run to run (checked by type/format only)
_VOLATILE = {"created_at", "updated_at"}


def _is_default(v: Any) -> bool:
    return any(type(v) is type(d) and v == d for d in _DEFAULTS)


def assert_same_shape(expected: Any, actual: Any, path: str = "$", volatile_ok: bool = False) -> None:
    """``actual`` (MessageToDict output) matches the recorded ``expected``: same keys (a recorded default
    value may be absent), same value types, same values (except volatile timestamps / operation ids)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for k, v in expected.items():
            if k not in actual:
                assert _is_default(v), f"{path}.{k}: recorded {v!r} but absent in the simulator's answer"
                continue
            assert_same_shape(v, actual[k], f"{path}.{k}", volatile_ok=volatile_ok or k in _VOLATILE)
        extra = set(actual) - set(expected)
        assert not extra, f"{path}: simulator answers extra keys {sorted(extra)}"
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{path}: {len(actual)} items, recorded {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same_shape(e, a, f"{path}[{i}]", volatile_ok)
    else:
        assert type(actual) is type(expected), f"{path}: type {type(actual).__name__}, recorded {type(expected).__name__}"
        if volatile_ok:
            assert TS_RE.match(actual), f"{path}: {actual!r} is not an RFC 3339 UTC timestamp with whole seconds"
        else:
            assert actual == expected, f"{path}: {actual!r} != recorded {expected!r}"


class IdMap:
    """Recorded id -> id in this run (also the 8-char prefix used in boot disk ids)."""

    def __init__(self) -> None:
        self.pairs: dict[str, str] = {}

    def add(self, recorded: str, actual: str) -> None:
        self.pairs[recorded] = actual
        self.pairs[recorded[:8]] = actual[:8]

    def sub(self, value: Any) -> Any:
        if isinstance(value, str):
            for rec, act in sorted(self.pairs.items(), key=lambda kv: -len(kv[0])):
                if rec in value:
                    value = value.replace(rec, act)
            return value
        if isinstance(value, list):
            return [self.sub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.sub(v) for k, v in value.items()}
        return value


def _strip_operation_id(expected: dict[str, Any], actual: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    exp, act = dict(expected), dict(actual)
    assert UUID_RE.match(act.pop("id")), "operation id is a UUID v4"
    exp.pop("id")
    return exp, act


def _state_of(reply: Reply) -> str:
    if not reply.ok:
        return reply.code or ""
    return (reply.body or {}).get("status", {}).get("state", "STATE_UNSPECIFIED")


def _recorded_state(line: dict[str, Any]) -> str:
    resp = line.get("response", {})
    if "code" in resp and "metadata" not in resp:
        return resp["code"]
    return resp.get("status", {}).get("state", "STATE_UNSPECIFIED")


@pytest.fixture
def real_time_sim() -> Iterator[NebiusSim]:
    sim = NebiusSim(SimOptions(time_scale=1.0))
    sim.start(0)
    yield sim
    sim.stop()


@pytest.fixture
def client(nebius_sim: NebiusSim) -> Iterator[Client]:
    c = Client(nebius_sim.address)
    yield c
    c.close()


# ---- the replay -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_replay_every_recorded_exchange(real_time_sim: NebiusSim) -> None:
    lines = wire_lines()
    assert len(lines) >= 38
    c = Client(real_time_sim.address)
    ids = IdMap()
    seeded = c.call("InstanceService/List", {"parent_id": P1}).body["instances"][0]["metadata"]["id"]
    seeded_recorded = next(ln for ln in lines if ln["step"] == "list")["response"]["instances"][0]["metadata"]["id"]
    ids.add(seeded_recorded, seeded)
    real_time_sim.requests.reset()

    sent_at: dict[str, float] = {}  # actual instance id -> when its latest mutation was answered (this run)
    recorded_at: dict[str, float] = {}  # same, recorded timeline
    poll_results: list[tuple[str, float, float]] = []
    for line in lines:
        rpc, step = line["rpc"], line["step"]
        request = ids.sub(line["request"])
        metadata = tuple(line["metadata"].items()) if "metadata" in line else AUTH
        if str(line.get("note", "")).startswith("poll"):
            iid = request["id"]
            want = _recorded_state(line)
            deadline = time.monotonic() + 6
            while True:
                reply = c.call(rpc, request, metadata)
                if _state_of(reply) == want or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            assert _state_of(reply) == want, f"{step}: never reached {want}"
            took = time.monotonic() - sent_at[iid]
            expected_delay = line["t_s"] - recorded_at[iid]
            poll_results.append((step, took, expected_delay))
            assert abs(took - expected_delay) <= TIMING_TOLERANCE_S, (
                f"{step}: {want} visible after {took:.2f}s, recorded after {expected_delay:.2f}s")
            resp = line["response"]
            if reply.ok:
                assert_same_shape(ids.sub(resp), reply.body, step)
            else:
                assert (reply.code, reply.details) == (resp["code"], ids.sub(resp["details"])), step
            continue

        reply = c.call(rpc, request, metadata)
        if "error" in line:
            err = line["error"]
            assert not reply.ok, f"{step}: expected {err['code']}, got an answer {reply.body}"
            assert reply.code == err["code"], f"{step}: {reply.code} != {err['code']}"
            assert grpc.StatusCode[reply.code].value[0] == err["code_value"]
            assert reply.details == ids.sub(err["details"]), step
            continue
        assert reply.ok, f"{step}: unexpected {reply.code} {reply.details}"
        expected, actual = line["response"], reply.body or {}
        if rpc in MUTATING:
            if rpc == "InstanceService/Create":
                ids.add(expected["resource_id"], actual["resource_id"])
            expected = ids.sub(expected)
            expected, actual = _strip_operation_id(expected, actual)
            assert actual["resource_id"] not in ("", None)
            sent_at[actual["resource_id"]] = time.monotonic()
            recorded_at[actual["resource_id"]] = line["t_s"]
        assert_same_shape(ids.sub(expected), actual, step)
    # every poll transition was measured (creating/running, stopping/stopped, starting/running, deleting/gone)
    assert len(poll_results) == sum(1 for ln in lines if str(ln.get("note", "")).startswith("poll"))
    assert max(exp for _, _, exp in poll_results) > 2.5  # the create transition (+3 s) was really timed
    c.close()


# ---- focused behaviour ----------------------------------------------------------------------------
def _create(c: Client, name: str, shape: tuple[str, str], parent: str = P1, policy: dict[str, Any] | None = None,
            metadata: tuple[tuple[str, str], ...] = AUTH, **spec: Any) -> Reply:
    body: dict[str, Any] = {"metadata": {"parent_id": parent, "name": name},
                            "spec": {"resources": {"platform": shape[0], "preset": shape[1]}, **spec}}
    if policy is not None:
        body["spec"]["reservation_policy"] = policy
    return c.call("InstanceService/Create", body, metadata)


def _get(c: Client, iid: str) -> Reply:
    return c.call("InstanceService/Get", {"id": iid})


def _rsv(c: Client) -> dict[str, dict[str, Any]]:
    body = c.call("ReservationService/List", {"parent_id": P1}).body or {}
    return {r["metadata"]["id"]: r["status"] for r in body["reservations"]}


def _wait_state(c: Client, iid: str, state: str, timeout: float = 3.0) -> Reply:
    deadline = time.monotonic() + timeout
    while True:
        r = _get(c, iid)
        if _state_of(r) == state:
            return r
        assert time.monotonic() < deadline, f"{iid} stuck in {_state_of(r)}, wanted {state}"
        time.sleep(0.01)


def test_auto_picks_first_reservation_in_store_order_then_on_demand(client: Client, nebius_sim: NebiusSim) -> None:
    rids = []
    for i in range(4):
        op = _create(client, f"a{i}", H100_8)
        assert op.ok
        rids.append(_get(client, op.body["resource_id"]).body["status"].get("reservation_id", ""))
    assert rids == ["rsv-neb-001", "rsv-neb-001", "", ""]  # 2 reserved units, then on-demand (2)
    assert _rsv(client)["rsv-neb-001"] == {"state": "RESERVATION_ACTIVE", "used_units": 3}  # available 0 omitted
    assert nebius_sim.on_demand(P1)["gpu-h100-sxm/8gpu-160vcpu-1600gb"] == 0
    r = _create(client, "a5", H100_8)
    assert (r.code, r.details) == ("RESOURCE_EXHAUSTED", f"No capacity for gpu-h100-sxm/8gpu-160vcpu-1600gb in {P1}")


def test_strict_semantics(client: Client) -> None:
    # empty list always fails, even though rsv-neb-002 has room
    r = _create(client, "s", H200_8, policy={"policy": "STRICT"})
    assert (r.code, r.details) == ("FAILED_PRECONDITION", "No matching reservation available for STRICT policy")
    # unknown ids are skipped; list order is irrelevant (store order wins)
    r = _create(client, "s", H200_8, policy={"policy": "STRICT", "reservation_ids": ["nope", "rsv-neb-002"]})
    assert r.ok
    inst = _get(client, r.body["resource_id"]).body
    assert inst["status"]["reservation_id"] == "rsv-neb-002"
    assert inst["spec"]["reservation_policy"] == {"policy": "STRICT", "reservation_ids": ["nope", "rsv-neb-002"]}
    # reservation of another shape listed -> fails, never falls back to on-demand
    r = _create(client, "s", H100_1, policy={"policy": "STRICT", "reservation_ids": ["rsv-neb-001"]})
    assert r.code == "FAILED_PRECONDITION"
    _create(client, "s2", H200_8, policy={"policy": "STRICT", "reservation_ids": ["rsv-neb-002"]})
    r = _create(client, "s3", H200_8, policy={"policy": "STRICT", "reservation_ids": ["rsv-neb-002"]})
    assert r.code == "FAILED_PRECONDITION"  # exhausted; the on-demand unit is not used


def test_forbid_and_unknown_policy_numbers(client: Client, nebius_sim: NebiusSim) -> None:
    r = _create(client, "f", H100_8, policy={"policy": "FORBID", "reservation_ids": ["rsv-neb-001"]})
    inst = _get(client, r.body["resource_id"]).body
    assert inst["status"].get("reservation_id", "") == ""
    assert inst["spec"]["reservation_policy"] == {"policy": "FORBID", "reservation_ids": ["rsv-neb-001"]}
    assert nebius_sim.on_demand(P1)["gpu-h100-sxm/8gpu-160vcpu-1600gb"] == 1
    # unknown enum number 7: accepted, echoed, behaves like AUTO
    req = svc.CreateInstanceRequest()
    req.metadata.parent_id, req.metadata.name = P1, "u"
    req.spec.resources.platform, req.spec.resources.preset = H100_8
    req.spec.reservation_policy.policy = 7  # type: ignore[assignment]
    op = client.raw("InstanceService/Create", req)
    got = client.raw("InstanceService/Get", svc.GetInstanceRequest(id=op.resource_id))
    assert got.spec.reservation_policy.policy == 7
    assert got.status.reservation_id == "rsv-neb-001"


def test_create_field_handling(client: Client) -> None:
    r = _create(client, "", H100_1, parent=P2, network_interfaces=[{"name": "x", "subnet_id": "", "ip_address": "1.2.3.4"}],
                boot_disk={"existing_disk_id": "mine", "attach_mode": "READ_ONLY"}, cloud_init_user_data="#cloud-config",
                stopped=True)
    assert r.ok and r.body["parent_id"] == P2
    iid = r.body["resource_id"]
    inst = _get(client, iid).body
    assert "name" not in inst["metadata"]  # empty name accepted (absent on the wire)
    assert inst["spec"]["network_interfaces"] == [{"name": "eth0", "ip_address": "10.0.0.20"}]  # subnet "" kept
    assert inst["spec"]["boot_disk"] == {"existing_disk_id": f"disk-{iid[:8]}", "attach_mode": "READ_WRITE"}
    assert inst["spec"]["cloud_init_user_data"] == "#cloud-config" and inst["spec"]["stopped"] is True
    assert inst["spec"]["reservation_policy"] == {}
    assert inst["status"] == {"state": "CREATING", "reconciling": True}
    assert inst["metadata"]["resource_version"] == "1"
    running = _wait_state(client, iid, "RUNNING").body  # stopped=true is ignored
    assert running["status"]["network_interfaces"] == [
        {"name": "eth0", "ip_address": "10.0.0.20", "public_ip_address": "185.0.0.21"}]
    assert "reconciling" not in running["status"]


def test_operation_snapshot(client: Client) -> None:
    op = _create(client, "o", H100_1).body
    assert set(op) == {"id", "parent_id", "resource_id", "description", "metadata"}  # done false -> absent
    assert op["description"] == f"Create instance {op['resource_id']}"
    assert op["metadata"] == {"service": "InstanceService", "method": "Create"}
    assert UUID_RE.match(op["id"]) and UUID_RE.match(op["resource_id"])


def test_counters_stop_release_start_nothing_delete_double_release(client: Client, nebius_sim: NebiusSim) -> None:
    iid = _create(client, "c", H200_8).body["resource_id"]  # AUTO -> rsv-neb-002
    assert _rsv(client)["rsv-neb-002"]["used_units"] == 1
    _wait_state(client, iid, "RUNNING")
    assert client.call("InstanceService/Stop", {"id": iid}).ok
    assert _get(client, iid).body["status"]["reconciling"] is True
    _wait_state(client, iid, "STOPPED")
    assert _rsv(client)["rsv-neb-002"] == {"state": "RESERVATION_ACTIVE", "available_units": 2}  # released
    assert client.call("InstanceService/Start", {"id": iid}).ok
    assert _rsv(client)["rsv-neb-002"]["available_units"] == 2  # start reclaims nothing
    _wait_state(client, iid, "RUNNING")
    # over-booking: two more creates fit into the "free" units
    other = [_create(client, f"o{i}", H200_8).body["resource_id"] for i in range(2)]
    assert {_get(client, o).body["status"]["reservation_id"] for o in other} == {"rsv-neb-002"}
    assert client.call("InstanceService/Delete", {"id": iid}).ok
    _wait_state(client, iid, "NOT_FOUND")
    assert _rsv(client)["rsv-neb-002"]["used_units"] == 1  # second release of iid's unit
    od = nebius_sim.on_demand(P1)["gpu-h200-sxm/8gpu-160vcpu-2048gb"]
    fid = _create(client, "od", H200_8, policy={"policy": "FORBID"}).body["resource_id"]
    assert nebius_sim.on_demand(P1)["gpu-h200-sxm/8gpu-160vcpu-2048gb"] == od - 1
    client.call("InstanceService/Delete", {"id": fid})
    _wait_state(client, fid, "NOT_FOUND")
    assert nebius_sim.on_demand(P1)["gpu-h200-sxm/8gpu-160vcpu-2048gb"] == od


def test_state_preconditions_and_id_rpcs_ignore_parents(client: Client) -> None:
    iid = _create(client, "p", H100_1, parent=P2).body["resource_id"]
    r = client.call("InstanceService/Start", {"id": iid})
    assert (r.code, r.details) == ("FAILED_PRECONDITION", "Instance not stopped")
    r = client.call("InstanceService/Stop", {"id": iid})
    assert (r.code, r.details) == ("FAILED_PRECONDITION", "Instance not running")
    assert _get(client, iid).body["metadata"]["parent_id"] == P2
    assert client.call("ReservationService/Get", {"id": "rsv-neb-001"}).ok
    r = client.call("ReservationService/List", {"parent_id": P2})
    assert r.ok and r.body == {}
    r = client.call("InstanceService/List", {"parent_id": ""})
    assert (r.code, r.details) == ("PERMISSION_DENIED", "Parent  not found")
    r = client.call("ReservationService/List", {"parent_id": "x"})
    assert (r.code, r.details) == ("PERMISSION_DENIED", "Parent x not found")


def test_delete_does_not_cancel_pending_create_transition() -> None:
    # The create writes RUNNING at +3 s; a delete sent at +2 s removes the VM at +4 s. At scale 0.4 both the
    # delete's margin before +3 s and the RUNNING window after it are 0.4 s: wide enough for a loaded machine.
    scale = 0.4
    sim = NebiusSim(SimOptions(time_scale=scale))
    sim.start(0)
    client = Client(sim.address)
    try:
        t0 = time.monotonic()
        iid = _create(client, "race", H100_1).body["resource_id"]
        time.sleep(max(0.0, t0 + 2.0 * scale - time.monotonic()))
        client.call("InstanceService/Delete", {"id": iid})
        assert time.monotonic() - t0 < 3.0 * scale, "the delete was not sent before the create's RUNNING write"
        seen = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            s = _state_of(_get(client, iid))
            seen.add(s)
            if s == "NOT_FOUND":
                break
            time.sleep(0.005)
        assert "RUNNING" in seen and "NOT_FOUND" in seen  # RUNNING overwrote DELETING, then removal
    finally:
        client.close()
        sim.stop()


def test_auth_variants(client: Client) -> None:
    for md in ((), (("authorization", "Bearer nope"),), (("authorization", "nebius-test-key-00"),)):
        r = client.call("InstanceService/List", {"parent_id": P1}, md)
        assert (r.code, r.details) == ("UNAUTHENTICATED", "Invalid or missing API key")
    for md in ((("authorization", KEY),), (("authorization", "Bearer nebius-test-key-002"),),
               (("authorization", "Bearer Bearer nebius-test-key-001"),)):
        assert client.call("InstanceService/List", {"parent_id": P1}, md).ok


def test_unknown_method_and_undecodable_bytes(client: Client) -> None:
    unknown = client.channel.unary_unary("/nebius.compute.v1.InstanceService/Update")
    with pytest.raises(grpc.RpcError) as e:
        unknown(b"", metadata=AUTH, timeout=5)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
    with pytest.raises(grpc.RpcError) as e:
        unknown(b"", timeout=5)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, "Invalid or missing API key")
    get = client.channel.unary_unary("/nebius.compute.v1.InstanceService/Get")
    with pytest.raises(grpc.RpcError) as e:
        get(b"\xff\xff\xff", metadata=AUTH, timeout=5)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.INTERNAL, "Exception deserializing request!")
    with pytest.raises(grpc.RpcError) as e:
        get(b"\xff\xff\xff", timeout=5)  # auth runs before decoding
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _reflect(channel: grpc.Channel, version: str, requests: list[Any], metadata: tuple[tuple[str, str], ...]) -> list[Any]:
    if version == "v1alpha":
        from grpc_reflection.v1alpha import reflection_pb2 as rpb
        from grpc_reflection.v1alpha import reflection_pb2_grpc as rgrpc
    else:
        pytest.fail("only v1alpha stubs are used here")
    stub = rgrpc.ServerReflectionStub(channel)
    return list(stub.ServerReflectionInfo(iter([rpb.ServerReflectionRequest(**r) for r in requests]),
                                          metadata=metadata, timeout=5))


def test_reflection_v1alpha_with_auth_only(client: Client) -> None:
    from google.protobuf import descriptor_pb2

    out = _reflect(client.channel, "v1alpha", [{"list_services": ""},
                                                {"file_containing_symbol": "nebius.compute.v1.InstanceService"}], AUTH)
    names = {s.name for s in out[0].list_services_response.service}
    assert names == {"grpc.reflection.v1alpha.ServerReflection", "nebius.compute.v1.InstanceService",
                     "nebius.compute.v1.ReservationService"}
    files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in out[1].file_descriptor_response.file_descriptor_proto]
    assert [f.name for f in files][:1] == ["nebius/compute/v1/instance_service.proto"]
    assert {f.name for f in files} >= {"nebius/compute/v1/instance_service.proto", "nebius/compute/v1/instance.proto",
                                      "google/protobuf/timestamp.proto"}
    assert files[0].package == "nebius.compute.v1"
    with pytest.raises(grpc.RpcError) as e:
        _reflect(client.channel, "v1alpha", [{"list_services": ""}], ())
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, "Invalid or missing API key")
    v1 = client.channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    with pytest.raises(grpc.RpcError) as e:
        list(v1(iter([b""]), metadata=AUTH, timeout=5))
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_fault_error_rate_limit_and_request_counters(client: Client, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/List", kind="error", grpc_code="UNAVAILABLE", nth=(1,)))
    nebius_sim.faults.add(Fault(endpoint="ReservationService/*", kind="error", grpc_code="INTERNAL",
                                message="boom", times=1))
    r = client.call("InstanceService/List", {"parent_id": P1})
    assert (r.code, r.details) == ("UNAVAILABLE", "injected UNAVAILABLE")
    assert client.call("InstanceService/List", {"parent_id": P1}).ok
    r = client.call("ReservationService/Get", {"id": "rsv-neb-001"})
    assert (r.code, r.details) == ("INTERNAL", "boom")
    assert client.call("ReservationService/Get", {"id": "rsv-neb-001"}).ok
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Get", kind="rate_limit", per_seconds=100))
    assert client.call("InstanceService/Get", {"id": "nope"}).code == "NOT_FOUND"  # first call accepted
    r = client.call("InstanceService/Get", {"id": "nope"})
    assert (r.code, r.details) == ("RESOURCE_EXHAUSTED", "rate limit exceeded")
    counts = nebius_sim.requests.counts()
    assert counts == {"InstanceService/List": 2, "ReservationService/Get": 2, "InstanceService/Get": 2}
    assert nebius_sim.requests.mutating_count() == 0
    assert set(nebius_sim.ENDPOINTS) == set(RPCS)
    assert {k for k, v in nebius_sim.ENDPOINTS.items() if v} == MUTATING


def test_fault_latency(client: Client, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Get", kind="latency", latency_s=0.3))
    t = time.monotonic()
    assert client.call("InstanceService/Get", {"id": "nope"}).code == "NOT_FOUND"
    assert time.monotonic() - t >= 0.3


def test_fault_never_complete(client: Client, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="never_complete"))
    iid = _create(client, "n", H100_1).body["resource_id"]
    time.sleep(0.3)  # 6 s scaled, twice the create delay
    assert _get(client, iid).body["status"] == {"state": "CREATING", "reconciling": True}


def test_fault_fail_after_accept_holds_capacity_until_delete(client: Client, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="fail_after_accept"))
    before = nebius_sim.on_demand(P1)["gpu-h100-sxm/1gpu-16vcpu-200gb"]
    iid = _create(client, "fa", H100_1).body["resource_id"]
    inst = _wait_state(client, iid, "ERROR").body
    assert "reconciling" not in inst["status"] and "network_interfaces" not in inst["status"]
    assert nebius_sim.on_demand(P1)["gpu-h100-sxm/1gpu-16vcpu-200gb"] == before - 1
    client.call("InstanceService/Delete", {"id": iid})
    _wait_state(client, iid, "NOT_FOUND")
    assert nebius_sim.on_demand(P1)["gpu-h100-sxm/1gpu-16vcpu-200gb"] == before


def test_fault_lose_response_commits(client: Client, nebius_sim: NebiusSim) -> None:
    nebius_sim.faults.add(Fault(endpoint="InstanceService/Create", kind="lose_response", times=1))
    r = _create(client, "lost", H100_1)
    assert (r.code, r.details) == ("UNAVAILABLE", "connection reset")
    names = [i["metadata"].get("name") for i in client.call("InstanceService/List", {"parent_id": P1}).body["instances"]]
    assert names.count("lost") == 1
    assert nebius_sim.requests.mutating_count() == 1


def test_idempotency_key_returns_same_instance(client: Client, nebius_sim: NebiusSim) -> None:
    md = AUTH + (("x-idempotency-key", "k-123"),)
    a = _create(client, "idem", H100_1, metadata=md).body
    b = _create(client, "idem", H100_1, metadata=md).body
    assert a["resource_id"] == b["resource_id"] and a["id"] != b["id"]
    c = _create(client, "idem", H100_1, metadata=AUTH + (("x-idempotency-key", "k-456"),)).body
    assert c["resource_id"] != a["resource_id"]
    assert nebius_sim.instance_count(P1) == 3  # seed + 2
    # a failed create does not bind its key
    md2 = AUTH + (("x-idempotency-key", "k-789"),)
    assert _create(client, "x", ("gpu-b200-sxm", "x"), metadata=md2).code == "INVALID_ARGUMENT"
    assert _create(client, "x", H100_1, metadata=md2).ok
    assert nebius_sim.instance_count(P1) == 4


def test_reset_restores_seed_with_fresh_ids(client: Client, nebius_sim: NebiusSim) -> None:
    seeded = client.call("InstanceService/List", {"parent_id": P1}).body["instances"][0]["metadata"]["id"]
    _create(client, "r", H200_8)
    nebius_sim.faults.add(Fault(endpoint="*", kind="error", nth=(99,)))
    nebius_sim.reset()
    body = client.call("InstanceService/List", {"parent_id": P1}).body
    assert [i["metadata"]["name"] for i in body["instances"]] == ["train-node-01"]
    assert body["instances"][0]["metadata"]["id"] != seeded
    assert nebius_sim.faults.list() == [] and nebius_sim.requests.counts() == {"InstanceService/List": 1}
    assert _rsv(client)["rsv-neb-002"] == {"state": "RESERVATION_ACTIVE", "available_units": 2}
    assert nebius_sim.on_demand(P2) == {"gpu-h100-sxm/1gpu-16vcpu-200gb": 3, "gpu-h100-sxm/8gpu-160vcpu-1600gb": 1,
                                        "gpu-h200-sxm/1gpu-20vcpu-256gb": 2, "gpu-h200-sxm/8gpu-160vcpu-2048gb": 0}


def test_scenario_overrides_and_scale() -> None:
    scenario = {
        "parents": [P1, "project-big"],
        "on_demand": {"project-big": {"gpu-h100-sxm/1gpu-16vcpu-200gb": 1}},
        "reservations": [{"id": "rsv-x", "parent_id": "project-big", "platform": "gpu-h100-sxm",
                          "preset": "1gpu-16vcpu-200gb", "total_units": 5, "used_units": 5}],
        "instances": [{"name": "bulk", "parent_id": "project-big", "platform": "gpu-h100-sxm",
                       "preset": "1gpu-16vcpu-200gb", "count": 3000}],
    }
    sim = NebiusSim(SimOptions(time_scale=0.05, scenario=scenario))
    sim.start(0)
    c = Client(sim.address)
    try:
        t = time.monotonic()
        body = c.call("InstanceService/List", {"parent_id": "project-big"}).body
        assert len(body["instances"]) == 3000 and time.monotonic() - t < 5
        assert body["instances"][2999]["metadata"]["name"] == "bulk-2999"
        assert c.call("InstanceService/List", {"parent_id": P1}).body == {}
        assert c.call("InstanceService/List", {"parent_id": P2}).code == "PERMISSION_DENIED"
        assert c.call("ReservationService/Get", {"id": "rsv-neb-001"}).code == "NOT_FOUND"
        assert _create(c, "one", H100_1, parent="project-big").ok  # rsv-x full -> the one on-demand unit
        assert _create(c, "two", H100_1, parent="project-big").code == "RESOURCE_EXHAUSTED"
        assert _create(c, "p1", H100_1, parent=P1).ok  # seed counters kept for P1
        iid = body["instances"][1234]["metadata"]["id"]
        assert _get(c, iid).body["metadata"]["name"] == "bulk-1234"
    finally:
        c.close()
        sim.stop()
