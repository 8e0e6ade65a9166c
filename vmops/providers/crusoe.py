"""Crusoe adapter (REST, ``/v1alpha5/projects/{project}``), per provider-apis.md §1.

Async model: every mutation returns an operation. A settled call polls the operation
(``GET .../instances/operations/{id}``) until it leaves IN_PROGRESS, then polls the instance to its target
state (the operation reports SUCCEEDED before a created/restarted VM is RUNNING).

Reservation policy (Crusoe places a create into a matching reservation by itself):

* STRICT with ids -> the first id is sent as ``reservation_id`` (no on-demand fallback at Crusoe); STRICT
  without ids -> vmops picks the eligible reservation Crusoe itself would pick (cheapest, then most free GPUs)
  and sends its id, so the create can never land on-demand.
* AUTO -> no ``reservation_id``; the server auto-places (reserved first, else on-demand).
* FORBID -> Crusoe cannot be told to skip reservations, so vmops only creates in a location where this
  project has no free reserved slot of that type: with a region that has one it raises Unsupported, without a
  region it picks such a location or raises InsufficientCapacity.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable, Mapping

import httpx

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
from vmops.model import (
    CreateRequest,
    GpuShape,
    Instance,
    Offer,
    Reservation,
    ReservationPolicy,
    State,
    map_state,
    reserved_offers,
)
from vmops.providers import protocol
from vmops.providers.base import Capabilities, DestroyResult, Provider, Timing
from vmops.providers.http import RestClient, parse_utc, segment
from vmops.providers.wire import integer, items, number, obj, parsing, text
from vmops.config import ProviderSettings

STATE: dict[str, State] = {
    "STATE_CREATING": State.CREATING,
    "STATE_RUNNING": State.RUNNING,
    "STATE_STOPPING": State.STOPPING,
    "STATE_STOPPED": State.STOPPED,
    "STATE_STARTING": State.STARTING,
    "STATE_DELETING": State.DELETING,
}

RESERVATION_PRICE_SOURCE = "crusoe reservation price"
#: seconds a capacity read is reused by placement (see ``Crusoe._capacity``)
PLACEMENT_CAPACITY_AGE = 1.0
API_PRICE_SOURCE = "crusoe vm-types API price_per_hour_usd"
#: seconds before a price table (vm types, reservations) that lacks a VM's entry, or failed to load, is read again
PRICE_REREAD_S = 60.0

#: error code in ``{"detail":{"code":...}}`` -> (vmops error class, hint or None for the class default)
_CODE_TABLE: dict[str, tuple[type[VmopsError], str | None]] = {
    "UNAUTHENTICATED": (AuthError, None),
    "PERMISSION_DENIED": (PermissionDenied, None),
    "NOT_FOUND": (NotFound, None),
    "INVALID_ARGUMENT": (InvalidArgument, "Check the type, location and action against `vm capacity`"),
    "FAILED_PRECONDITION": (FailedPrecondition, None),
    "RESOURCE_EXHAUSTED": (InsufficientCapacity, None),  # Crusoe reports exhausted capacity as HTTP 400
    "UNAVAILABLE": (ProviderUnavailable, None),
    "INTERNAL": (ProviderUnavailable, None),
}
_STATUS_TABLE: dict[int, type[VmopsError]] = {
    401: AuthError, 403: PermissionDenied, 404: NotFound, 405: InvalidArgument, 409: FailedPrecondition,
    422: InvalidArgument,
}
_RESERVATION_HINT = ("Check the reservation's status, type, location and free capacity with `vm reservations`, "
                     "or create with the auto reservation policy")


def map_error(resp: httpx.Response) -> VmopsError:
    """The one place Crusoe error answers become vmops errors."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    where = f"{resp.request.method} {resp.request.url.path}" if resp.request is not None else "request"
    if isinstance(detail, dict):
        code = str(detail.get("code", ""))
        message = str(detail.get("message", "")) or code
        cls, hint = _CODE_TABLE.get(code, (_STATUS_TABLE.get(resp.status_code, InvalidArgument), None))
        if cls is FailedPrecondition and message.startswith("Reservation "):
            hint = _RESERVATION_HINT
        return cls(message, provider="crusoe", hint=hint)
    if isinstance(detail, list):  # request validation (422)
        parts = []
        for entry in detail[:5]:
            if isinstance(entry, dict):
                loc = ".".join(str(x) for x in entry.get("loc", []) if x not in ("body", "query"))
                parts.append(f"{loc or 'body'}: {entry.get('msg', 'invalid')}")
        return InvalidArgument(f"request rejected by validation ({'; '.join(parts) or 'invalid request'})",
                               provider="crusoe", hint="This is likely a vmops bug; please report it")
    if resp.status_code == 404:
        return NotFound(f"nothing exists at {where}", provider="crusoe",
                        hint="Check the id (as shown by `vm list`) and the configured Crusoe URL")
    cls = _STATUS_TABLE.get(resp.status_code, InvalidArgument)
    text = detail if isinstance(detail, str) else f"HTTP {resp.status_code}"
    return cls(f"{where} failed: {text}", provider="crusoe")


