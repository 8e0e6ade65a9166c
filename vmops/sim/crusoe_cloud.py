"""Simulator of Crusoe's real public API, v1alpha5 (../shared/cloud-apis.md §1, with the corrections of §6).

What it answers like the real service: every request signed (signature v1.0, ``vmops.providers.crusoe_sign``;
a bad signature, an unknown key id or a timestamp outside ``max_skew_s`` is a 401 ``bad_credential``), UUID
projects reached through ``/projects/{id}`` (another project: 403), every mutation answered by an
``{"operation"}`` envelope polled at ``…/instances/operations/{id}`` (unknown operation: 403), the new VM id
in ``operation.metadata.id``, failures as ``FAILED`` with ``result.code = "out_of_stock"``, PATCH actions
(START, STOP, RESET, RESERVE, UNRESERVE), list pagination with ``next_token`` in small pages, the global
``/capacities`` and ``/locations``, per-project ``/compute/vms/types`` (no prices) and ``/quotas``, errors as
top-level ``{code, message, error_id}`` (code = the spec's token), no 422 (validation is a 400).

Organization reservations (§1.3 "Reservations", §4 rows 24/25): ``GET /organizations/{org}/reservations``
(paginated like every list; another organization: 403) with the contract's fields. A create's
``reservation_specification`` is ``{id}`` (that reservation or a 400, never on-demand) or
``{selection_strategy: lowest_cost | on_demand}`` (mutually exclusive); without one, ``lowest_cost``. A VM
placed into a reservation consumes ``num_gpu`` of its ``quantity`` (the unit is unconfirmed; this simulator
counts GPUs), not the location's on-demand capacity, and shows ``reservation_id``; deleting it (or
``UNRESERVE``) frees them. A reservation is eligible for a VM when it is in its contract dates, lists the
project in ``projects`` (empty = every project), has the type's product line (``h100`` for
``h100-80gb-sxm-ib.8x``), the location among ``locations`` and enough free quantity.

Endpoint names (faults, counters; * = mutating)::

    list_projects, list_locations, list_capacities, list_types, list_quotas, list_instances, get_instance,
    create_instance*, patch_instance*, delete_instance*, get_operation, list_operations, list_reservations

Fault kinds: ``error`` (the status, with the spec's token), ``rate_limit`` (429 ``too_many_requests`` with
Retry-After), ``latency``, ``never_complete`` (the operation stays IN_PROGRESS), ``fail_after_accept``
(create: the operation FAILS with ``out_of_stock`` and the VM is removed), ``lose_response``, ``malformed``,
``hang``; all drawn by ``vmops.sim.common.draw_faults``, as in every simulator.

Scenario section (``crusoe:``), every key optional: ``projects`` (list of ids; default one UUID),
``keys`` ({access key id: secret}), ``page_size`` (default 5), ``max_skew_s`` (300), ``state_prefix``
(true: ``STATE_RUNNING``; false: ``RUNNING``; both are documented), ``metadata_id`` (true: the new id is in
``operation.metadata.id``; false: ``metadata`` is empty, §6.2), ``missing_vm_status`` (404 or 403, §6.5),
``capacity`` ({location: {type: quantity}}), ``reservations`` (list of reservation objects, the contract's
fields; missing dates = the contract runs from a month ago for a year), ``instances (list of ``{name, type, location, state?, count?,
project?}``), ``op_s`` (operation duration, 2 s), ``boot_s`` (create to RUNNING, 3 s), ``delete_s`` (1 s);
durations are scaled by the time scale.
"""

# No `from __future__ import annotations`: FastAPI resolves handler annotations at run time.

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Mapping, Optional

from vmops.providers.crusoe_sign import TIMESTAMP_HEADER, verify
from vmops.sim.common import Fault, SimOptions
from vmops.sim.rest import AnswerMiddleware, FaultResponse, RestSimulator, guard

VERSION = "/v1alpha5"
TEST_KEYS: dict[str, str] = {"vmopsTestAccessKey01": "AAECAwQFBgcICQoLDA0ODw",
                             "vmopsTestAccessKey02": "EBESExQVFhcYGRobHB0eHw"}
TEST_PROJECT = "11111111-2222-3333-4444-555555555555"
ORG = "99999999-8888-7777-6666-555555555555"

