"""Simulator of the Crusoe reference server (REST, FastAPI), per ../shared/provider-apis.md §0.2 and §1.

It reproduces the wire exactly: routes in the reference order (so ``GET .../instances/operations`` is
shadowed by get-instance), FastAPI's 422/404/405/307 behaviour and /docs, check order
route -> validation (422) -> auth (401) -> project (403) -> endpoint, error bodies under ``detail``, the
seed data, the global on-demand pool shared by all projects, per-project reservations, auto-placement and
every counter effect of §1.5 (double release, on-demand inflation, START re-labelling), the IP formulas
and the background timers of §1.4 (scaled by the time scale; one scheduler thread, no per-VM threads).

Fault injection (see ``vmops.sim.common``) uses the endpoint names in ``CrusoeSim.ENDPOINTS``. Every call
is counted before auth (auth failures count too); faults apply before the endpoint logic.

* ``error`` -> the given status with ``{"detail":{"code":"UNAVAILABLE"|"RESOURCE_EXHAUSTED"|"INTERNAL",
  "message":...}}`` (429 adds ``Retry-After``); ``rate_limit`` -> 429 with ``Retry-After``.
* ``never_complete`` -> the operation stays ``IN_PROGRESS`` and the VM stays in its transitional state.
* ``fail_after_accept`` (create only) -> at +2 s the operation becomes ``"state":"FAILED"`` with
  ``completed_at`` set and an extra ``"result":{"code":"out_of_stock","message":...}``, and the VM is
  removed with its capacity returned. The real Crusoe API reports such failures; the reference server never
  does (its operations only ever reach SUCCEEDED), so this shape appears only under this fault.
* ``lose_response`` -> the change is committed, then the connection is dropped before the answer.
* ``hang`` -> the call is held unanswered (nothing served), then the connection is dropped.
* ``malformed`` (with ``variant``) -> the call is served, then a successful answer is spoiled (see
  ``vmops.sim.common``); ``unknown_enum`` rewrites ``state``, ``billing_type``, ``status`` and ``action``.

Scenario section (``crusoe:`` in a scenario file), every key optional:

* ``on_demand``: ``{location: {type: count}}`` overrides of the global on-demand counters (a new location
  is appended to the location list).
* ``reservations``: list of reservation dicts replacing the seed. Keys as on the wire (``id``, ``vm_type``,
  ``location``, ``total_gpus``; optional ``name``, ``status`` (ACTIVE), ``gpu_type``, ``used_gpus`` (0),
  ``unit_price_per_gpu_hour_usd``, ``start_date``, ``end_date``) plus ``project`` (default: first project).
* ``instances``: list of instance dicts replacing the seeded VM (``[]`` = none). Keys as on the wire
  (``name``, ``type``, ``location`` required; ``state`` STATE_RUNNING, IPs, ``ssh_key``, ``reservation_id``
  ...) plus ``project``. Ids are always fresh. Counters are NOT adjusted for them: give ``used_gpus`` /
  ``on_demand`` accordingly (like the seed, where rsv-001's 8 used GPUs are the seeded VM's). ``count: n``
  (n > 1) makes n such instances named ``<name>-0 .. <name>-(n-1)`` (scale tests and benchmarks with
  thousands of VMs).
* ``projects``: list of valid project ids (default ``["proj-001", "proj-002"]``).
"""


import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Optional

from vmops.sim.common import Fault, SimOptions
from vmops.sim.rest import AnswerMiddleware, FaultResponse, RestSimulator, guard

PREFIX = "/v1alpha5/projects/{project_id}"
VALID_KEYS = ("crusoe-test-key-001", "crusoe-test-key-002")
DEFAULT_PROJECTS = ("proj-001", "proj-002")

RUNNING = "STATE_RUNNING"
CREATING = "STATE_CREATING"
STOPPING = "STATE_STOPPING"
STOPPED = "STATE_STOPPED"
STARTING = "STATE_STARTING"
DELETING = "STATE_DELETING"


@dataclass(frozen=True)
class VmType:
    type: str
    description: str
    gpu_type: str
    gpu_count: int
    vcpu_count: int
    memory_gib: int
    price_per_hour_usd: float