class CrusoeProvider(Provider):
    name = "crusoe"
    capabilities = Capabilities(stop_start=True, labels=False, terminate_reserved=True, idempotency_key=False,
                                forbid_reserved=False)

    def __init__(self, settings: ProviderSettings, timing: Timing | None = None) -> None:
        super().__init__(settings, timing)
        self._client = self._rest_client()
        # Price tables, read on an instance's first need, with when each was last read (``None``: never; a failed
        # read counts, see ``_due``).
        self._type_prices: dict[str, float] = {}
        self._type_prices_read: float | None = None
        self._reservation_prices: dict[str, float] = {}
        self._reservation_prices_read: float | None = None
        self._capacity_lock = threading.Lock()
        self._capacity_read: tuple[float, list[dict[str, Any]]] | None = None

    # ------------------------------------------------------------------ plumbing
    def _rest_client(self) -> RestClient:
        """The HTTP client (the cloud dialect's subclass signs and paces instead)."""
        return RestClient(self.settings, self.timing, map_error)

    @property
    def _base(self) -> str:
        if not self.settings.scope:
            raise InvalidArgument("no Crusoe project is configured", provider=self.name,
                                  hint="Set VMOPS_CRUSOE_PROJECT or `project` in the [crusoe] config section")
        return f"/v1alpha5/projects/{segment(self.settings.scope, 'project')}"

    def _instances_path(self, instance_id: str | None = None) -> str:
        path = f"{self._base}/compute/vms/instances"
        return path if instance_id is None else f"{path}/{segment(instance_id, 'instance id')}"

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._client.request("GET", path, params=params)

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ normalization
    @staticmethod
    def _due(read_at: float | None) -> bool:
        """Whether a price table that lacks an entry is read (again): never read, or read (or failed) at least
        ``PRICE_REREAD_S`` ago. A listing of many VMs thus costs at most one read of each table, even when the
        read fails (the catalogue's list price stands in), never one read per VM."""
        return read_at is None or time.monotonic() - read_at >= PRICE_REREAD_S

    def _price_for(self, vm: dict[str, Any], gpu_count: int) -> tuple[float | None, str | None]:
        rid = vm.get("reservation_id")
        if vm.get("billing_type") == "reserved" and rid:
            if rid not in self._reservation_prices and self._due(self._reservation_prices_read):
                self._reservation_prices_read = time.monotonic()
                try:
                    self._load_reservation_prices()
                except VmopsError:
                    pass
            unit = self._reservation_prices.get(rid)
            if unit is not None:
                return round(unit * gpu_count, 4), RESERVATION_PRICE_SOURCE
        return self._on_demand_price(str(vm.get("type", "")))

    def _on_demand_price(self, native_type: str) -> tuple[float | None, str | None]:
        if native_type not in self._type_prices and self._due(self._type_prices_read):
            self._type_prices_read = time.monotonic()
            try:
                items = self._get(f"{self._base}/compute/vms/types").get("items", [])
                self._type_prices = {str(t["type"]): float(t["price_per_hour_usd"]) for t in items
                                     if "type" in t and t.get("price_per_hour_usd") is not None}
            except (VmopsError, TypeError, ValueError, AttributeError, KeyError):
                pass
        if native_type in self._type_prices:
            return self._type_prices[native_type], API_PRICE_SOURCE
        nt = self.catalogue.type_named(native_type)
        return (nt.list_price_per_hour, nt.price_source) if nt else (None, None)

    def _load_reservation_prices(self) -> list[dict[str, Any]]:
        """The project's reservations, each checked field by field (the parsing layer, like ``_instance``)."""
        what = "GET reservations"
        out = []
        for r in items(self._get(f"{self._base}/reservations"), "items", self.name, what):
            row = {"id": text(r, "id", self.name, what, required=True), "name": text(r, "name", self.name, what),
                   "status": text(r, "status", self.name, what), "vm_type": text(r, "vm_type", self.name, what),
                   "location": text(r, "location", self.name, what),
                   "total_gpus": integer(r, "total_gpus", self.name, what, 0),
                   "used_gpus": integer(r, "used_gpus", self.name, what, 0),
                   "unit_price_per_gpu_hour_usd": number(r, "unit_price_per_gpu_hour_usd", self.name, what),
                   "start_date": text(r, "start_date", self.name, what), "end_date": text(r, "end_date", self.name, what)}
            if row["unit_price_per_gpu_hour_usd"] is not None:
                self._reservation_prices[str(row["id"])] = float(row["unit_price_per_gpu_hour_usd"])
            out.append(row)
        return out

    def _instance(self, vm: Any, what: str = "an instance answer") -> Instance:
        """The parsing layer for instances: every field is checked (``wire``); a bad answer is MalformedAnswer."""
        p = self.name
        vm = obj(vm, p, what)
        with parsing(p, what):
            iid = text(vm, "id", p, what, required=True)
            native_type = text(vm, "type", p, what) or ""
            native_state = text(vm, "state", p, what) or ""
            billing = text(vm, "billing_type", p, what)
            fields = {k: text(vm, k, p, what) for k in ("name", "location", "ip_address", "private_ip_address",
                                                         "reservation_id", "created_at")}
            clean = {**vm, "type": native_type, "billing_type": billing, "reservation_id": fields["reservation_id"]}
            nt = self.catalogue.type_named(native_type)
            gpu_count = nt.shape.count if nt else 1
            price, source = self._price_for(clean, gpu_count)
            return Instance(
                provider=self.name, id=str(iid), name=fields["name"] or "",
                state=map_state(native_state, STATE), native_state=native_state, native_type=native_type,
                gpu=nt.shape if nt else None, region=fields["location"], public_ip=fields["ip_address"] or None,
                private_ip=fields["private_ip_address"] or None, reserved=billing == "reserved",
                reservation_id=fields["reservation_id"], price_per_hour=price, price_source=source,
                created_at=parse_utc(fields["created_at"]), labels={}, can_terminate=True,
            )

    def _reservation(self, r: dict[str, Any]) -> Reservation:
        native_type = str(r.get("vm_type") or "")
        nt = self.catalogue.type_named(native_type)
        per_vm = nt.shape.count if nt else 1
        total_gpus, used_gpus = int(r.get("total_gpus", 0)), int(r.get("used_gpus", 0))
        total_vms = total_gpus // per_vm
        used_vms = max(0, total_vms - max(0, total_gpus - used_gpus) // per_vm)
        unit = r.get("unit_price_per_gpu_hour_usd")
        return Reservation(
            provider=self.name, id=str(r.get("id", "")), name=str(r.get("name") or ""), native_type=native_type,
            gpu=nt.shape if nt else None, region=r.get("location"), active=r.get("status") == "ACTIVE",
            total_vms=total_vms, used_vms=used_vms,
            price_per_hour=round(float(unit) * per_vm, 4) if unit is not None else None,
            start=r.get("start_date"), end=r.get("end_date"),
        )

    # ------------------------------------------------------------------ reads
    def list_instances(self) -> list[Instance]:
        what = "GET instances"
        return [self._instance(vm, what) for vm in items(self._get(self._instances_path()), "items", self.name, what)]

    def get_instance(self, instance_id: str) -> Instance:
        return self._instance(self._get(self._instances_path(instance_id)), "GET instance")

    def find_by_name(self, name: str) -> list[Instance]:
        if "," in name or not name:  # the server splits the filter on commas
            return super().find_by_name(name)
        what = "GET instances by name"
        found = items(self._get(self._instances_path(), params={"names": name}), "items", self.name, what)
        return [i for i in (self._instance(vm, what) for vm in found) if i.name == name]

    def reservations(self) -> list[Reservation]:
        return [self._reservation(r) for r in self._load_reservation_prices()]

    def _capacity(self, max_age: float = 0.0) -> list[dict[str, Any]]:
        """Capacity rows with their fields checked (location, vm_type: strings; counts: whole numbers).

        ``max_age``: a read at most this old may be reused (concurrent callers share one read). Placement
        uses it so that a fleet's burst of creates reads capacity once, not once per create: the check
        against free reservations is a check-then-create race at any age, and a second is well inside it.
        """
        with self._capacity_lock:
            if self._capacity_read is not None and time.monotonic() - self._capacity_read[0] <= max_age:
                return self._capacity_read[1]
            what, p = "GET capacity", self.name
            rows = [{"location": text(r, "location", p, what, required=True),
                     "vm_type": text(r, "vm_type", p, what) or "",
                     **{k: integer(r, k, p, what, 0) for k in ("on_demand_available", "reserved_available",
                                                                "total_available")}}
                    for r in items(self._get(f"{self._base}/capacity"), "items", p, what)]
            self._capacity_read = (time.monotonic(), rows)
            return rows

    def offers(self, shape: GpuShape | None = None) -> list[Offer]:
        offers: list[Offer] = []
        for row in self._capacity():
            nt = self.catalogue.type_named(str(row.get("vm_type", "")))
            if nt is None or (shape is not None and nt.shape != shape):
                continue
            price, source = self._on_demand_price(nt.name)
            n = int(row.get("on_demand_available", 0))
            offers.append(Offer(provider=self.name, gpu=nt.shape, native_type=nt.name, region=row.get("location"),
                                price_per_hour=price, price_source=source or "", available=n, has_capacity=n > 0))
        return offers + reserved_offers(self.reservations(), shape, RESERVATION_PRICE_SOURCE)

    # ------------------------------------------------------------------ placement
    def placement(self, req: CreateRequest) -> tuple[str, str | None]:
        """(location, reservation_id to send) for a create, following the reservation policy."""
        policy = req.reservation_policy
        if policy is ReservationPolicy.STRICT:
            return self._strict_placement(req)
        if req.region is not None and policy is ReservationPolicy.AUTO:
            return req.region, None
        rows = [r for r in self._capacity(PLACEMENT_CAPACITY_AGE) if r.get("vm_type") == req.native_type
                and (req.region is None or r.get("location") == req.region)]
        if policy is ReservationPolicy.FORBID:
            if req.region is not None and any(int(r.get("reserved_available", 0)) > 0 for r in rows):
                raise Unsupported(
                    f"Crusoe would place a {req.native_type} VM in {req.region} into one of this project's "
                    "reservations and cannot be told not to", provider=self.name,
                    hint="Use another region, or allow reservations (policy auto)")
            for r in rows:
                if int(r.get("reserved_available", 0)) == 0 and int(r.get("on_demand_available", 0)) > 0:
                    return str(r["location"]), None
            if req.region is not None:
                return req.region, None  # let the server report the exhaustion
            raise InsufficientCapacity(
                f"no Crusoe location has on-demand {req.native_type} capacity without also holding a free "
                "reservation of that type (Crusoe cannot forbid placement into a reservation)", provider=self.name)
        reserved = [r for r in rows if int(r.get("reserved_available", 0)) > 0]
        chosen = reserved or [r for r in rows if int(r.get("total_available", 0)) > 0]
        if not chosen:
            raise InsufficientCapacity(f"no Crusoe location has capacity for {req.native_type}", provider=self.name)
        return str(chosen[0]["location"]), None

    def _strict_placement(self, req: CreateRequest) -> tuple[str, str | None]:
        items = self._load_reservation_prices()
        gpus = self.catalogue.type_named(req.native_type)
        per_vm = gpus.shape.count if gpus else 1

        def eligible(r: dict[str, Any]) -> bool:
            return (r.get("status") == "ACTIVE" and r.get("vm_type") == req.native_type
                    and (req.region is None or r.get("location") in (None, req.region))
                    and int(r.get("used_gpus", 0)) + per_vm <= int(r.get("total_gpus", 0)))

        by_id = {str(r.get("id")): r for r in items}
        if req.reservation_ids:
            pick = next((by_id[i] for i in req.reservation_ids if i in by_id and eligible(by_id[i])), None)
            rid = str(pick["id"]) if pick else req.reservation_ids[0]
            rec = pick or by_id.get(rid)
        else:
            candidates = [r for r in items if eligible(r)]
            if not candidates:
                raise InsufficientCapacity(
                    f"no reservation of this Crusoe project has free capacity for {req.native_type}"
                    + (f" in {req.region}" if req.region else ""), provider=self.name,
                    hint="See `vm reservations`, or create with the auto reservation policy")
            rec = min(candidates, key=lambda r: (float(r.get("unit_price_per_gpu_hour_usd") or 0),
                                                 -(int(r.get("total_gpus", 0)) - int(r.get("used_gpus", 0)))))
            rid = str(rec["id"])
        location = req.region or (rec.get("location") if rec else None)
        if not location:
            raise InvalidArgument(f"reservation {rid} is unknown in this Crusoe project; cannot pick a location",
                                  provider=self.name, hint="Pass --region, or check `vm reservations`")
        return str(location), rid

    # ------------------------------------------------------------------ mutations
    def create(self, request: CreateRequest, *, wait: bool = True) -> Instance:
        if self.catalogue.type_named(request.native_type) is None:
            known = ", ".join(t.name for t in self.catalogue.types)
            raise InvalidArgument(f"{request.native_type!r} is not a Crusoe VM type (known: {known})",
                                  provider=self.name)
        location, reservation_id = self.placement(request)
        body: dict[str, Any] = {"name": request.name, "type": request.native_type, "location": location,
                                "ssh_key": self.settings.ssh_key}
        if reservation_id:
            body["reservation_id"] = reservation_id
        before = protocol.named_before(request, self.find_by_name)

        def send() -> tuple[Any, Instance]:  # an unreadable answer is a lost one: looked for like it
            answer = self._client.request("POST", self._instances_path(), json=body, idempotent=False)
            return answer, self._instance(obj(answer, self.name, "POST instances").get("instance"), "POST instances")

        done = protocol.create_resolving(
            send, lambda: [i for i in self.find_by_name(request.name) if i.id not in before], self.timing)
        if done.adopted is not None:
            return self._settle(done.adopted, None, "create") if wait else done.adopted
        assert done.answer is not None
        answer, created = done.answer
        return self._settle(created, self._operation(answer, "POST instances"), "create") if wait else created

    def _operation(self, answer: Any, what: str) -> dict[str, Any] | None:
        """The operation object of a mutation's answer (None when absent), its id and state checked."""
        op = obj(answer, self.name, what).get("operation")
        if op is None:
            return None
        op = obj(op, self.name, what, "field 'operation'")
        text(op, "operation_id", self.name, what, required=True)
        text(op, "state", self.name, what)
        return dict(op)

    def _mutate(self, verb: str, instance_id: str, method: str, path: str, body: Any,
                took_effect: Callable[[Instance], bool]) -> tuple[Instance | None, dict[str, Any] | None]:
        """Send a state-changing call through the shared protocol: on a lost/transient answer, check whether it
        took effect before resending. Returns (instance from the answer, operation), or (current instance,
        None) when the check found it done, or (None, None) when a destroyed instance is gone."""
        seen: list[Instance] = []

        def send() -> tuple[Instance | None, dict[str, Any] | None]:
            answer = self._client.request(method, path, json=body, idempotent=False)
            what = f"{method} instance"
            inst = obj(answer, self.name, what).get("instance")
            return (self._instance(inst, what) if inst is not None else None), self._operation(answer, what)

        def confirm() -> bool:  # the answer was lost (or a 5xx came after the change)
            seen.append(self.get_instance(instance_id))
            return took_effect(seen[-1])

        sent = protocol.mutate_confirming(send, confirm, self.timing, gone_is_done=verb == "destroy")
        if sent is not None:
            return sent
        return (seen[-1] if seen and took_effect(seen[-1]) else None), None

    def _action(self, verb: str, instance_id: str, method: str, suffix: str, body: Any, wait: bool,
                took_effect: Callable[[Instance], bool]) -> Instance:
        path = self._instances_path(instance_id) + suffix
        inst, op = self._mutate(verb, instance_id, method, path, body, took_effect)
        if inst is None:
            inst = self.get_instance(instance_id)
        return self._settle(inst, op, verb) if wait else inst

    def stop(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._action("stop", instance_id, "PATCH", "", {"action": "STOP"}, wait,
                            lambda i: i.state in (State.STOPPING, State.STOPPED))

    def start(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._action("start", instance_id, "PATCH", "", {"action": "START"}, wait,
                            lambda i: i.state in (State.STARTING, State.RUNNING))

    def reboot(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._action("reboot", instance_id, "POST", "/reboot", None, wait, lambda i: False)

    def reset(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._action("reset", instance_id, "POST", "/reset", None, wait, lambda i: False)

    def restart(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._action("restart", instance_id, "POST", "/restart", None, wait,
                            lambda i: i.state in (State.STOPPING, State.STOPPED, State.STARTING))

    def destroy(self, instance_id: str, *, wait: bool = True) -> Instance:
        self._instances_path(instance_id)  # validates the id
        before = self.get_instance(instance_id)  # NotFound for an unknown id, before anything is sent
        return self._delete(before, wait=wait)

    def _delete(self, before: Instance, *, wait: bool) -> Instance:
        path = self._instances_path(before.id)
        _, op = self._mutate("destroy", before.id, "DELETE", path, None, lambda i: i.state is State.DELETING)
        from dataclasses import replace

        deleting = replace(before, state=State.DELETING, native_state="STATE_DELETING")
        return self._settle(deleting, op, "destroy") if wait else deleting

    def destroy_many(self, instance_ids: Iterable[str], *, wait: bool = True,
                     listed: Mapping[str, Instance] | None = None) -> list[DestroyResult]:
        """One list for every id instead of a GET before each DELETE (none when ``listed`` has every id),
        then one DELETE per listed id.

        An id the list lacks is looked up (``lookup``: absence from a paged listing is no proof); gone is
        success with nothing sent. An invalid id is refused without a request. Halves the requests of a big fleet's destroy (bench figure 3).
        """
        ids = list(dict.fromkeys(instance_ids))
        results: dict[str, DestroyResult] = {}
        try:
            self._instances_path()  # the project, looked up once (the cloud dialect may have to ask for it)
        except VmopsError as e:
            return [DestroyResult(iid, False, None, e) for iid in ids]
        for iid in ids:
            try:
                self._instances_path(iid)
            except VmopsError as e:
                results[iid] = DestroyResult(iid, False, None, e)
        try:
            live = self.current([i for i in ids if i not in results], listed)
        except VmopsError as e:
            return [results.get(iid) or DestroyResult(iid, False, None, e) for iid in ids]
        for iid in ids:
            if iid in results:
                continue
            try:
                inst = live.get(iid) or self.lookup(iid)
                results[iid] = DestroyResult(iid, True, self._delete(inst, wait=wait) if inst else None)
            except NotFound:
                results[iid] = DestroyResult(iid, True, None)
            except VmopsError as e:
                results[iid] = DestroyResult(iid, False, None, e)
        return [results[iid] for iid in ids]

    # ------------------------------------------------------------------ settling
    def _settle(self, inst: Instance, op: dict[str, Any] | None, verb: str) -> Instance:
        began = time.monotonic()
        deadline = began + self.timing.op_timeout
        if op and op.get("operation_id"):
            op = self._wait_operation(inst, op, deadline)
            if op.get("state") == "FAILED":
                self._fail_created(inst, op, verb)
        remaining = max(0.0, deadline - time.monotonic())
        expected = self.catalogue.typical_seconds(verb) - (time.monotonic() - began)
        result = self.settle(inst, verb, timeout=remaining, expected=max(0.0, expected))
        if verb != "destroy" and result.state is State.DELETED:
            raise InsufficientCapacity(f"instance {inst.id} ({inst.name}) disappeared while waiting for it to "
                                       f"finish {verb}", provider=self.name)
        return result

    def _wait_operation(self, inst: Instance, op: dict[str, Any], deadline: float) -> dict[str, Any]:
        path = f"{self._instances_path()}/operations/{segment(str(op['operation_id']), 'operation id')}"
        started = time.monotonic()
        expected = self.catalogue.typical_seconds("operation")
        while op.get("state") == "IN_PROGRESS":
            if time.monotonic() >= deadline:
                try:
                    st = self.get_instance(inst.id).state.value
                except VmopsError:
                    st = inst.state.value
                raise OperationTimeout(
                    f"{str(op.get('action', '')).lower() or 'operation'} of instance {inst.id} ({inst.name}) "
                    f"has not finished after {self.timing.op_timeout:g}s; the instance is still {st}",
                    provider=self.name, instance_id=inst.id, stuck_state=st)
            time.sleep(self.poll_delay(time.monotonic() - started, expected))
            op = obj(self._get(path), self.name, "GET operation")
            text(op, "state", self.name, "GET operation")
        return op

    def _fail_created(self, inst: Instance, op: dict[str, Any], verb: str) -> None:
        result = op.get("result") if isinstance(op.get("result"), dict) else {}
        code = str(result.get("code", ""))
        message = str(result.get("message", "")) or "the operation failed"
        try:  # make sure nothing is left behind (Crusoe removes a failed create itself)
            current = self.get_instance(inst.id)
            if current.state is not State.DELETING:
                self._client.request("DELETE", self._instances_path(inst.id), idempotent=False)
        except NotFound:
            pass
        except VmopsError:
            pass
        text = f"{verb} of instance {inst.id} ({inst.name}) failed: {message}"
        if verb == "create" and code.lower() in ("out_of_stock", "resource_exhausted", "insufficient_capacity", ""):
            raise InsufficientCapacity(text, provider=self.name)
        cls = _CODE_TABLE.get(code.upper(), (FailedPrecondition, None))[0]
        raise cls(text, provider=self.name)