# product_name, description, cpu_cores, memory_gb, disk_gb, num_gpu, gpu_type
TYPES: tuple[tuple[str, str, int, int, int, int, str], ...] = (
    ("a100-80gb.1x", "1x A100 80GB SXM", 12, 120, 1024, 1, "A100-SXM-80GB"),
    ("a100-80gb.8x", "8x A100 80GB SXM", 96, 960, 8192, 8, "A100-SXM-80GB"),
    ("h100-80gb-sxm-ib.8x", "8x H100 80GB SXM InfiniBand", 176, 960, 8192, 8, "H100-SXM-80GB"),
    # No public source names a 1 x H100 product (§6.6); this one is the simulator's own, which is the point:
    # vmops must take product names from the types endpoint, not from its catalogue.
    ("h100-80gb-sxm.1x", "1x H100 80GB SXM", 22, 120, 1024, 1, "H100-SXM-80GB"),
    ("l40s-48gb.1x", "1x L40S 48GB", 8, 147, 512, 1, "L40S-48GB"),
    ("mi300x-192gb.8x", "8x MI300X 192GB", 160, 2048, 8192, 8, "MI300X-192GB"),
)
SEED_CAPACITY: dict[str, dict[str, int]] = {
    "us-east1-a": {"a100-80gb.1x": 6, "a100-80gb.8x": 2, "h100-80gb-sxm-ib.8x": 1, "h100-80gb-sxm.1x": 8,
                   "l40s-48gb.1x": 8},
    "us-northcentral1-a": {"a100-80gb.1x": 10, "a100-80gb.8x": 3, "h100-80gb-sxm-ib.8x": 2, "h100-80gb-sxm.1x": 4,
                           "l40s-48gb.1x": 0},
    "eu-iceland1-a": {"a100-80gb.1x": 2, "a100-80gb.8x": 0, "h100-80gb-sxm-ib.8x": 0, "mi300x-192gb.8x": 1},
}
#: one H100 reservation of this organization: 16 GPUs (two 8x VMs) in us-east1-a, for the test project only
SEED_RESERVATIONS: tuple[dict[str, Any], ...] = (
    {"id": "aaaaaaaa-0000-4000-8000-000000000001", "reservation_type": "RIPA", "product_line": "h100",
     "duration": "12 months", "quantity": 16, "locations": ["us-east1-a"], "projects": [TEST_PROJECT],
     "price": 2.5},
)
SEED_INSTANCES: tuple[dict[str, Any], ...] = (
    {"name": "gpu-worker-1", "type": "a100-80gb.8x", "location": "us-northcentral1-a"},
)

