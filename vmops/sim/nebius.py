"""Simulator of the Nebius reference server (gRPC, provider-apis.md §3).

A grpcio server (thread pool of 10 workers, like the reference) bound to ``127.0.0.1:<port>`` serving
``nebius.compute.v1.InstanceService`` and ``ReservationService`` from the stubs in ``vmops._gen`` plus
v1alpha server reflection (``grpc.reflection.v1alpha.ServerReflection`` only, no v1).

Wire behaviour reproduced (see the contract for details):

* An auth interceptor runs before any decoding for every method, reflection and unknown methods
  included: the ``authorization`` metadata with every ``"Bearer "`` deleted must be a valid key, else
  UNAUTHENTICATED ``Invalid or missing API key``. With valid auth grpcio itself answers unknown methods
  (UNIMPLEMENTED ``Method not found!``) and undecodable bytes (INTERNAL ``Exception deserializing
  request!``).
* Parents are checked only by ``InstanceService.List``/``Create`` and ``ReservationService.List``; id
  RPCs search every parent. On-demand counters and reservations are per parent.
* Create: check order parent -> platform -> preset -> reservation policy -> on-demand; AUTO (and any
  unknown enum number) = first eligible reservation in store order else on-demand; FORBID = on-demand;
  STRICT = first eligible reservation in store order whose id is listed (empty list always fails), never
  on-demand. Server-chosen NIC (``10.0.0.(20+n)``), boot disk (``disk-<first 8 of id>``), echoed
  policy/cloud-init/``stopped`` (ignored).
* Timers (``self.scheduler``, scaled): CREATING -> RUNNING at +3 s with public IP ``185.0.0.(20+m)``;
  STOPPING -> STOPPED and STARTING -> RUNNING at +2 s; DELETING -> removed at +2 s. Timers write
  blindly ("sleep then mutate"), only skipping instances that are gone, so a pending RUNNING write can
  overwrite DELETING exactly like the reference.
* Unit counters: reservation +1 at create, released (clamped at 0) when a stop completes and when a
  delete completes; start touches nothing; on-demand +1 when a non-reserved instance is removed.
* Operations are one-time snapshots with ``done`` false; nothing can read them again.

Deliberate extensions (off unless used; the reference has none of them):

* ``x-idempotency-key`` metadata on Create: a Create whose key was already accepted returns a fresh
  Operation snapshot for the SAME instance and creates nothing (this is what the real Nebius API does
  with its X-Idempotency-Key header; the reference server ignores the header). Keys are remembered only
  for accepted creates, until ``reset()``.
* Fault injection and request counters per endpoint name (``ENDPOINTS``): ``hang`` (the RPC is held
  unanswered, then aborted UNAVAILABLE; see ``vmops.sim.common``), ``error`` (abort with
  ``fault.grpc_code``, details ``fault.message`` or ``injected <CODE>``), ``latency``, ``rate_limit``
  (RESOURCE_EXHAUSTED ``rate limit exceeded`` with trailing metadata ``retry-after`` in seconds),
  ``never_complete`` (the mutation is accepted but its transition never fires: the instance stays
  CREATING/STOPPING/STARTING/DELETING), ``fail_after_accept`` (Create only: at +3 s the instance goes to
  ERROR, reconciling false, capacity held until it is deleted), ``lose_response`` (the mutation is
  committed, then the call fails with UNAVAILABLE ``connection reset``), ``malformed`` (with ``variant``:
  the call is served, then the answer's bytes are spoiled - see ``vmops.sim.common``; the services are
  registered with response serializers that pass raw bytes through, so a truncated or undecodable message
  reaches the client exactly as a broken server would send it).

Scenario section (``nebius:`` in a scenario file); every key optional:

* ``parents``: list of parent ids (replaces the two seeded parents; new parents start with no capacity).
* ``on_demand``: ``{parent: {"platform/preset": n}}``, merged over the seed counters of that parent.
* ``reservations``: list replacing the seeded reservations; entries
  ``{id, parent_id, name, labels, platform, preset, total_units, used_units, state, created_at, updated_at}``
  (state ``ACTIVE``/``EXPIRED``/``PENDING`` or the full enum name; parent defaults to the first parent).
* ``instances``: list replacing the seeded instance (``[]`` = none); entries
  ``{name, parent_id, platform, preset, state, labels, reservation_id, subnet_id, ip_address,
  public_ip_address, created_at, count}``; ``count: n`` makes n instances named ``<name>-<k>`` (for
  scale tests with thousands of VMs). Scenario instances do not touch counters (like the seed instance,
  whose unit is already in rsv-neb-001's ``used_units``) and get no timers.
"""