VM_TYPES: dict[str, VmType] = {
    t.type: t
    for t in (
        VmType("a100.1x", "1x A100 40GB", "A100", 1, 12, 85, 1.48),
        VmType("a100.8x", "8x A100 40GB", "A100", 8, 96, 680, 11.84),
        VmType("h100.1x", "1x H100 80GB", "H100", 1, 16, 128, 3.46),
        VmType("h100.8x", "8x H100 80GB", "H100", 8, 192, 1440, 27.68),
    )
}
SEED_LOCATIONS = ("us-east1", "us-west1", "eu-west1")
SEED_ON_DEMAND: dict[str, dict[str, int]] = {
    "us-east1": {"a100.1x": 5, "a100.8x": 2, "h100.1x": 8, "h100.8x": 1},
    "us-west1": {"a100.1x": 10, "a100.8x": 3, "h100.1x": 4, "h100.8x": 2},
    "eu-west1": {"a100.1x": 3, "a100.8x": 1, "h100.1x": 2, "h100.8x": 0},
}
SEED_RESERVATIONS: tuple[dict[str, Any], ...] = (
    {"id": "rsv-001", "name": "8x a100-40gb @ $9.50/gpu/hr (rsv-001)", "status": "ACTIVE", "vm_type": "a100.8x",
     "gpu_type": "A100", "location": "us-west1", "total_gpus": 16, "used_gpus": 8,
     "unit_price_per_gpu_hour_usd": 9.5, "start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-31T23:59:59Z"},
    {"id": "rsv-002", "name": "8x h100-80gb @ $22.00/gpu/hr (rsv-002)", "status": "ACTIVE", "vm_type": "h100.8x",
     "gpu_type": "H100", "location": "us-west1", "total_gpus": 32, "used_gpus": 0,
     "unit_price_per_gpu_hour_usd": 22.0, "start_date": "2026-02-01T00:00:00Z", "end_date": "2027-01-31T23:59:59Z"},
    {"id": "rsv-003", "name": "1x a100-40gb @ $1.20/gpu/hr (rsv-003)", "status": "EXPIRED", "vm_type": "a100.1x",
     "gpu_type": "A100", "location": "us-east1", "total_gpus": 4, "used_gpus": 0,
     "unit_price_per_gpu_hour_usd": 1.2, "start_date": "2025-06-01T00:00:00Z", "end_date": "2025-12-31T23:59:59Z"},
)
SEED_INSTANCE: dict[str, Any] = {
    "name": "gpu-worker-1", "type": "a100.8x", "location": "us-west1", "state": RUNNING,
    "ip_address": "203.0.113.10", "private_ip_address": "10.100.0.10", "created_at": "2026-03-15T10:00:00Z",
    "ssh_key": "default-key", "startup_script": None, "reservation_id": "rsv-001", "billing_type": "reserved",
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(eq=False)
class Reservation:
    id: str
    name: str
    status: str
    vm_type: str
    gpu_type: str
    location: Optional[str]
    total_gpus: int
    used_gpus: int
    unit_price_per_gpu_hour_usd: float
    start_date: str
    end_date: str
    order: int = 0

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "vm_type": self.vm_type,
                "gpu_type": self.gpu_type, "location": self.location, "total_gpus": self.total_gpus,
                "used_gpus": self.used_gpus, "unit_price_per_gpu_hour_usd": self.unit_price_per_gpu_hour_usd,
                "start_date": self.start_date, "end_date": self.end_date}


@dataclass(eq=False)
class Vm:
    id: str
    name: str
    type: str
    location: str
    state: str
    ip_address: str
    private_ip_address: str
    created_at: str
    ssh_key: str
    startup_script: Optional[str]
    reservation_id: Optional[str]
    billing_type: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "location": self.location,
                "state": self.state, "ip_address": self.ip_address, "private_ip_address": self.private_ip_address,
                "created_at": self.created_at, "ssh_key": self.ssh_key, "startup_script": self.startup_script,
                "disks": [], "reservation_id": self.reservation_id, "billing_type": self.billing_type}


@dataclass(eq=False)
class Operation:
    operation_id: str
    resource_id: str
    action: str
    created_at: str
    state: str = "IN_PROGRESS"
    completed_at: Optional[str] = None
    result: Optional[dict[str, str]] = None

    def wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"operation_id": self.operation_id, "state": self.state,
                             "resource_id": self.resource_id, "action": self.action,
                             "created_at": self.created_at, "completed_at": self.completed_at}
        if self.result is not None:
            d["result"] = dict(self.result)
        return d