_TOKENS = {400: "bad_request", 401: "bad_credential", 403: "unauthorized", 404: "not_found",
           429: "too_many_requests", 500: "internal_error"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def product_line(vtype: str) -> str:
    """``h100`` for ``h100-80gb-sxm-ib.8x``: what a reservation's ``product_line`` names."""
    return vtype.split(".")[0].split("-")[0]


def _gpus(vtype: str) -> int:
    return next((t[5] for t in TYPES if t[0] == vtype), 1)


class CloudError(Exception):
    def __init__(self, status: int, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _TOKENS.get(status, "internal_error")


def _error_body(status: int, message: str, code: Optional[str] = None) -> dict[str, Any]:
    return {"code": code or _TOKENS.get(status, "internal_error"), "message": message,
            "error_id": str(uuid.uuid4())}


def _fault_body(fault: Fault, status: int) -> dict[str, Any]:
    return _error_body(status, fault.message or _TOKENS.get(status, "service_unavailable"))


@dataclass(eq=False)
class CloudVm:
    id: str
    project: str
    name: str
    type: str
    location: str
    state: str  # without the STATE_ prefix
    created_at: str
    ssh_public_key: str
    public_ip: str
    private_ip: str
    reservation_id: Optional[str] = None
    updated_at: str = field(default_factory=_now)


@dataclass(eq=False)
class CloudReservation:
    id: str
    product_line: str
    quantity: int
    locations: list[str]
    projects: list[str]
    price: Optional[float]
    start: str
    end: str
    used_quantity: int = 0
    reservation_type: str = "RIPA"
    duration: str = "12 months"
    vm_ids: list[str] = field(default_factory=list)


@dataclass(eq=False)
class CloudOp:
    operation_id: str
    project: str
    resource_id: str
    action: str
    started_at: str
    state: str = "IN_PROGRESS"
    completed_at: Optional[str] = None
    result: Optional[dict[str, Any]] = None


class CrusoeCloudSim(RestSimulator):
    """Crusoe's public API, in process. ``CrusoeCloudSim(options).start(port)``; ``address`` includes /v1alpha5."""

    name: ClassVar[str] = "crusoe"
    default_port: ClassVar[int] = 8001
    dialect: ClassVar[str] = "cloud"
    ENDPOINTS: ClassVar[Mapping[str, bool]] = {
        "list_projects": False, "list_locations": False, "list_capacities": False, "list_types": False,
        "list_quotas": False, "list_instances": False, "get_instance": False, "create_instance": True,
        "patch_instance": True, "delete_instance": True, "get_operation": False, "list_operations": False,
        "list_reservations": False,
    }

    def __init__(self, options: Optional[SimOptions] = None) -> None:
        super().__init__(options)
        self.app = self._build_app()

    # ------------------------------------------------------------------ state
    def _knob(self, key: str, default: Any) -> Any:
        return (self.options.scenario or {}).get(key, default)

    def seed_state(self) -> None:
        with self.lock:
            self.keys: dict[str, str] = dict(self._knob("keys", TEST_KEYS))
            self.projects: list[str] = list(self._knob("projects", [TEST_PROJECT]))
            self.capacity: dict[tuple[str, str], int] = {}
            for loc, row in (self._knob("capacity", None) or SEED_CAPACITY).items():
                for t, q in row.items():
                    self.capacity[(loc, t)] = int(q)
            self.vms: dict[str, CloudVm] = {}
            self.ops: dict[str, CloudOp] = {}
            self._n = 0
            now = datetime.now(timezone.utc)
            self.reservations: dict[str, CloudReservation] = {}
            for r in self._knob("reservations", SEED_RESERVATIONS):
                rec = CloudReservation(
                    id=str(r["id"]), product_line=str(r["product_line"]), quantity=int(r["quantity"]),
                    locations=list(r.get("locations", [])), projects=list(r.get("projects", [])),
                    price=r.get("price"), used_quantity=int(r.get("used_quantity", 0)),
                    start=str(r.get("contract_start_date") or _stamp(now - timedelta(days=30))),
                    end=str(r.get("contract_end_date") or _stamp(now + timedelta(days=335))),
                    reservation_type=str(r.get("reservation_type", "RIPA")))
                self.reservations[rec.id] = rec
            for spec in self._knob("instances", SEED_INSTANCES):
                count = int(spec.get("count", 1))
                for i in range(count):
                    name = spec["name"] if count == 1 else f"{spec['name']}-{i}"
                    self._add_vm(str(spec.get("project", self.projects[0])), name, str(spec["type"]),
                                 str(spec["location"]), str(spec.get("state", "RUNNING")).removeprefix("STATE_"))

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _add_vm(self, project: str, name: str, vtype: str, location: str, state: str) -> CloudVm:
        self._n += 1
        n = self._n
        vm = CloudVm(id=self._new_id(), project=project, name=name, type=vtype, location=location, state=state,
                     created_at=_now(), ssh_public_key="", public_ip=f"198.18.{n // 250}.{n % 250 + 1}",
                     private_ip=f"172.27.{n // 250}.{n % 250 + 1}")
        self.vms[vm.id] = vm
        return vm

    # ------------------------------------------------------------------ wire shapes
    def _state(self, raw: str) -> str:
        return ("STATE_" + raw) if self._knob("state_prefix", True) else raw

    def vm_wire(self, vm: CloudVm) -> dict[str, Any]:
        ips = [{"private_ipv4": {"address": vm.private_ip},
                "public_ipv4": {"address": vm.public_ip, "id": f"ip-{vm.id[:8]}", "type": "dynamic"}}]
        if vm.state in ("DEFINING", "RESOURCING_LOCATION"):
            ips = []
        return {
            "id": vm.id, "project_id": vm.project, "type": vm.type, "state": self._state(vm.state),
            "created_at": vm.created_at, "updated_at": vm.updated_at, "name": vm.name, "location": vm.location,
            "disks": [{"id": f"disk-{vm.id[:8]}", "name": f"{vm.name}-os", "type": "persistent-ssd", "size": "128GiB",
                       "location": vm.location, "block_size": 4096, "created_at": vm.created_at,
                       "updated_at": vm.updated_at, "serial_number": vm.id[:12], "attachment_type": "os",
                       "mode": "read-write"}],
            "network_interfaces": [{"id": f"nic-{vm.id[:8]}", "name": "eth0", "network": "default",
                                    "subnet": f"{vm.location}-default", "interface_type": "ethernet",
                                    "mac_address": "02:00:00:00:00:01", "external_dns_name": "", "ips": ips}],
            "host_channel_adapters": [], "maintenance_policy": "unspecified",
            "billing_type": "On-demand",
            "reservation_id": vm.reservation_id or "",
        }

    def op_wire(self, op: CloudOp) -> dict[str, Any]:
        metadata = {"id": op.resource_id} if self._knob("metadata_id", True) else {}
        out: dict[str, Any] = {"operation_id": op.operation_id, "state": op.state, "metadata": metadata,
                               "started_at": op.started_at,
                               # the schema requires completed_at; its value is undefined while IN_PROGRESS (§6.4)
                               "completed_at": op.completed_at or "0001-01-01T00:00:00Z"}
        if op.result is not None:
            out["result"] = op.result
        return out

    def reservation_wire(self, r: CloudReservation) -> dict[str, Any]:
        return {"id": r.id, "reservation_type": r.reservation_type, "product_line": r.product_line,
                "duration": r.duration, "quantity": r.quantity, "used_quantity": r.used_quantity,
                "locations": list(r.locations), "projects": list(r.projects), "contract_start_date": r.start,
                "contract_end_date": r.end, "delivery_deadline": r.start, "date_delivered": r.start,
                "vm_ids": list(r.vm_ids), "price": r.price}

    # ------------------------------------------------------------------ reservations (§1.3)
    @staticmethod
    def _in_contract(r: CloudReservation) -> bool:
        def at(text: str) -> datetime:  # RFC 3339, or a date alone
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

        return at(r.start) <= datetime.now(timezone.utc) < at(r.end)

    def _why_not(self, r: CloudReservation, project: str, vtype: str, loc: str) -> Optional[str]:
        """Why a VM of ``vtype`` in ``loc`` cannot use ``r`` (None: it can). Call with the lock held."""
        if not self._in_contract(r):
            return "is outside its contract dates"
        if r.projects and project not in r.projects:
            return f"does not include project {project}"
        if r.product_line != product_line(vtype):
            return f"is for product line {r.product_line}, not {product_line(vtype)}"
        if r.locations and loc not in r.locations:
            return f"is not in location {loc}"
        if r.used_quantity + _gpus(vtype) > r.quantity:
            return f"has {r.quantity - r.used_quantity} of {r.quantity} free, {_gpus(vtype)} needed"
        return None

    def _pick_reservation(self, project: str, vtype: str, loc: str, spec: Any) -> Optional[CloudReservation]:
        """The reservation a create uses per its ``reservation_specification`` (None: on-demand)."""
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise CloudError(400, "reservation_specification must be an object")
        rid, strategy = spec.get("id"), spec.get("selection_strategy")
        if rid and strategy:
            raise CloudError(400, "reservation_specification: id and selection_strategy are mutually exclusive")
        if rid:
            r = self.reservations.get(str(rid))
            if r is None:
                raise CloudError(400, f"reservation {rid} not found")
            why = self._why_not(r, project, vtype, loc)
            if why:
                raise CloudError(400, f"reservation {rid} {why}", code="reservation_unavailable")
            return r
        if strategy not in (None, "", "lowest_cost", "on_demand"):
            raise CloudError(400, f"invalid selection_strategy {strategy!r}")
        if strategy == "on_demand":
            return None
        fits = [r for r in self.reservations.values() if self._why_not(r, project, vtype, loc) is None]
        return min(fits, key=lambda r: (r.price if r.price is not None else 0.0, r.id)) if fits else None

    def _release_reservation(self, vm: CloudVm) -> None:
        r = self.reservations.get(vm.reservation_id or "")
        if r is not None and vm.id in r.vm_ids:
            r.vm_ids.remove(vm.id)
            r.used_quantity = max(0, r.used_quantity - _gpus(vm.type))
        vm.reservation_id = None

    def _take_reservation(self, vm: CloudVm, r: CloudReservation) -> None:
        r.used_quantity += _gpus(vm.type)
        r.vm_ids.append(vm.id)
        vm.reservation_id = r.id

    def list_reservations(self, org: str, q: Mapping[str, str]) -> dict[str, Any]:
        if org != ORG:
            raise CloudError(403, f"organization {org} is not accessible")
        with self.lock:
            rows = list(self.reservations.values())
            start, page = self._page_bounds(q)
            more = start + page < len(rows)
            return {"items": [self.reservation_wire(r) for r in rows[start:start + page]],
                    "next_page_token": str(start + page).encode().hex() if more else ""}

    def _page_bounds(self, q: Mapping[str, str]) -> tuple[int, int]:
        page = int(self._knob("page_size", 5))
        if q.get("limit"):
            try:
                page = max(1, min(int(q["limit"]), 1000))
            except ValueError:
                raise CloudError(400, "limit must be a number") from None
        start = 0
        if q.get("next_token"):
            try:
                start = int(bytes.fromhex(q["next_token"]).decode())
            except ValueError:
                raise CloudError(400, "invalid next_token") from None
        return start, page

    # ------------------------------------------------------------------ auth and scoping
    def authenticate(self, headers: Mapping[str, str], path: str, raw_query: str, method: str) -> str:
        ts = headers.get(TIMESTAMP_HEADER.lower(), "")
        try:
            sent = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            if sent.tzinfo is None:
                raise ValueError
        except ValueError:
            raise CloudError(401, "missing or malformed X-Crusoe-Timestamp") from None
        skew = abs((datetime.now(timezone.utc) - sent).total_seconds())
        if skew > float(self._knob("max_skew_s", 300)):
            raise CloudError(401, f"request timestamp is {skew:.0f}s away from server time")
        with self.lock:
            keys = dict(self.keys)
        key_id = verify(headers.get("authorization", ""), ts, path, raw_query, method, keys.get)
        if key_id is None:
            raise CloudError(401, "invalid signature or access key")
        return key_id

    def _project(self, project_id: str) -> str:
        if project_id not in self.projects:
            raise CloudError(403, f"project {project_id} is not accessible")
        return project_id

    # ------------------------------------------------------------------ endpoint logic
    def list_instances(self, project: str, q: Mapping[str, str]) -> dict[str, Any]:
        def csv(key: str) -> Optional[set[str]]:
            return set(q[key].split(",")) if q.get(key) else None

        ids, names, types, locs, states = (csv(k) for k in ("ids", "names", "types", "locations", "states"))
        with self.lock:
            rows = [vm for vm in self.vms.values() if vm.project == project
                    and (ids is None or vm.id in ids) and (names is None or vm.name in names)
                    and (types is None or vm.type in types) and (locs is None or vm.location in locs)
                    and (states is None or self._state(vm.state) in states or "STATE_" + vm.state in states)]
            start, page = self._page_bounds(q)
            chunk = rows[start:start + page]
            more = start + page < len(rows)
            return {"items": [self.vm_wire(vm) for vm in chunk],
                    "next_page_token": str(start + page).encode().hex() if more else "",
                    "prev_page_token": str(max(0, start - page)).encode().hex() if start else ""}

    def _vm(self, project: str, vm_id: str) -> CloudVm:
        vm = self.vms.get(vm_id)
        if vm is None or vm.project != project:
            status = int(self._knob("missing_vm_status", 404))
            raise CloudError(status, f"instance {vm_id} not found" if status == 404 else "unauthorized")
        return vm

    def _op(self, project: str, resource_id: str, action: str) -> CloudOp:
        op = CloudOp(operation_id=self._new_id().upper(), project=project, resource_id=resource_id,
                     action=action, started_at=_now())
        self.ops[op.operation_id] = op
        return op

    def _finish(self, op: CloudOp, state: str = "SUCCEEDED", result: Optional[dict[str, Any]] = None) -> None:
        with self.lock:
            if op.state == "IN_PROGRESS":
                op.state, op.completed_at, op.result = state, _now(), result

    def _set_state(self, vm: CloudVm, state: str, only_from: tuple[str, ...] = ()) -> None:
        with self.lock:
            if vm.id in self.vms and (not only_from or vm.state in only_from):
                vm.state, vm.updated_at = state, _now()

    def create(self, project: str, body: Mapping[str, Any], effects: Any) -> dict[str, Any]:
        missing = [k for k in ("name", "type", "location", "ssh_public_key") if not body.get(k)]
        if missing:
            raise CloudError(400, f"missing required field(s): {', '.join(missing)}")
        for nic in body.get("network_interfaces") or []:
            if not isinstance(nic, dict) or not {"id", "mac_address", "ips"} <= set(nic):
                raise CloudError(400, "network_interfaces entries must be complete NetworkInterface objects")
        vtype, loc = str(body["type"]), str(body["location"])
        if vtype not in {t[0] for t in TYPES}:
            raise CloudError(400, f"unknown product name {vtype}")
        with self.lock:
            if not any(l == loc for l, _ in self.capacity):
                raise CloudError(400, f"unknown location {loc}")
            reservation = self._pick_reservation(project, vtype, loc, body.get("reservation_specification"))
            if reservation is None:
                if self.capacity.get((loc, vtype), 0) < 1:
                    raise CloudError(400, f"out_of_stock: no {vtype} capacity in {loc}", code="out_of_stock")
                self.capacity[(loc, vtype)] -= 1
            vm = self._add_vm(project, str(body["name"]), vtype, loc, "DEFINING")
            if reservation is not None:
                self._take_reservation(vm, reservation)
            vm.ssh_public_key = str(body["ssh_public_key"])
            op = self._op(project, vm.id, "CREATE")
            answer = {"operation": self.op_wire(op)}
        sched = self.scheduler  # delays are in unscaled seconds; the scheduler applies the time scale
        op_s, boot_s = float(self._knob("op_s", 2.0)), float(self._knob("boot_s", 3.0))
        if effects.never_complete:
            return answer
        if effects.fail_after_accept:
            def fail() -> None:
                with self.lock:
                    if self.vms.pop(vm.id, None) is not None:
                        self._give_back(vm)
                self._finish(op, "FAILED", {"code": "out_of_stock", "message": f"no {vtype} capacity left in {loc}"})
            sched.call_later(op_s, fail)
            return answer
        sched.call_later(op_s / 2, lambda: self._set_state(vm, "RESOURCING_AGENT", ("DEFINING",)))
        sched.call_later(op_s, lambda: self._finish(op, "SUCCEEDED", self.vm_wire(vm)))
        sched.call_later(boot_s, lambda: self._set_state(vm, "RUNNING", ("RESOURCING_AGENT", "DEFINING")))
        return answer

    def patch(self, project: str, vm_id: str, body: Mapping[str, Any], effects: Any) -> dict[str, Any]:
        action = str(body.get("action", ""))
        if action not in ("START", "STOP", "RESET", "RESERVE", "UNRESERVE", "UPDATE"):
            raise CloudError(400, f"invalid action {action!r}")
        op_s = float(self._knob("op_s", 2.0))
        with self.lock:
            vm = self._vm(project, vm_id)
            op = self._op(project, vm.id, action)
            if action in ("RESERVE", "UNRESERVE", "UPDATE"):  # synchronous: done when the 200 comes back
                if action == "RESERVE":
                    target = self.reservations.get(str(body.get("reservation_id") or ""))
                    if target is None:
                        raise CloudError(400, "RESERVE needs the reservation_id of a reservation")
                    why = self._why_not(target, project, vm.type, vm.location)
                    if why and vm.reservation_id != target.id:
                        raise CloudError(400, f"reservation {target.id} {why}", code="reservation_unavailable")
                    if vm.reservation_id != target.id:
                        self._give_back(vm)
                        self._take_reservation(vm, target)
                elif action == "UNRESERVE" and vm.reservation_id:
                    self._release_reservation(vm)
                    self.capacity[(vm.location, vm.type)] = self.capacity.get((vm.location, vm.type), 0) - 1
                op.state, op.completed_at = "SUCCEEDED", _now()
                return {"operation": self.op_wire(op)}
            if action == "STOP":
                if vm.state not in ("RUNNING", "SHUTOFF"):
                    raise CloudError(400, f"cannot stop an instance in state {self._state(vm.state)}")
                if vm.state == "RUNNING":
                    vm.state = "SHUTDOWN"
                final, transitional = "SHUTOFF", ("SHUTDOWN",)
            elif action == "START":
                if vm.state not in ("SHUTOFF", "RUNNING"):
                    raise CloudError(400, f"cannot start an instance in state {self._state(vm.state)}")
                if vm.state == "SHUTOFF":
                    vm.state = "STARTING"
                final, transitional = "RUNNING", ("STARTING",)
            else:  # RESET: a hard power cycle; the VM stays RUNNING as far as the API shows
                if vm.state != "RUNNING":
                    raise CloudError(400, f"cannot reset an instance in state {self._state(vm.state)}")
                final, transitional = "RUNNING", ()
            answer = {"operation": self.op_wire(op)}
        if effects.never_complete:
            return answer

        def done() -> None:
            self._set_state(vm, final, transitional)
            self._finish(op)

        self.scheduler.call_later(op_s, done)
        return answer

    def delete(self, project: str, vm_id: str, effects: Any) -> dict[str, Any]:
        with self.lock:
            vm = self._vm(project, vm_id)
            vm.state = "DELETING"
            op = self._op(project, vm.id, "DELETE")
            answer = {"operation": self.op_wire(op)}
        if effects.never_complete:
            return answer

        def gone() -> None:
            with self.lock:
                if self.vms.pop(vm.id, None) is not None:
                    self._give_back(vm)
            self._finish(op)

        self.scheduler.call_later(float(self._knob("delete_s", 1.0)), gone)
        return answer

    def _give_back(self, vm: CloudVm) -> None:
        """Return what ``vm`` held: its reservation's quantity, else one unit of on-demand capacity."""
        if vm.reservation_id:
            self._release_reservation(vm)
        else:
            self.capacity[(vm.location, vm.type)] = self.capacity.get((vm.location, vm.type), 0) + 1

    def get_operation(self, project: str, op_id: str) -> dict[str, Any]:
        with self.lock:
            op = self.ops.get(op_id)
            if op is None or op.project != project:
                raise CloudError(403, "unauthorized")
            return self.op_wire(op)

    def list_operations(self, project: str, q: Mapping[str, str]) -> dict[str, Any]:
        states = set(q["state"].split(",")) if q.get("state") else None
        with self.lock:
            return {"items": [self.op_wire(o) for o in self.ops.values() if o.project == project
                              and (not q.get("resource_id") or o.resource_id == q["resource_id"])
                              and (states is None or o.state in states)]}

    def capacities(self, q: Mapping[str, str]) -> dict[str, Any]:
        names = set(q["product_name"].split(",")) if q.get("product_name") else None
        locs = set(q["location"].split(",")) if q.get("location") else None
        with self.lock:
            return {"items": [{"location": loc, "type": t, "quantity": n, "num_slices": n, "quota_type": "gpu"}
                              for (loc, t), n in self.capacity.items()
                              if (names is None or t in names) and (locs is None or loc in locs)]}

    def types(self) -> dict[str, Any]:
        return {"items": [{"product_name": t[0], "description": t[1], "cpu_cores": t[2], "cpu_type": "x86",
                           "memory_gb": t[3], "memory_type": "DDR5", "disk_gb": t[4], "disk_type": "NVMe",
                           "num_gpu": t[5], "gpu_type": t[6]} for t in TYPES]}

    def quotas(self, project: str) -> dict[str, Any]:
        limits = self._knob("quotas", {})
        with self.lock:
            used: dict[str, int] = {}
            for vm in self.vms.values():
                if vm.project == project:
                    fam = vm.type.split(".")[0]
                    used[fam] = used.get(fam, 0) + 1
        out = []
        for fam in sorted({t[0].split(".")[0] for t in TYPES}):
            mx = int(limits.get(fam, 100))
            out.append({"programmatic_name": fam, "category": "GPU Instance", "description": f"{fam} VMs",
                        "type": "instance", "max": mx, "used": used.get(fam, 0),
                        "available": max(0, mx - used.get(fam, 0))})
        return {"quotas": out}

    # ------------------------------------------------------------------ server
    def _build_app(self) -> Any:
        from fastapi import Body, FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse

        sim = self
        app = FastAPI(title="Crusoe Cloud API (simulated)", docs_url=None, redoc_url=None, openapi_url=None)
        app.add_middleware(AnswerMiddleware, sim=sim, enum_fields=("state",))

        @app.exception_handler(CloudError)
        def _cloud_error(request: Request, exc: CloudError) -> JSONResponse:
            return JSONResponse(_error_body(exc.status, exc.message, exc.code), status_code=exc.status)

        @app.exception_handler(FaultResponse)
        def _fault(request: Request, exc: FaultResponse) -> JSONResponse:
            return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

        @app.exception_handler(RequestValidationError)
        def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
            return JSONResponse(_error_body(400, "invalid request"), status_code=400)

        @app.exception_handler(404)
        def _nothing(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(_error_body(404, "not_found"), status_code=404)

        def enter(endpoint: str, request: Request) -> dict[str, Any]:
            effects = guard(sim, endpoint, request.scope, _fault_body)
            sim.authenticate(request.headers, request.url.path, request.scope.get("query_string", b"").decode(),
                             request.method)
            return {"effects": effects, "q": dict(request.query_params)}

        def body_of(body: Any) -> dict[str, Any]:
            if not isinstance(body, dict):
                raise CloudError(400, "the body must be an object")
            return body

        base = VERSION
        inst = base + "/projects/{project_id}/compute/vms/instances"

        @app.get(base + "/organizations/projects")
        def list_projects(request: Request) -> JSONResponse:
            enter("list_projects", request)
            return JSONResponse({"items": [{"id": p, "organization_id": ORG, "name": f"project-{i}",
                                            "relation": "owner", "resources": {}}
                                           for i, p in enumerate(sim.projects)]})

        @app.get(base + "/organizations/{organization_id}/reservations")
        def list_reservations(organization_id: str, request: Request) -> JSONResponse:
            c = enter("list_reservations", request)
            return JSONResponse(sim.list_reservations(organization_id, c["q"]))

        @app.get(base + "/locations")
        def list_locations(request: Request) -> JSONResponse:
            enter("list_locations", request)
            return JSONResponse({"items": sorted({loc for loc, _ in sim.capacity})})

        @app.get(base + "/capacities")
        def list_capacities(request: Request) -> JSONResponse:
            c = enter("list_capacities", request)
            return JSONResponse(sim.capacities(c["q"]))

        @app.get(base + "/projects/{project_id}/compute/vms/types")
        def list_types(project_id: str, request: Request) -> JSONResponse:
            enter("list_types", request)
            sim._project(project_id)
            return JSONResponse(sim.types())

        @app.get(base + "/projects/{project_id}/quotas")
        def list_quotas(project_id: str, request: Request) -> JSONResponse:
            enter("list_quotas", request)
            return JSONResponse(sim.quotas(sim._project(project_id)))

        @app.get(inst + "/operations")
        def list_operations(project_id: str, request: Request) -> JSONResponse:
            c = enter("list_operations", request)
            return JSONResponse(sim.list_operations(sim._project(project_id), c["q"]))

        @app.get(inst + "/operations/{operation_id}")
        def get_operation(project_id: str, operation_id: str, request: Request) -> JSONResponse:
            enter("get_operation", request)
            return JSONResponse(sim.get_operation(sim._project(project_id), operation_id))

        @app.get(inst)
        def list_instances(project_id: str, request: Request) -> JSONResponse:
            c = enter("list_instances", request)
            return JSONResponse(sim.list_instances(sim._project(project_id), c["q"]))

        @app.get(inst + "/{vm_id}")
        def get_instance(project_id: str, vm_id: str, request: Request) -> JSONResponse:
            enter("get_instance", request)
            project = sim._project(project_id)
            with sim.lock:
                return JSONResponse(sim.vm_wire(sim._vm(project, vm_id)))

        @app.post(inst)
        def create_instance(project_id: str, request: Request, body: Any = Body(None)) -> JSONResponse:
            c = enter("create_instance", request)
            project = sim._project(project_id)
            return JSONResponse(sim.create(project, body_of(body), c["effects"]))

        @app.patch(inst + "/{vm_id}")
        def patch_instance(project_id: str, vm_id: str, request: Request, body: Any = Body(None)) -> JSONResponse:
            c = enter("patch_instance", request)
            project = sim._project(project_id)
            return JSONResponse(sim.patch(project, vm_id, body_of(body), c["effects"]))

        @app.delete(inst + "/{vm_id}")
        def delete_instance(project_id: str, vm_id: str, request: Request) -> JSONResponse:
            c = enter("delete_instance", request)
            return JSONResponse(sim.delete(sim._project(project_id), vm_id, c["effects"]))

        return app

    # ------------------------------------------------------------------ helpers for tests and tools
    def instance_names(self) -> list[str]:
        with self.lock:
            return [vm.name for vm in self.vms.values()]

    def reservation_use(self, reservation_id: str) -> int:
        with self.lock:
            return self.reservations[reservation_id].used_quantity

    def capacity_of(self, location: str, vtype: str) -> int:
        with self.lock:
            return self.capacity.get((location, vtype), 0)

    def client_env(self) -> dict[str, str]:
        key_id, secret = next(iter(self.keys.items()))
        return {"VMOPS_CRUSOE_DIALECT": "cloud", "VMOPS_CRUSOE_URL": self.address,
                "VMOPS_CRUSOE_ACCESS_KEY_ID": key_id, "VMOPS_CRUSOE_SECRET_KEY": secret}

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("crusoe cloud simulator is not started")
        return f"{self.scheme}://127.0.0.1:{self.port}{VERSION}"
