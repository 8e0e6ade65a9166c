"""Simulator of the Lambda Cloud reference server (contract §0.2 and §2).

A FastAPI app, like the reference ("Lambda Cloud API Mock", version "1.9.3"), so framework-level
behaviour comes for free and matches: 422 validation bodies evaluated before auth, 404
``{"detail":"Not Found"}``, 405 with an ``allow`` header, 307 trailing-slash redirects, ``/docs``,
``/redoc`` and ``/openapi.json``. Everything under ``/api/v1`` is fully synchronous: no timers, no
background transitions; live instances are always ``active``.

Endpoint names (for faults and counters, see ``ENDPOINTS``)::

    list_instances, get_instance, rename_instance*, list_instance_types, list_reservations,
    get_reservation, launch*, terminate*, restart*            (* = mutating)

Fault kinds that apply: ``error`` (500 -> ``global/internal-error``, 503 ->
``global/service-unavailable``, 429 -> ``global/rate-limited`` with Retry-After), ``rate_limit``
(429 ``global/rate-limited``; the real Lambda accepts about one launch per 12 s: use
``{endpoint: launch, kind: rate_limit, per_seconds: 12}``, scaled by the time scale), ``latency`` and
``lose_response`` (the mutation is committed, then the connection drops before the answer), ``hang``
(the call is held unanswered, nothing served, then the connection drops).
``never_complete`` and ``fail_after_accept`` do not apply to a synchronous API and are ignored here.
``malformed`` (with ``variant``) serves the call, then spoils a successful answer (see
``vmops.sim.common``); ``unknown_enum`` rewrites ``status``.

Scenario section (``lambda:`` in a scenario file), every key optional:

``on_demand``
    ``{region: {instance_type: count}}`` overriding the seeded on-demand counters (others keep seed values).
``reservations``
    list replacing the seeded reservations; entries ``{id, instance_type, region, quantity, used?,
    weeks_remaining?, start_date?, end_date?}``.
``instances``
    list replacing the three seeded instances (``[]`` = none); entries ``{name, region, instance_type,
    reservation_id?, ssh_key_names?, status?, id?, count?}``. ``count`` > 1 makes that many instances
    named ``name-0 .. name-(count-1)`` (handy for scale tests). ``status`` seeds any native status
    string (the reference only ever shows ``active``). Like the reference seeds, scenario instances do
    not consume on-demand counters or reservation slots: set ``used`` on the reservation yourself.
"""

# No `from __future__ import annotations`: FastAPI resolves the handler annotations at run time.

import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from vmops.sim.common import Fault, SimOptions
from vmops.sim.rest import AnswerMiddleware, FaultResponse, RestSimulator, guard

VALID_KEYS = ("lambda-test-key-001", "lambda-test-key-002")