from __future__ import annotations

import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Mapping

import grpc

from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops.sim.base import Simulator
from vmops.sim.common import NON_JSON_BODY, Effects as _Effects, Fault, SimOptions, draw_faults

VALID_KEYS: frozenset[str] = frozenset({"nebius-test-key-001", "nebius-test-key-002"})
PARENTS: tuple[str, ...] = ("project-e1a2b3c4", "project-f5d6e7f8")
CATALOG: dict[str, tuple[str, ...]] = {
    "gpu-h100-sxm": ("1gpu-16vcpu-200gb", "8gpu-160vcpu-1600gb"),
    "gpu-h200-sxm": ("1gpu-20vcpu-256gb", "8gpu-160vcpu-2048gb"),
}
SEED_ON_DEMAND: dict[str, dict[str, int]] = {
    "project-e1a2b3c4": {
        "gpu-h100-sxm/1gpu-16vcpu-200gb": 6,
        "gpu-h100-sxm/8gpu-160vcpu-1600gb": 2,
        "gpu-h200-sxm/1gpu-20vcpu-256gb": 4,
        "gpu-h200-sxm/8gpu-160vcpu-2048gb": 1,
    },
    "project-f5d6e7f8": {
        "gpu-h100-sxm/1gpu-16vcpu-200gb": 3,
        "gpu-h100-sxm/8gpu-160vcpu-1600gb": 1,
        "gpu-h200-sxm/1gpu-20vcpu-256gb": 2,
        "gpu-h200-sxm/8gpu-160vcpu-2048gb": 0,
    },
}
CREATE_DELAY_S = 3.0
TRANSITION_DELAY_S = 2.0

AUTH_FAILED = "Invalid or missing API key"
SERVICE_NAMES: tuple[str, ...] = ("nebius.compute.v1.InstanceService", "nebius.compute.v1.ReservationService")

_AUTO, _FORBID, _STRICT = pb.AUTO, pb.FORBID, pb.STRICT