@dataclass(eq=False)
class Project:
    id: str
    instances: dict[str, Vm] = field(default_factory=dict)  # insertion order = creation order
    operations: dict[str, Operation] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)  # seed order


class ApiError(Exception):
    """An endpoint error, rendered as ``{"detail":{"code","message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _not_found(kind: str, ident: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{kind} {ident} not found")


_FAULT_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}


def _fault_body(fault: Fault, status: int) -> dict[str, Any]:
    code = _FAULT_CODES.get(status, "UNAVAILABLE" if status >= 500 else "INVALID_ARGUMENT")
    default = {"RESOURCE_EXHAUSTED": "Rate limit exceeded, retry later", "INTERNAL": "Internal error",
               "UNAVAILABLE": "Service temporarily unavailable"}.get(code, "Injected error")
    return {"detail": {"code": code, "message": fault.message or default}}


class CrusoeSim(RestSimulator):
    """The Crusoe reference server, in process. ``CrusoeSim(options).start(port)``."""

    name: ClassVar[str] = "crusoe"
    default_port: ClassVar[int] = 8001
    ENDPOINTS: ClassVar[dict[str, bool]] = {
        "list_reservations": False,
        "get_reservation": False,
        "list_vm_types": False,
        "get_capacity": False,
        "list_instances": False,
        "get_instance": False,
        "create_instance": True,
        "patch_instance": True,
        "reboot_instance": True,
        "reset_instance": True,
        "restart_instance": True,
        "delete_instance": True,
        "get_operation": False,
    }

    def __init__(self, options: SimOptions | None = None) -> None:
        self._gen = 0
        super().__init__(options)
        self.app = self._build_app()

    # ------------------------------------------------------------------ state
    def seed_state(self) -> None:
        sc = dict(self.options.scenario or {})
        with self.lock:
            self._gen += 1
            self._ip_salt = self.rng.getrandbits(32).to_bytes(4, "big")
            self.projects: dict[str, Project] = {p: Project(p) for p in sc.get("projects") or DEFAULT_PROJECTS}
            first = next(iter(self.projects.values()))
            self.locations: list[str] = list(SEED_LOCATIONS)
            self.on_demand: dict[tuple[str, str], int] = {
                (loc, t): n for loc, row in SEED_ON_DEMAND.items() for t, n in row.items()
            }
            for loc, row in (sc.get("on_demand") or {}).items():
                if loc not in self.locations:
                    self.locations.append(loc)
                for t, n in (row or {}).items():
                    self.on_demand[(loc, t)] = int(n)
            reservations = sc.get("reservations")
            if reservations is None:
                for i, r in enumerate(SEED_RESERVATIONS):
                    first.reservations[r["id"]] = Reservation(**r, order=i)
            else:
                for i, r in enumerate(reservations):
                    proj = self.projects[r.get("project", first.id)]
                    vt = VM_TYPES.get(r["vm_type"])
                    proj.reservations[r["id"]] = Reservation(
                        id=r["id"], name=r.get("name", r["id"]), status=r.get("status", "ACTIVE"),
                        vm_type=r["vm_type"], gpu_type=r.get("gpu_type", vt.gpu_type if vt else ""),
                        location=r.get("location"), total_gpus=int(r["total_gpus"]),
                        used_gpus=int(r.get("used_gpus", 0)),
                        unit_price_per_gpu_hour_usd=float(r.get("unit_price_per_gpu_hour_usd", 1.0)),
                        start_date=r.get("start_date", "2026-01-01T00:00:00Z"),
                        end_date=r.get("end_date", "2026-12-31T23:59:59Z"), order=i)
            instances = sc.get("instances")
            for spec, name in _expand(([SEED_INSTANCE] if instances is None else instances)):
                proj = self.projects[spec.get("project", first.id)]
                n = len(proj.instances)
                rid = spec.get("reservation_id")
                vm = Vm(id=self._new_id(), name=name, type=spec["type"], location=spec["location"],
                        state=spec.get("state", RUNNING),
                        ip_address=spec.get("ip_address", f"203.0.113.{100 + n}"),
                        private_ip_address=spec.get("private_ip_address", f"10.100.0.{100 + n}"),
                        created_at=spec.get("created_at", _now()), ssh_key=spec.get("ssh_key", "default-key"),
                        startup_script=spec.get("startup_script"), reservation_id=rid,
                        billing_type=spec.get("billing_type", "reserved" if rid else "on_demand"))
                proj.instances[vm.id] = vm

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` under the lock ``delay_s`` (unscaled) seconds from now, unless the sim was reset."""
        gen = self._gen

        def run() -> None:
            with self.lock:
                if self._gen == gen:
                    fn()

        self.scheduler.call_later(delay_s, run)

    # ------------------------------------------------------------------ checks
    def _enter(self, endpoint: str, request: Any, project_id: str) -> tuple[Any, Project]:
        effects = guard(self, endpoint, request.scope, _fault_body)
        auth = request.headers.get("authorization")
        if not auth:
            raise ApiError(401, "UNAUTHENTICATED", "Missing authorization header")
        if auth.replace("Bearer ", "") not in VALID_KEYS:
            raise ApiError(401, "UNAUTHENTICATED", "Invalid API key")
        proj = self.projects.get(project_id)
        if proj is None:
            raise ApiError(403, "PERMISSION_DENIED", f"Project {project_id} not found")
        return effects, proj

    @staticmethod
    def _vm(proj: Project, vm_id: str) -> Vm:
        vm = proj.instances.get(vm_id)
        if vm is None:
            raise _not_found("Instance", vm_id)
        return vm

    # ------------------------------------------------------------------ counters (§1.5)
    def _eligible(self, r: Reservation, vm_type: str, location: str) -> bool:
        gpus = VM_TYPES[vm_type].gpu_count
        return (r.status == "ACTIVE" and r.vm_type == vm_type and (r.location is None or r.location == location)
                and r.used_gpus + gpus <= r.total_gpus)

    def _release(self, proj: Project, vm: Vm) -> None:
        r = proj.reservations.get(vm.reservation_id) if vm.reservation_id else None
        if r is not None:
            r.used_gpus = max(0, r.used_gpus - VM_TYPES[vm.type].gpu_count)

    def _active_reservation(self, proj: Project, vm: Vm) -> Reservation | None:
        r = proj.reservations.get(vm.reservation_id) if vm.reservation_id else None
        return r if r is not None and r.status == "ACTIVE" else None

    def _remove(self, proj: Project, vm: Vm) -> None:
        """Delete completion: VM removed, reservation release, on-demand return (if still stored)."""
        if proj.instances.get(vm.id) is not vm:
            return
        del proj.instances[vm.id]
        self._release(proj, vm)
        if vm.billing_type == "on_demand":
            key = (vm.location, vm.type)
            self.on_demand[key] = self.on_demand.get(key, 0) + 1

    def _new_op(self, proj: Project, vm_id: str, action: str, never_complete: bool) -> Operation:
        op = Operation(self._new_id(), vm_id, action, _now())
        proj.operations[op.operation_id] = op
        if not never_complete:
            def succeed() -> None:
                if op.state == "IN_PROGRESS":
                    op.state, op.completed_at = "SUCCEEDED", _now()
            self._later(2.0, succeed)
        return op

    def restart_ip(self, vm_id: str) -> str:
        return f"203.0.113.{200 + zlib.crc32(self._ip_salt + vm_id.encode()) % 50}"

    # ------------------------------------------------------------------ endpoint logic
    def list_reservations(self, proj: Project, status: str | None) -> list[dict[str, Any]]:
        wanted = set(status.split(",")) if status else None
        return [r.wire() for r in proj.reservations.values() if wanted is None or r.status in wanted]

    def capacity_rows(self, proj: Project) -> list[dict[str, Any]]:
        rows = []
        for loc in self.locations:
            for t, vt in VM_TYPES.items():
                od = self.on_demand.get((loc, t), 0)
                rsv = sum((r.total_gpus - r.used_gpus) // vt.gpu_count for r in proj.reservations.values()
                          if r.status == "ACTIVE" and r.vm_type == t and (r.location is None or r.location == loc))
                rows.append({"location": loc, "vm_type": t, "on_demand_available": od,
                             "reserved_available": rsv, "total_available": od + rsv})
        return rows

    def vm_types(self) -> list[dict[str, Any]]:
        out = []
        for t, vt in VM_TYPES.items():
            out.append({"type": vt.type, "description": vt.description, "gpu_type": vt.gpu_type,
                        "gpu_count": vt.gpu_count, "vcpu_count": vt.vcpu_count, "memory_gib": vt.memory_gib,
                        "price_per_hour_usd": vt.price_per_hour_usd,
                        "available_locations": [loc for loc in self.locations if self.on_demand.get((loc, t), 0) > 0]})
        return out

    def list_instances(self, proj: Project, states: str | None, types: str | None, locations: str | None,
                       names: str | None, limit: int | None) -> list[dict[str, Any]]:
        vms: list[Vm] = list(proj.instances.values())
        for attr, value in (("state", states), ("type", types), ("location", locations), ("name", names)):
            if value:
                allowed = set(value.split(","))
                vms = [v for v in vms if getattr(v, attr) in allowed]
        if limit:
            vms = vms[:limit]
        return [v.wire() for v in vms]

    def create(self, proj: Project, body: dict[str, Any], effects: Any) -> dict[str, Any]:
        vm_type, location = body["type"], body["location"]
        if vm_type not in VM_TYPES:
            raise ApiError(400, "INVALID_ARGUMENT", f"Unknown VM type: {vm_type}")
        if location not in self.locations:
            raise ApiError(400, "INVALID_ARGUMENT", f"Unknown location: {location}")
        gpus = VM_TYPES[vm_type].gpu_count
        rid = body.get("reservation_id")
        chosen: Reservation | None = None
        if rid:
            r = proj.reservations.get(rid)
            if r is None or not self._eligible(r, vm_type, location):
                raise ApiError(400, "FAILED_PRECONDITION",
                               f"Reservation {rid} not available for {vm_type} in {location}. Check reservation "
                               "status, type, location, and remaining capacity.")
            chosen = r
        else:
            eligible = [r for r in proj.reservations.values() if self._eligible(r, vm_type, location)]
            if eligible:
                chosen = min(eligible, key=lambda r: (r.unit_price_per_gpu_hour_usd,
                                                      -(r.total_gpus - r.used_gpus), r.order))
        key = (location, vm_type)
        if chosen is None and self.on_demand.get(key, 0) <= 0:
            raise ApiError(400, "RESOURCE_EXHAUSTED",
                           f"No capacity for {vm_type} in {location}. No on-demand or reserved capacity available.")
        if chosen is not None:
            chosen.used_gpus += gpus
        else:
            self.on_demand[key] = self.on_demand.get(key, 0) - 1
        n = len(proj.instances)
        now = _now()
        vm = Vm(id=self._new_id(), name=body["name"], type=vm_type, location=location, state=CREATING,
                ip_address=f"203.0.113.{100 + n}", private_ip_address=f"10.100.0.{100 + n}", created_at=now,
                ssh_key=body["ssh_key"], startup_script=body.get("startup_script"),
                reservation_id=chosen.id if chosen else None, billing_type="reserved" if chosen else "on_demand")
        proj.instances[vm.id] = vm
        op = self._new_op(proj, vm.id, "CREATE", effects.never_complete or effects.fail_after_accept)
        if effects.fail_after_accept and not effects.never_complete:
            def fail() -> None:
                op.state, op.completed_at = "FAILED", _now()
                op.result = {"code": "out_of_stock",
                             "message": f"Out of stock: could not provision {vm_type} in {location}"}
                self._remove(proj, vm)
            self._later(2.0, fail)
        elif not effects.never_complete:
            def running() -> None:
                if proj.instances.get(vm.id) is vm:
                    vm.state = RUNNING
            self._later(2.5, running)
        return {"operation": op.wire(), "instance": vm.wire()}

    def patch(self, proj: Project, vm_id: str, action: str, effects: Any) -> dict[str, Any]:
        vm = self._vm(proj, vm_id)
        if action == "STOP":
            if vm.state != RUNNING:
                raise ApiError(400, "FAILED_PRECONDITION", "Instance is not running")
            vm.state = STOPPING

            def transition() -> None:
                if proj.instances.get(vm.id) is vm:
                    vm.state = STOPPED
                    self._release(proj, vm)
        elif action == "START":
            if vm.state != STOPPED:
                raise ApiError(400, "FAILED_PRECONDITION", "Instance is not stopped")
            r = self._active_reservation(proj, vm)
            if r is not None:
                gpus = VM_TYPES[vm.type].gpu_count
                if r.used_gpus + gpus <= r.total_gpus:
                    r.used_gpus += gpus
                else:  # silently re-labelled on-demand, without taking on-demand capacity
                    vm.reservation_id, vm.billing_type = None, "on_demand"
            vm.state = STARTING

            def transition() -> None:
                vm.state = RUNNING
        else:
            raise ApiError(400, "INVALID_ARGUMENT", f"Unknown action: {action}. Use START or STOP.")
        op = self._new_op(proj, vm.id, action, effects.never_complete)
        if not effects.never_complete:
            self._later(2.0, transition)
        return {"operation": op.wire(), "instance": vm.wire()}

    def simple_action(self, proj: Project, vm_id: str, action: str, effects: Any) -> dict[str, Any]:
        vm = self._vm(proj, vm_id)
        if vm.state != RUNNING:
            raise ApiError(400, "FAILED_PRECONDITION", f"Instance must be running to {action.lower()}")
        if action == "RESTART":
            vm.state = STOPPING
            if not effects.never_complete:
                self._schedule_restart(proj, vm)
        op = self._new_op(proj, vm.id, action, effects.never_complete)
        return {"operation": op.wire(), "instance": vm.wire()}

    def _schedule_restart(self, proj: Project, vm: Vm) -> None:
        alive = {"ok": True}
        gpus = VM_TYPES[vm.type].gpu_count

        def step1() -> None:  # the only existence check of the chain
            if proj.instances.get(vm.id) is not vm:
                alive["ok"] = False
                return
            self._release(proj, vm)
            vm.state = STOPPED

        def step2() -> None:
            if not alive["ok"]:
                return
            vm.state = STARTING
            r = self._active_reservation(proj, vm)
            if r is not None and r.used_gpus + gpus <= r.total_gpus:
                r.used_gpus += gpus  # full: nothing, the VM keeps its label (unlike START)
            vm.ip_address = self.restart_ip(vm.id)

        def step3() -> None:
            if alive["ok"]:
                vm.state = RUNNING

        self._later(1.0, step1)
        self._later(2.0, step2)
        self._later(3.0, step3)

    def delete(self, proj: Project, vm_id: str, effects: Any) -> dict[str, Any]:
        vm = self._vm(proj, vm_id)
        vm.state = DELETING
        op = self._new_op(proj, vm.id, "DELETE", effects.never_complete)
        if not effects.never_complete:
            self._later(2.0, lambda: self._remove(proj, vm))
        return {"operation": op.wire()}

    # ------------------------------------------------------------------ HTTP
    def _build_app(self) -> Any:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse
        from pydantic import BaseModel

        sim = self

        class CreateInstanceRequest(BaseModel):
            name: str
            type: str
            location: str
            ssh_key: str
            startup_script: Optional[str] = None
            reservation_id: Optional[str] = None

        class PatchInstanceRequest(BaseModel):
            action: str

        app = FastAPI(title="Crusoe Cloud API Mock", version="v1alpha5")
        app.add_middleware(AnswerMiddleware, sim=sim, enum_fields=("state", "billing_type", "status", "action"))

        @app.exception_handler(ApiError)
        def _api_error(request: Request, exc: ApiError) -> JSONResponse:
            return JSONResponse({"detail": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

        @app.exception_handler(FaultResponse)
        def _fault(request: Request, exc: FaultResponse) -> JSONResponse:
            return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

        P = PREFIX
        inst = P + "/compute/vms/instances"

        @app.get(P + "/reservations")
        def list_reservations(project_id: str, request: Request, status: Optional[str] = None) -> JSONResponse:
            _, proj = sim._enter("list_reservations", request, project_id)
            with sim.lock:
                return JSONResponse({"items": sim.list_reservations(proj, status)})

        @app.get(P + "/reservations/{reservation_id}")
        def get_reservation(project_id: str, reservation_id: str, request: Request) -> JSONResponse:
            _, proj = sim._enter("get_reservation", request, project_id)
            with sim.lock:
                r = proj.reservations.get(reservation_id)
                if r is None:
                    raise _not_found("Reservation", reservation_id)
                return JSONResponse(r.wire())

        @app.get(P + "/compute/vms/types")
        def list_vm_types(project_id: str, request: Request) -> JSONResponse:
            sim._enter("list_vm_types", request, project_id)
            with sim.lock:
                return JSONResponse({"items": sim.vm_types()})

        @app.get(P + "/capacity")
        def get_capacity(project_id: str, request: Request) -> JSONResponse:
            _, proj = sim._enter("get_capacity", request, project_id)
            with sim.lock:
                return JSONResponse({"items": sim.capacity_rows(proj)})

        @app.get(inst)
        def list_instances(project_id: str, request: Request, states: Optional[str] = None,
                           types: Optional[str] = None, locations: Optional[str] = None,
                           names: Optional[str] = None, limit: Optional[int] = None) -> JSONResponse:
            _, proj = sim._enter("list_instances", request, project_id)
            with sim.lock:
                return JSONResponse({"items": sim.list_instances(proj, states, types, locations, names, limit)})

        @app.get(inst + "/{vm_id}")
        def get_instance(project_id: str, vm_id: str, request: Request) -> JSONResponse:
            _, proj = sim._enter("get_instance", request, project_id)
            with sim.lock:
                return JSONResponse(sim._vm(proj, vm_id).wire())

        @app.post(inst)
        def create_instance(project_id: str, body: CreateInstanceRequest, request: Request) -> JSONResponse:
            effects, proj = sim._enter("create_instance", request, project_id)
            with sim.lock:
                return JSONResponse(sim.create(proj, body.model_dump(), effects))

        @app.patch(inst + "/{vm_id}")
        def patch_instance(project_id: str, vm_id: str, body: PatchInstanceRequest, request: Request) -> JSONResponse:
            effects, proj = sim._enter("patch_instance", request, project_id)
            with sim.lock:
                return JSONResponse(sim.patch(proj, vm_id, body.action, effects))

        @app.post(inst + "/{vm_id}/reboot")
        def reboot_instance(project_id: str, vm_id: str, request: Request) -> JSONResponse:
            effects, proj = sim._enter("reboot_instance", request, project_id)
            with sim.lock:
                return JSONResponse(sim.simple_action(proj, vm_id, "REBOOT", effects))

        @app.post(inst + "/{vm_id}/reset")
        def reset_instance(project_id: str, vm_id: str, request: Request) -> JSONResponse:
            effects, proj = sim._enter("reset_instance", request, project_id)
            with sim.lock:
                return JSONResponse(sim.simple_action(proj, vm_id, "RESET", effects))

        @app.post(inst + "/{vm_id}/restart")
        def restart_instance(project_id: str, vm_id: str, request: Request) -> JSONResponse:
            effects, proj = sim._enter("restart_instance", request, project_id)
            with sim.lock:
                return JSONResponse(sim.simple_action(proj, vm_id, "RESTART", effects))

        @app.delete(inst + "/{vm_id}")
        def delete_instance(project_id: str, vm_id: str, request: Request) -> JSONResponse:
            effects, proj = sim._enter("delete_instance", request, project_id)
            with sim.lock:
                return JSONResponse(sim.delete(proj, vm_id, effects))

        @app.get(inst + "/operations")
        def list_operations(project_id: str, request: Request, resource_id: Optional[str] = None,
                            state: Optional[str] = None) -> JSONResponse:  # unreachable: shadowed by get_instance
            _, proj = sim._enter("get_instance", request, project_id)
            with sim.lock:
                raise _not_found("Instance", "operations")

        @app.get(inst + "/operations/{operation_id}")
        def get_operation(project_id: str, operation_id: str, request: Request) -> JSONResponse:
            _, proj = sim._enter("get_operation", request, project_id)
            with sim.lock:
                op = proj.operations.get(operation_id)
                if op is None:
                    raise _not_found("Operation", operation_id)
                return JSONResponse(op.wire())

        return app

    # ------------------------------------------------------------------ server (start/stop: RestSimulator)
    @property
    def address(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


def _expand(specs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Scenario instance entries with their names; ``count: n`` (n > 1) gives n entries ``<name>-<k>``."""
    out: list[tuple[dict[str, Any], str]] = []
    for spec in specs:
        count = int(spec.get("count", 1))
        if count == 1:
            out.append((spec, spec["name"]))
        else:
            out.extend((spec, f"{spec['name']}-{k}") for k in range(count))
    return out