# name, description, gpu_description, price_cents_per_hour, vcpus, memory_gib, storage_gib, gpus
_TYPES: tuple[tuple[str, str, str, int, int, int, int, int], ...] = (
    ("gpu_8x_a100", "8x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 1184, 124, 1800, 6144, 8),
    ("gpu_1x_a100", "1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 148, 16, 225, 768, 1),
    ("gpu_8x_h100", "8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2768, 208, 1800, 24780, 8),
    ("gpu_1x_h100", "1x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 346, 26, 225, 3096, 1),
)
_REGIONS: tuple[tuple[str, str], ...] = (
    ("us-west-1", "California, USA"),
    ("us-east-1", "Virginia, USA"),
    ("eu-west-1", "London, UK"),
)
_ON_DEMAND: dict[str, dict[str, int]] = {
    "us-west-1": {"gpu_8x_a100": 3, "gpu_1x_a100": 10, "gpu_8x_h100": 2, "gpu_1x_h100": 5},
    "us-east-1": {"gpu_8x_a100": 0, "gpu_1x_a100": 5, "gpu_8x_h100": 1, "gpu_1x_h100": 8},
    "eu-west-1": {"gpu_8x_a100": 1, "gpu_1x_a100": 3, "gpu_8x_h100": 0, "gpu_1x_h100": 2},
}
_RESERVATIONS: tuple[dict[str, Any], ...] = (
    {"id": "rsv-lambda-001", "instance_type": "gpu_8x_h100", "region": "us-west-1", "quantity": 2, "used": 1,
     "weeks_remaining": 38, "start_date": "2026-01-15", "end_date": "2026-12-31"},
    {"id": "rsv-lambda-002", "instance_type": "gpu_1x_a100", "region": "us-east-1", "quantity": 4, "used": 0,
     "weeks_remaining": 20, "start_date": "2026-02-01", "end_date": "2026-09-30"},
)
_SEED_INSTANCES: tuple[dict[str, Any], ...] = (
    {"name": "training-node-1", "region": "us-west-1", "instance_type": "gpu_8x_a100"},
    {"name": "dev-box", "region": "us-east-1", "instance_type": "gpu_1x_h100"},
    {"name": "reserved-h100-node", "region": "us-west-1", "instance_type": "gpu_8x_h100",
     "reservation_id": "rsv-lambda-001"},
)

_AUTH_ERROR = {"code": "global/invalid-api-key", "message": "API key was invalid, expired, or deleted.",
               "suggestion": "Check your API key or create a new one, then try again."}


def _type_obj(t: tuple[str, str, str, int, int, int, int, int]) -> dict[str, Any]:
    return {"name": t[0], "description": t[1], "gpu_description": t[2], "price_cents_per_hour": t[3],
            "specs": {"vcpus": t[4], "memory_gib": t[5], "storage_gib": t[6], "gpus": t[7]}}


TYPE_OBJECTS: dict[str, dict[str, Any]] = {t[0]: _type_obj(t) for t in _TYPES}
REGION_OBJECTS: dict[str, dict[str, str]] = {n: {"name": n, "description": d} for n, d in _REGIONS}


class LambdaApiError(Exception):
    """An endpoint error, answered as ``{"detail":{"error":{code, message[, suggestion]}}}``."""

    def __init__(self, status: int, code: str, message: str, suggestion: str | None = None) -> None:
        self.status = status
        self.error: dict[str, str] = {"code": code, "message": message}
        if suggestion is not None:
            self.error["suggestion"] = suggestion
        super().__init__(message)


def _not_found(message: str) -> LambdaApiError:
    return LambdaApiError(404, "global/object-does-not-exist", message)


def _invalid(message: str) -> LambdaApiError:
    return LambdaApiError(400, "global/invalid-parameters", message)


@dataclass
class _Instance:
    id: str
    name: Any
    ip: str
    private_ip: str
    status: str
    ssh_key_names: list[str]
    region: str
    instance_type: str
    hostname: Any
    jupyter_token: str
    jupyter_url: str
    reservation_id: str | None = None

    def wire(self, status: str | None = None) -> dict[str, Any]:
        reserved = self.reservation_id is not None
        return {
            "id": self.id,
            "name": self.name,
            "ip": self.ip,
            "private_ip": self.private_ip,
            "status": status or self.status,
            "ssh_key_names": list(self.ssh_key_names),
            "file_system_names": [],
            "region": dict(REGION_OBJECTS[self.region]),
            "instance_type": _type_obj_copy(self.instance_type),
            "hostname": self.hostname,
            "jupyter_token": self.jupyter_token,
            "jupyter_url": self.jupyter_url,
            "is_reserved": reserved,
            "reservation_id": self.reservation_id,
            "actions": {
                "migrate": {"available": True},
                "rebuild": {"available": True},
                "restart": {"available": True},
                "cold_reboot": {"available": True},
                "terminate": {"available": not reserved},
            },
            "tags": [],
        }


def _type_obj_copy(name: str) -> dict[str, Any]:
    t = TYPE_OBJECTS[name]
    return {**t, "specs": dict(t["specs"])}


@dataclass
class _Reservation:
    id: str
    instance_type: str
    region: str
    quantity: int
    used: int = 0
    weeks_remaining: int = 0
    start_date: str = "2026-01-01"
    end_date: str = "2026-12-31"

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "instance_type": self.instance_type, "region": self.region,
                "quantity": self.quantity, "used": self.used, "weeks_remaining": self.weeks_remaining,
                "start_date": self.start_date, "end_date": self.end_date}


@dataclass
class _State:
    instances: dict[str, _Instance] = field(default_factory=dict)  # creation order
    on_demand: dict[tuple[str, str], int] = field(default_factory=dict)  # (region, type) -> count
    reservations: dict[str, _Reservation] = field(default_factory=dict)


class LambdaSim(RestSimulator):
    """The Lambda Cloud reference server, in process. See the module docstring for knobs."""

    name: ClassVar[str] = "lambda"
    default_port: ClassVar[int] = 8002
    ENDPOINTS: ClassVar[Mapping[str, bool]] = {
        "list_instances": False,
        "get_instance": False,
        "rename_instance": True,
        "list_instance_types": False,
        "list_reservations": False,
        "get_reservation": False,
        "launch": True,
        "terminate": True,
        "restart": True,
    }

    def __init__(self, options: SimOptions | None = None) -> None:
        self.state = _State()
        super().__init__(options)
        self.app = self._build_app()

    # -- seed state ------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def seed_state(self) -> None:
        sc = self.options.scenario or {}
        with self.lock:
            st = _State()
            for region, row in _ON_DEMAND.items():
                for tname, count in row.items():
                    st.on_demand[(region, tname)] = count
            for region, row in (sc.get("on_demand") or {}).items():
                if region not in REGION_OBJECTS:
                    raise ValueError(f"lambda scenario: unknown region {region!r} in on_demand")
                for tname, count in row.items():
                    if tname not in TYPE_OBJECTS:
                        raise ValueError(f"lambda scenario: unknown instance type {tname!r} in on_demand")
                    st.on_demand[(region, tname)] = int(count)
            rsvs = sc["reservations"] if "reservations" in sc else _RESERVATIONS
            for r in rsvs:
                rsv = _Reservation(
                    id=str(r["id"]), instance_type=str(r["instance_type"]), region=str(r["region"]),
                    quantity=int(r["quantity"]), used=int(r.get("used", 0)),
                    weeks_remaining=int(r.get("weeks_remaining", 0)),
                    start_date=str(r.get("start_date", "2026-01-01")), end_date=str(r.get("end_date", "2026-12-31")),
                )
                st.reservations[rsv.id] = rsv
            self.state = st
            seeds = sc["instances"] if "instances" in sc else _SEED_INSTANCES
            for spec in seeds:
                region, tname = str(spec["region"]), str(spec["instance_type"])
                if region not in REGION_OBJECTS or tname not in TYPE_OBJECTS:
                    raise ValueError(f"lambda scenario: instance {spec.get('name')!r} has an unknown region/type")
                count = int(spec.get("count", 1))
                for i in range(count):
                    name = spec["name"] if count == 1 else f"{spec['name']}-{i}"
                    inst = self._make_instance(
                        name, region, tname, list(spec.get("ssh_key_names", ["default-key"])),
                        spec.get("reservation_id"), status=str(spec.get("status", "active")),
                    )
                    if count == 1 and spec.get("id"):
                        del st.instances[inst.id]
                        inst.id = str(spec["id"])
                        st.instances[inst.id] = inst

    def _make_instance(self, name: Any, region: str, tname: str, ssh_keys: list[str],
                       reservation_id: str | None, status: str = "active") -> _Instance:
        n = len(self.state.instances)
        inst = _Instance(
            id=self._new_id(), name=name, ip=f"198.51.100.{10 + n}", private_ip=f"10.0.2.{10 + n}",
            status=status, ssh_key_names=ssh_keys, region=region, instance_type=tname, hostname=name,
            jupyter_token=self._hex(32), jupyter_url=f"https://jupyter-{self._hex(16)}.lambdaspaces.com",
            reservation_id=reservation_id,
        )
        self.state.instances[inst.id] = inst
        return inst

    # -- read helpers for tests and tools ----------------------------------------------------------
    def on_demand(self, region: str, instance_type: str) -> int:
        with self.lock:
            return self.state.on_demand[(region, instance_type)]

    def reservation_used(self, reservation_id: str) -> int:
        with self.lock:
            return self.state.reservations[reservation_id].used

    def instance_ids(self) -> list[str]:
        with self.lock:
            return list(self.state.instances)

    # -- endpoint logic (called with the wire already validated) -----------------------------------
    def _auth(self, authorization: str | None) -> None:
        key = (authorization or "").replace("Bearer ", "").replace("Basic ", "")
        if key not in VALID_KEYS:
            raise LambdaApiError(401, **_AUTH_ERROR)

    def _instance(self, iid: str) -> _Instance:
        inst = self.state.instances.get(iid)
        if inst is None:
            raise _not_found("Specified instance does not exist.")
        return inst

    def list_instances_wire(self) -> dict[str, Any]:
        with self.lock:
            return {"data": [i.wire() for i in self.state.instances.values()]}

    def get_instance_wire(self, iid: str) -> dict[str, Any]:
        with self.lock:
            return {"data": self._instance(iid).wire()}

    def rename_wire(self, iid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            inst = self._instance(iid)
            if "name" in body:
                inst.name = body["name"]
            return {"data": inst.wire()}

    def instance_types_wire(self) -> dict[str, Any]:
        with self.lock:
            data = {}
            for tname in TYPE_OBJECTS:
                regions = [dict(REGION_OBJECTS[r]) for r in REGION_OBJECTS
                           if self.state.on_demand.get((r, tname), 0) > 0]
                data[tname] = {"instance_type": _type_obj_copy(tname), "regions_with_capacity_available": regions}
            return {"data": data}

    def reservations_wire(self) -> dict[str, Any]:
        with self.lock:
            return {"data": [r.wire() for r in self.state.reservations.values()]}

    def reservation_wire(self, rid: str) -> dict[str, Any]:
        with self.lock:
            rsv = self.state.reservations.get(rid)
            if rsv is None:
                raise _not_found("Specified reservation does not exist.")
            return {"data": rsv.wire()}

    def launch_wire(self, *, region_name: str, instance_type_name: str, ssh_key_names: list[str],
                    name: str | None, quantity: int, reservation_id: str | None) -> dict[str, Any]:
        with self.lock:
            st = self.state
            if instance_type_name not in TYPE_OBJECTS:
                raise _invalid(f"Unknown instance type: {instance_type_name}")
            if region_name not in REGION_OBJECTS:
                raise _invalid(f"Unknown region: {region_name}")
            if reservation_id:
                rsv = st.reservations.get(reservation_id)
                if rsv is None:
                    raise _not_found(f"Reservation {reservation_id} does not exist.")
                if rsv.instance_type != instance_type_name:
                    raise _invalid(f"Reservation is for {rsv.instance_type}, not {instance_type_name}.")
                if rsv.region != region_name:
                    raise _invalid(f"Reservation is in {rsv.region}, not {region_name}.")
                remaining = rsv.quantity - rsv.used
                if remaining < quantity:
                    raise LambdaApiError(400, "instance-operations/launch/insufficient-capacity",
                                         f"Reservation has {remaining} slots, requested {quantity}.",
                                         "Reduce quantity or use on-demand.")
                rsv.used += quantity
            else:
                reservation_id = None
                key = (region_name, instance_type_name)
                available = st.on_demand.get(key, 0)
                if available < quantity:
                    raise LambdaApiError(400, "instance-operations/launch/insufficient-capacity",
                                         f"Insufficient capacity. Requested {quantity}, available {available}.",
                                         "Try a different region or instance type.")
                st.on_demand[key] = available - quantity
            base = name if name else instance_type_name
            ids = []
            for i in range(quantity):
                iname = base if quantity == 1 else f"{base}-{i}"
                ids.append(self._make_instance(iname, region_name, instance_type_name, list(ssh_key_names),
                                               reservation_id).id)
            return {"data": {"instance_ids": ids}}

    def terminate_wire(self, ids: list[str]) -> dict[str, Any]:
        with self.lock:
            st = self.state
            done = []
            for iid in ids:
                inst = st.instances.get(iid)
                if inst is None:
                    raise _not_found(f"Instance {iid} does not exist.")
                if inst.reservation_id is not None:
                    raise LambdaApiError(400, "instance-operations/terminate/reserved-instance",
                                         f"Instance {iid} is a reserved instance and cannot be terminated via API.",
                                         "Contact support to manage reserved instances.")
                del st.instances[iid]
                key = (inst.region, inst.instance_type)
                st.on_demand[key] = st.on_demand.get(key, 0) + 1
                inst.status = "terminated"
                done.append(inst.wire())
            return {"data": {"terminated_instances": done}}

    def restart_wire(self, ids: list[str]) -> dict[str, Any]:
        with self.lock:
            done = []
            for iid in ids:
                inst = self.state.instances.get(iid)
                if inst is None:
                    raise _not_found(f"Instance {iid} does not exist.")
                inst.status = "active"
                done.append(inst.wire())
            return {"data": {"restarted_instances": done}}

    # -- server ----------------------------------------------------------------------------------
    def _build_app(self) -> Any:
        from fastapi import Body, FastAPI, Request
        from fastapi.responses import JSONResponse
        from pydantic import BaseModel

        sim = self
        app = FastAPI(title="Lambda Cloud API Mock", version="1.9.3")
        app.add_middleware(AnswerMiddleware, sim=sim, enum_fields=("status",))

        class LaunchRequest(BaseModel):
            region_name: str
            instance_type_name: str
            ssh_key_names: list[str]
            name: str | None = None
            hostname: str | None = None
            quantity: int = 1
            reservation_id: str | None = None

        class InstanceIdsRequest(BaseModel):
            instance_ids: list[str]

        @app.exception_handler(LambdaApiError)
        def _api_error(request: Request, exc: LambdaApiError) -> JSONResponse:
            return JSONResponse({"detail": {"error": exc.error}}, status_code=exc.status)

        @app.exception_handler(FaultResponse)
        def _fault(request: Request, exc: FaultResponse) -> JSONResponse:
            return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

        def enter(endpoint: str, request: Request) -> None:
            guard(sim, endpoint, request.scope, _fault_body)
            sim._auth(request.headers.get("authorization"))

        @app.get("/api/v1/instances")
        def list_instances(request: Request) -> JSONResponse:
            enter("list_instances", request)
            return JSONResponse(sim.list_instances_wire())

        @app.get("/api/v1/instances/{instance_id}")
        def get_instance(instance_id: str, request: Request) -> JSONResponse:
            enter("get_instance", request)
            return JSONResponse(sim.get_instance_wire(instance_id))

        @app.post("/api/v1/instances/{instance_id}")
        def rename_instance(instance_id: str, request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:
            enter("rename_instance", request)
            return JSONResponse(sim.rename_wire(instance_id, body))

        @app.get("/api/v1/instance-types")
        def list_instance_types(request: Request) -> JSONResponse:
            enter("list_instance_types", request)
            return JSONResponse(sim.instance_types_wire())

        @app.get("/api/v1/reservations")
        def list_reservations(request: Request) -> JSONResponse:
            enter("list_reservations", request)
            return JSONResponse(sim.reservations_wire())

        @app.get("/api/v1/reservations/{reservation_id}")
        def get_reservation(reservation_id: str, request: Request) -> JSONResponse:
            enter("get_reservation", request)
            return JSONResponse(sim.reservation_wire(reservation_id))

        @app.post("/api/v1/instance-operations/launch")
        def launch(body: LaunchRequest, request: Request) -> JSONResponse:
            enter("launch", request)
            return JSONResponse(sim.launch_wire(
                region_name=body.region_name, instance_type_name=body.instance_type_name,
                ssh_key_names=body.ssh_key_names, name=body.name, quantity=body.quantity,
                reservation_id=body.reservation_id,
            ))

        @app.post("/api/v1/instance-operations/terminate")
        def terminate(body: InstanceIdsRequest, request: Request) -> JSONResponse:
            enter("terminate", request)
            return JSONResponse(sim.terminate_wire(body.instance_ids))

        @app.post("/api/v1/instance-operations/restart")
        def restart(body: InstanceIdsRequest, request: Request) -> JSONResponse:
            enter("restart", request)
            return JSONResponse(sim.restart_wire(body.instance_ids))

        return app

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("lambda simulator is not started")
        return f"{self.scheme}://127.0.0.1:{self.port}"


_FAULT_MESSAGES = {
    "global/rate-limited": "Too many requests. Please slow down and try again later.",
    "global/service-unavailable": "The service is temporarily unavailable. Please try again later.",
    "global/internal-error": "An internal error occurred. Please try again later.",
}


def _fault_body(fault: Fault, status: int) -> dict[str, Any]:
    if status == 429:
        code = "global/rate-limited"
    elif status == 503:
        code = "global/service-unavailable"
    else:
        code = "global/internal-error"
    return {"detail": {"error": {"code": code, "message": fault.message or _FAULT_MESSAGES[code]}}}