class _Abort(Exception):
    """An application error to answer with (status code + details)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


UNKNOWN_ENUM_NUMBER = 99


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _scrub(msg: Any, variant: str) -> None:
    """missing_fields: clear every scalar field (messages kept); unknown_enum: every enum -> 99."""
    for fd, value in msg.ListFields():
        if fd.message_type is not None:
            if fd.message_type.GetOptions().map_entry:
                if variant == "missing_fields":
                    msg.ClearField(fd.name)
                continue
            for sub in (value if fd.is_repeated else [value]):
                _scrub(sub, variant)
        elif variant == "missing_fields":
            msg.ClearField(fd.name)
        elif variant == "unknown_enum" and fd.enum_type is not None and not fd.is_repeated:
            setattr(msg, fd.name, UNKNOWN_ENUM_NUMBER)


def _wrong_types(msg: Any) -> bytes:
    """Every field re-sent as a varint (decoders skip a field with the wrong wire type as unknown); the
    elements of a repeated message field (a list answer's items) are kept as elements, each spoiled so."""
    out = bytearray()
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.is_repeated and not fd.message_type.GetOptions().map_entry:
            for sub in value:
                inner = _wrong_types(sub)
                out += _varint(fd.number << 3 | 2) + _varint(len(inner)) + inner
        else:
            out += _varint(fd.number << 3) + b"\x01"
    return bytes(out)


def spoil(msg: Any, variant: str) -> bytes:
    """The bytes of answer ``msg`` spoiled as ``variant`` says (see ``vmops.sim.common``)."""
    data = msg.SerializeToString()
    if variant == "non_json":
        return NON_JSON_BODY
    if variant == "empty":
        return b""
    if variant == "truncated":
        cut = data[: len(data) // 2]
        try:
            type(msg).FromString(cut)
        except Exception:  # noqa: BLE001 - a DecodeError is what we want
            return cut
        return cut + b"\x0a\x7f"  # field 1, 127 bytes announced, none sent
    if variant == "wrong_types":
        return _wrong_types(msg)
    copy = type(msg)()
    copy.CopyFrom(msg)
    _scrub(copy, variant)
    return copy.SerializeToString()


class _CaptureHandlers:
    """Stands in for a server while a generated ``add_*Servicer_to_server`` registers its handlers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, dict(handlers)


def bind(server: grpc.Server, host: str, port: int, tls: tuple[str, str] | None) -> int:
    """Bind a simulator's gRPC server (TLS with the options' certificate and key, else plaintext); the port."""
    try:
        if tls:
            from pathlib import Path

            cert, key = (Path(f).read_bytes() for f in tls)
            bound = server.add_secure_port(f"{host}:{port}", grpc.ssl_server_credentials([(key, cert)]))
        else:
            bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:
        raise OSError(f"cannot bind {host}:{port}: {e}") from e
    if not bound:
        raise OSError(f"cannot bind {host}:{port}")
    return int(bound)


def _add_service(add: Callable[[Any, Any], None], servicer: Any, server: grpc.Server) -> None:
    """Register a generated service whose response serializers pass ``bytes`` answers through unchanged."""
    cap = _CaptureHandlers()
    add(servicer, cap)
    if not cap.handlers:
        raise RuntimeError("generated stubs registered no method handlers")

    def passthrough(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
        return lambda m: m if isinstance(m, bytes) else serialize(m)

    handlers = {name: grpc.unary_unary_rpc_method_handler(
        h.unary_unary, request_deserializer=h.request_deserializer,
        response_serializer=passthrough(h.response_serializer)) for name, h in cap.handlers.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(cap.service, handlers),))
    server.add_registered_method_handlers(cap.service, handlers)


@dataclass
class _Parent:
    """One parent (project): its instances in creation order, reservations in store order, on-demand."""

    id: str
    instances: dict[str, pb.Instance] = field(default_factory=dict)
    reservations: list[pb.Reservation] = field(default_factory=list)
    on_demand: dict[str, int] = field(default_factory=dict)

    def reservation(self, rid: str) -> pb.Reservation | None:
        for r in self.reservations:
            if r.metadata.id == rid:
                return r
        return None


def _ts(text: str) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc))
    return t


def _status_code(name: str) -> grpc.StatusCode:
    key = str(name).strip().upper()
    if key.isdigit():
        for code in grpc.StatusCode:
            if code.value[0] == int(key):
                return code
    try:
        return grpc.StatusCode[key]
    except KeyError:
        raise ValueError(f"unknown gRPC status code {name!r}") from None


def _reservation_state(name: str) -> int:
    key = str(name).upper()
    if not key.startswith("RESERVATION_"):
        key = "RESERVATION_" + key
    return pb.ReservationState.Value(key)


def _release(r: pb.Reservation) -> None:
    used = max(0, r.status.used_units - 1)
    r.status.used_units = used
    r.status.available_units = r.spec.total_units - used


class _AuthInterceptor(grpc.ServerInterceptor):
    """Rejects calls without a valid key before the request is decoded, for every method."""

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        md = dict(details.invocation_metadata or ())
        value = md.get("authorization")
        if isinstance(value, str) and value.replace("Bearer ", "") in VALID_KEYS:
            return continuation(details)
        return _deny(continuation(details))


def _deny(handler: Any) -> Any:
    def abort(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)

    # No deserializer: the request bytes are never decoded. Keep the handler's streaming shape.
    if handler is not None and handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler is not None and handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler is not None and handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class NebiusSim(Simulator):
    name: ClassVar[str] = "nebius"
    default_port: ClassVar[int] = 50051
    ENDPOINTS: ClassVar[Mapping[str, bool]] = {
        "InstanceService/Get": False,
        "InstanceService/List": False,
        "InstanceService/Create": True,
        "InstanceService/Delete": True,
        "InstanceService/Start": True,
        "InstanceService/Stop": True,
        "ReservationService/Get": False,
        "ReservationService/List": False,
    }

    def __init__(self, options: SimOptions | None = None) -> None:
        self._server: grpc.Server | None = None
        self.parents: dict[str, _Parent] = {}
        self._where: dict[str, str] = {}  # instance id -> parent id
        self._idempotency: dict[str, str] = {}  # x-idempotency-key -> instance id
        super().__init__(options)

    # ---- seed ----------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def seed_state(self) -> None:
        sc = dict(self.options.scenario or {})
        parent_ids = [str(p) for p in sc.get("parents", PARENTS)]
        parents = {p: _Parent(p, on_demand=dict(SEED_ON_DEMAND.get(p, {}))) for p in parent_ids}
        for p, table in (sc.get("on_demand") or {}).items():
            if p not in parents:
                raise ValueError(f"nebius scenario: on_demand names unknown parent {p!r}")
            parents[p].on_demand.update({str(k): int(v) for k, v in table.items()})
        first = parent_ids[0] if parent_ids else ""
        rsv_entries = sc.get("reservations")
        if rsv_entries is None:
            rsv_entries = _SEED_RESERVATIONS
        for e in rsv_entries:
            r = self._reservation_from(e, first)
            if r.metadata.parent_id not in parents:
                raise ValueError(f"nebius scenario: reservation {r.metadata.id} names unknown parent")
            parents[r.metadata.parent_id].reservations.append(r)
        self.parents = parents
        self._where = {}
        self._idempotency = {}
        inst_entries = sc.get("instances")
        if inst_entries is None:
            inst_entries = [_SEED_INSTANCE]
        for e in inst_entries:
            count = int(e.get("count", 1))
            for k in range(count):
                name = str(e.get("name", "")) if count == 1 else f"{e.get('name', 'vm')}-{k}"
                self._add_seeded(e, name, first)

    @staticmethod
    def _reservation_from(e: Mapping[str, Any], default_parent: str) -> pb.Reservation:
        total = int(e.get("total_units", 1))
        used = int(e.get("used_units", 0))
        r = pb.Reservation()
        m = r.metadata
        m.id = str(e["id"])
        m.parent_id = str(e.get("parent_id", default_parent))
        m.name = str(e.get("name", ""))
        m.resource_version = 1
        m.created_at.CopyFrom(_ts(str(e.get("created_at", "2026-01-01T00:00:00Z"))))
        m.updated_at.CopyFrom(_ts(str(e.get("updated_at", "2026-03-15T00:00:00Z"))))
        m.labels.update({str(k): str(v) for k, v in (e.get("labels") or {}).items()})
        r.spec.platform = str(e["platform"])
        r.spec.preset = str(e["preset"])
        r.spec.total_units = total
        r.status.state = _reservation_state(str(e.get("state", "ACTIVE")))
        r.status.used_units = used
        r.status.available_units = total - used
        return r

    def _add_seeded(self, e: Mapping[str, Any], name: str, default_parent: str) -> None:
        parent = self.parents.get(str(e.get("parent_id", default_parent)))
        if parent is None:
            raise ValueError(f"nebius scenario: instance {name!r} names unknown parent {e.get('parent_id')!r}")
        n = len(parent.instances)
        iid = str(e["id"]) if e.get("id") and int(e.get("count", 1)) == 1 else self._new_id()
        inst = pb.Instance()
        m = inst.metadata
        m.id = iid
        m.parent_id = parent.id
        m.name = name
        m.resource_version = 1
        created = _ts(str(e.get("created_at", "2026-03-15T08:00:00Z")))
        m.created_at.CopyFrom(created)
        m.updated_at.CopyFrom(created)
        m.labels.update({str(k): str(v) for k, v in (e.get("labels") or {}).items()})
        inst.spec.resources.platform = str(e.get("platform", "gpu-h100-sxm"))
        inst.spec.resources.preset = str(e.get("preset", "8gpu-160vcpu-1600gb"))
        ip = str(e.get("ip_address") or f"10.0.0.{10 + n}")
        inst.spec.network_interfaces.add(name="eth0", subnet_id=str(e.get("subnet_id", "subnet-001")), ip_address=ip)
        inst.spec.boot_disk.existing_disk_id = str(e.get("boot_disk", f"disk-{n + 1:03d}"))
        inst.spec.boot_disk.attach_mode = "READ_WRITE"
        inst.spec.reservation_policy.SetInParent()
        state = pb.InstanceState.Value(str(e.get("state", "RUNNING")).upper())
        inst.status.state = state
        inst.status.reconciling = state in (pb.CREATING, pb.STOPPING, pb.STARTING, pb.DELETING)
        if state != pb.CREATING:
            public = str(e.get("public_ip_address") or f"185.0.0.{10 + n}")
            inst.status.network_interfaces.add(name="eth0", ip_address=ip, public_ip_address=public)
        inst.status.reservation_id = str(e.get("reservation_id", ""))
        parent.instances[iid] = inst
        self._where[iid] = parent.id

    # ---- server --------------------------------------------------------------------------------
    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        from grpc_reflection.v1alpha import reflection
        from grpc_reflection.v1alpha import reflection_pb2_grpc

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=10, thread_name_prefix="sim-nebius"),
                             interceptors=[_AuthInterceptor()])
        _add_service(svc_grpc.add_InstanceServiceServicer_to_server, _InstanceServicer(self), server)
        _add_service(svc_grpc.add_ReservationServiceServicer_to_server, _ReservationServicer(self), server)
        # v1alpha only, registered explicitly (enable_server_reflection may add v1 in future grpcio versions)
        names = (*SERVICE_NAMES, reflection.SERVICE_NAME)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection.ReflectionServicer(names), server)
        bound = bind(server, host, port, self.tls)
        server.start()
        self._server = server
        self.port = bound
        self._host = host
        return bound

    def stop(self) -> None:
        self.faults.release_hangs()
        if self._server is not None:
            self._server.stop(grace=0).wait(5)
            self._server = None
        self.scheduler.shutdown()

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("nebius simulator is not started")
        return f"{getattr(self, '_host', '127.0.0.1')}:{self.port}"

    # ---- request plumbing ----------------------------------------------------------------------
    def serve(self, endpoint: str, context: grpc.ServicerContext, fn: Callable[[_Effects], Any]) -> Any:
        """Count the call, apply faults, run ``fn`` and translate its ``_Abort`` into a gRPC status."""
        n = self.requests.begin(endpoint)
        mutating = bool(self.ENDPOINTS.get(endpoint, False))
        fault, effects = draw_faults(self, endpoint, n)
        if fault is not None and fault.kind == "hang":  # held unanswered: now drop the RPC
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        if fault is not None and fault.kind == "error":
            code = _status_code(fault.grpc_code)
            self.requests.record(endpoint, False, f"fault:error:{code.name}")
            context.abort(code, fault.message or f"injected {code.name}")
        if fault is not None:  # rate_limit
            self.requests.record(endpoint, False, "fault:rate_limit")
            ra = self.faults.retry_after_for(fault, self.time_scale)
            context.set_trailing_metadata((("retry-after", f"{ra:g}"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, fault.message or "rate limit exceeded")
        try:
            result = fn(effects)
        except _Abort as e:
            self.requests.record(endpoint, False, f"error:{e.code.name}")
            context.abort(e.code, e.details)
        if effects.lose_response:
            self.requests.record(endpoint, mutating, "fault:lose_response")
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        if effects.malformed:
            self.requests.record(endpoint, mutating, f"fault:malformed:{effects.malformed}")
            return spoil(result, effects.malformed)
        self.requests.record(endpoint, mutating, "ok")
        return result

    def _parent(self, parent_id: str) -> _Parent:
        p = self.parents.get(parent_id)
        if p is None:
            raise _Abort(grpc.StatusCode.PERMISSION_DENIED, f"Parent {parent_id} not found")
        return p

    def _instance(self, iid: str) -> tuple[_Parent, pb.Instance]:
        pid = self._where.get(iid)
        if pid is not None:
            parent = self.parents[pid]
            inst = parent.instances.get(iid)
            if inst is not None:
                return parent, inst
        raise _Abort(grpc.StatusCode.NOT_FOUND, f"Instance {iid} not found")

    def _operation(self, method: str, inst: pb.Instance) -> svc.Operation:
        iid = inst.metadata.id
        return svc.Operation(
            id=self._new_id(), parent_id=inst.metadata.parent_id, resource_id=iid,
            description=f"{method} instance {iid}", done=False,
            metadata=svc.OperationMetadata(service="InstanceService", method=method),
        )

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        def run() -> None:
            with self.lock:
                fn()

        self.scheduler.call_later(delay_s, run)

    def _present(self, parent: _Parent, inst: pb.Instance) -> bool:
        return parent.instances.get(inst.metadata.id) is inst and self.parents.get(parent.id) is parent

    # ---- InstanceService -----------------------------------------------------------------------
    def get_instance(self, request: svc.GetInstanceRequest) -> pb.Instance:
        with self.lock:
            _, inst = self._instance(request.id)
            out = pb.Instance()
            out.CopyFrom(inst)
            return out

    def list_instances(self, request: svc.ListInstancesRequest) -> svc.ListInstancesResponse:
        with self.lock:
            parent = self._parent(request.parent_id)
            resp = svc.ListInstancesResponse()
            resp.instances.extend(parent.instances.values())
            return resp

    def create_instance(self, request: svc.CreateInstanceRequest, key: str | None, fx: _Effects) -> svc.Operation:
        md, spec = request.metadata, request.spec
        with self.lock:
            if key is not None and key in self._idempotency:
                known = self._idempotency[key]
                pid = self._where.get(known)
                inst = self.parents[pid].instances.get(known) if pid in self.parents else None
                if inst is not None:
                    return self._operation("Create", inst)
                # the instance is gone; answer about it all the same (the key stays bound to it)
                gone = pb.Instance()
                gone.metadata.id, gone.metadata.parent_id = known, pid or md.parent_id
                return self._operation("Create", gone)
            parent = self._parent(md.parent_id)
            platform, preset = spec.resources.platform, spec.resources.preset
            if platform not in CATALOG:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Unknown platform: {platform}")
            if preset not in CATALOG[platform]:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Unknown preset: {preset}")
            policy = spec.reservation_policy.policy if spec.HasField("reservation_policy") else _AUTO
            ids = list(spec.reservation_policy.reservation_ids)
            chosen: pb.Reservation | None = None
            if policy != _FORBID:
                for r in parent.reservations:
                    eligible = (r.status.state == pb.RESERVATION_ACTIVE and r.spec.platform == platform
                                and r.spec.preset == preset and r.status.available_units > 0)
                    if eligible and (policy != _STRICT or r.metadata.id in ids):
                        chosen = r
                        break
                if chosen is None and policy == _STRICT:
                    raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                                 "No matching reservation available for STRICT policy")
            type_key = f"{platform}/{preset}"
            if chosen is None:
                if parent.on_demand.get(type_key, 0) <= 0:
                    raise _Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"No capacity for {type_key} in {parent.id}")
                parent.on_demand[type_key] -= 1
            else:
                chosen.status.used_units += 1
                chosen.status.available_units -= 1

            iid = self._new_id()
            n = len(parent.instances)
            now = int(time.time())
            inst = pb.Instance()
            m = inst.metadata
            m.id, m.parent_id, m.name, m.resource_version = iid, parent.id, md.name, 1
            m.created_at.seconds = now
            m.updated_at.seconds = now
            m.labels.update(md.labels)
            inst.spec.resources.platform, inst.spec.resources.preset = platform, preset
            subnet = spec.network_interfaces[0].subnet_id if len(spec.network_interfaces) else "subnet-default"
            ip = f"10.0.0.{20 + n}"
            inst.spec.network_interfaces.add(name="eth0", subnet_id=subnet, ip_address=ip)
            inst.spec.boot_disk.existing_disk_id = f"disk-{iid[:8]}"
            inst.spec.boot_disk.attach_mode = "READ_WRITE"
            inst.spec.cloud_init_user_data = spec.cloud_init_user_data
            inst.spec.stopped = spec.stopped
            if spec.HasField("reservation_policy"):
                inst.spec.reservation_policy.CopyFrom(spec.reservation_policy)
            else:
                inst.spec.reservation_policy.SetInParent()
            inst.status.state = pb.CREATING
            inst.status.reconciling = True
            inst.status.reservation_id = chosen.metadata.id if chosen is not None else ""
            parent.instances[iid] = inst
            self._where[iid] = parent.id
            if key is not None:
                self._idempotency[key] = iid

            def become_running() -> None:
                if not self._present(parent, inst):
                    return
                inst.status.reconciling = False
                if fx.fail_after_accept:
                    inst.status.state = pb.ERROR
                    return
                inst.status.state = pb.RUNNING
                m_now = len(parent.instances)
                del inst.status.network_interfaces[:]
                inst.status.network_interfaces.add(name="eth0", ip_address=ip, public_ip_address=f"185.0.0.{20 + m_now}")

            if not fx.never_complete:
                self._later(CREATE_DELAY_S, become_running)
            return self._operation("Create", inst)

    def delete_instance(self, request: svc.DeleteInstanceRequest, fx: _Effects) -> svc.Operation:
        with self.lock:
            parent, inst = self._instance(request.id)
            inst.status.state = pb.DELETING
            inst.status.reconciling = True

            def remove() -> None:
                if not self._present(parent, inst):
                    return
                del parent.instances[inst.metadata.id]
                self._where.pop(inst.metadata.id, None)
                r = parent.reservation(inst.status.reservation_id) if inst.status.reservation_id else None
                if r is not None:
                    _release(r)
                else:
                    key = f"{inst.spec.resources.platform}/{inst.spec.resources.preset}"
                    parent.on_demand[key] = parent.on_demand.get(key, 0) + 1

            if not fx.never_complete:
                self._later(TRANSITION_DELAY_S, remove)
            return self._operation("Delete", inst)

    def start_instance(self, request: svc.StartInstanceRequest, fx: _Effects) -> svc.Operation:
        with self.lock:
            parent, inst = self._instance(request.id)
            if inst.status.state != pb.STOPPED:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, "Instance not stopped")
            inst.status.state = pb.STARTING
            inst.status.reconciling = True

            def started() -> None:
                if self._present(parent, inst):
                    inst.status.state = pb.RUNNING
                    inst.status.reconciling = False

            if not fx.never_complete:
                self._later(TRANSITION_DELAY_S, started)
            return self._operation("Start", inst)

    def stop_instance(self, request: svc.StopInstanceRequest, fx: _Effects) -> svc.Operation:
        with self.lock:
            parent, inst = self._instance(request.id)
            if inst.status.state != pb.RUNNING:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, "Instance not running")
            inst.status.state = pb.STOPPING
            inst.status.reconciling = True

            def stopped() -> None:
                if not self._present(parent, inst):
                    return
                inst.status.state = pb.STOPPED
                inst.status.reconciling = False
                r = parent.reservation(inst.status.reservation_id) if inst.status.reservation_id else None
                if r is not None:
                    _release(r)

            if not fx.never_complete:
                self._later(TRANSITION_DELAY_S, stopped)
            return self._operation("Stop", inst)

    # ---- ReservationService --------------------------------------------------------------------
    def get_reservation(self, request: svc.GetReservationRequest) -> pb.Reservation:
        with self.lock:
            for parent in self.parents.values():
                r = parent.reservation(request.id)
                if r is not None:
                    out = pb.Reservation()
                    out.CopyFrom(r)
                    return out
        raise _Abort(grpc.StatusCode.NOT_FOUND, f"Reservation {request.id} not found")

    def list_reservations(self, request: svc.ListReservationsRequest) -> svc.ListReservationsResponse:
        with self.lock:
            parent = self._parent(request.parent_id)
            resp = svc.ListReservationsResponse()
            resp.reservations.extend(parent.reservations)
            return resp

    # ---- inspection helpers (tests, notebooks) -------------------------------------------------
    def on_demand(self, parent_id: str) -> dict[str, int]:
        with self.lock:
            return dict(self.parents[parent_id].on_demand)

    def instance_count(self, parent_id: str | None = None) -> int:
        with self.lock:
            if parent_id is not None:
                return len(self.parents[parent_id].instances)
            return sum(len(p.instances) for p in self.parents.values())

    def add_fault(self, fault: Fault) -> Fault:
        return self.faults.add(fault)


def _idempotency_key(context: grpc.ServicerContext) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == "x-idempotency-key" and isinstance(v, str) and v:
            return v
    return None


class _InstanceServicer(svc_grpc.InstanceServiceServicer):
    def __init__(self, sim: NebiusSim) -> None:
        self.sim = sim

    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.sim.serve("InstanceService/Get", context, lambda fx: self.sim.get_instance(request))

    def List(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.sim.serve("InstanceService/List", context, lambda fx: self.sim.list_instances(request))

    def Create(self, request: Any, context: grpc.ServicerContext) -> Any:
        key = _idempotency_key(context)
        return self.sim.serve("InstanceService/Create", context, lambda fx: self.sim.create_instance(request, key, fx))

    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.sim.serve("InstanceService/Delete", context, lambda fx: self.sim.delete_instance(request, fx))

    def Start(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.sim.serve("InstanceService/Start", context, lambda fx: self.sim.start_instance(request, fx))

    def Stop(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.sim.serve("InstanceService/Stop", context, lambda fx: self.sim.stop_instance(request, fx))


class _ReservationServicer(svc_grpc.ReservationServiceServicer):
    def __init__(self, sim: NebiusSim) -> None:
        self.sim = sim

    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.sim.serve("ReservationService/Get", context, lambda fx: self.sim.get_reservation(request))

    def List(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.sim.serve("ReservationService/List", context, lambda fx: self.sim.list_reservations(request))


_SEED_RESERVATIONS: tuple[Mapping[str, Any], ...] = (
    {"id": "rsv-neb-001", "parent_id": "project-e1a2b3c4", "name": "h100-8gpu-reserved", "labels": {"team": "ml"},
     "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-03-15T00:00:00Z",
     "platform": "gpu-h100-sxm", "preset": "8gpu-160vcpu-1600gb", "total_units": 3, "used_units": 1},
    {"id": "rsv-neb-002", "parent_id": "project-e1a2b3c4", "name": "h200-8gpu-reserved", "labels": {},
     "created_at": "2026-02-01T00:00:00Z", "updated_at": "2026-03-15T00:00:00Z",
     "platform": "gpu-h200-sxm", "preset": "8gpu-160vcpu-2048gb", "total_units": 2, "used_units": 0},
)

_SEED_INSTANCE: Mapping[str, Any] = {
    "name": "train-node-01", "parent_id": "project-e1a2b3c4", "labels": {"team": "ml", "env": "prod"},
    "created_at": "2026-03-15T08:00:00Z", "platform": "gpu-h100-sxm", "preset": "8gpu-160vcpu-1600gb",
    "subnet_id": "subnet-001", "ip_address": "10.0.0.10", "boot_disk": "disk-001", "state": "RUNNING",
    "public_ip_address": "185.0.0.10", "reservation_id": "rsv-neb-001",
}
