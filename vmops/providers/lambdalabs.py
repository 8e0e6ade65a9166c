"""Lambda Cloud adapter (contract: provider-apis.md §2).

Lambda is synchronous: a launch returns ids of instances that already exist, a terminate removes them at
once. The adapter still settles through ``wait_for`` whenever an instance is not yet in its target state
(the real cloud shows ``booting`` for a while), so results are settled either way.

Traps handled here (§2.7): terminate is a batch without rollback, so reserved instances are filtered out
before any terminate, a call carries at most ``destroy_batch`` ids, and the ids of a call that erred (or
whose answer was lost) are each sent again alone, where "not found" means gone; launches never auto-place
into reservations, and we only launch into one when the caller asks for it with
``ReservationPolicy.STRICT``; a lost or rate-limited launch is resolved by looking the VM up by name before
any retry, so no duplicate is ever made.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Any, Callable, Iterable, Mapping

import httpx

from vmops.config import ProviderSettings
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    NotFound,
    OperationTimeout,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    ReservedCannotTerminate,
    Silent,
    Unreachable,
    Unsupported,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, Instance, Offer, Reservation, ReservationPolicy, State, map_state
from vmops.providers import protocol
from vmops.providers.base import TARGETS, Capabilities, DestroyResult, Provider, Timing
from vmops.providers.http import RestClient, parse_utc, segment
from vmops.providers.retry import RetryAfter
from vmops.providers.wire import flag, integer, malformed, number, obj, parsing, text

#: Lambda's documented statuses -> canonical state. Live instances on the wire are always "active";
#: "terminated" only appears inside a terminate response.
STATE: dict[str, State] = {
    "active": State.RUNNING,
    "booting": State.CREATING,
    "unhealthy": State.ERROR,
    "terminating": State.DELETING,
    "terminated": State.DELETED,
    "preempted": State.ERROR,  # the public API's spot preemption (cloud-apis.md §6.7)
}

API_PRICE = "lambda api price"

_CODE_ERRORS: dict[str, type[VmopsError]] = {
    "global/invalid-api-key": AuthError,
    "global/object-does-not-exist": NotFound,
    "global/invalid-parameters": InvalidArgument,
    "instance-operations/launch/insufficient-capacity": InsufficientCapacity,
    "instance-operations/terminate/reserved-instance": ReservedCannotTerminate,
}
_STATUS_ERRORS: dict[int, type[VmopsError]] = {
    400: InvalidArgument,
    401: AuthError,
    403: PermissionDenied,
    404: NotFound,
    405: Unsupported,
    409: FailedPrecondition,
    422: InvalidArgument,
}


def map_error(resp: httpx.Response, secret: str = "") -> VmopsError:
    """The one place Lambda error answers become typed vmops errors (5xx and 429 are handled by RestClient)."""
    where = f"{resp.request.method} {resp.request.url.path}" if resp.request is not None else ""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    code = ""
    text = ""
    if isinstance(detail, dict) and isinstance(detail.get("error"), dict):
        err = detail["error"]
        code = str(err.get("code", ""))
        text = str(err.get("message", ""))
    elif isinstance(detail, list):  # 422 schema validation
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                parts.append(f"{loc or 'body'}: {item.get('msg', item.get('type', 'invalid'))}")
        text = "request rejected by validation (" + "; ".join(parts) + ")"
    elif isinstance(detail, str):
        text = detail
    if not text:
        text = f"HTTP {resp.status_code}"
    if secret:
        text = text.replace(secret, "****")
    cls = _CODE_ERRORS.get(code) or _STATUS_ERRORS.get(resp.status_code) or ProviderUnavailable
    message = f"{text.rstrip('.')} ({where})" if where else text
    hint: str | None = None
    if cls is Unsupported:
        hint = "Lambda does not offer this operation"
    elif cls is InvalidArgument and resp.status_code == 422:
        hint = "This is a vmops bug or an API change; report it with the message above"
    return cls(message, provider="lambda", hint=hint)


#: a launch: a refused connection ends it; the pause comes before the lookup by name, and after the last
#: failed launch there is still a look
LAUNCH_RESEND = protocol.Resend(unreachable_ends=True, pause_first=True)
#: a terminate of one id: the pause comes before the lookup; the last failure is raised without one
TERMINATE_RESEND = protocol.Resend(pause_first=True, look_after_last=False)

#: The lifecycle verbs Lambda's API lacks: (message, hint) of their refusal.
_NO_SUCH_VERB: dict[str, tuple[str, str]] = {
    "stop": ("Lambda instances cannot be stopped", "Lambda has no stop; destroy the instance instead (`vm destroy`)"),
    "start": ("Lambda instances cannot be started", "Lambda has no stop/start; create a new instance instead"),
    "reboot": ("Lambda has no reboot", "Use `vm restart` instead"),
    "reset": ("Lambda has no reset", "Use `vm restart` instead"),
}

_GPU_DESC = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)")


class LambdaProvider(Provider):
    """Lambda Cloud behind the normalized model."""

    name = "lambda"
    capabilities = Capabilities(stop_start=False, labels=False, terminate_reserved=False, idempotency_key=False)

    def __init__(self, settings: ProviderSettings, timing: Timing | None = None) -> None:
        super().__init__(settings, timing)
        self._client = self._rest_client()
        self._prefix = "" if settings.url.rstrip("/").endswith("/api/v1") else "/api/v1"
        self._sleep: Callable[[float], None] = time.sleep

    # ---- wire ----------------------------------------------------------------------------------
    def _rest_client(self) -> RestClient:
        """The HTTP client (the cloud dialect's subclass paces it and reads the other error envelope)."""
        secret = self.settings.api_key.reveal()
        return RestClient(self.settings, self.timing, lambda r: map_error(r, secret), auth_scheme="Bearer")

    def _get(self, path: str) -> Any:
        return self._data(self._client.request("GET", self._prefix + path))

    def _post(self, path: str, body: Any) -> Any:
        return self._data(self._client.request("POST", self._prefix + path, json=body, idempotent=False))

    def _data(self, body: Any) -> Any:
        if not isinstance(body, dict) or "data" not in body:
            raise malformed(self.name, "a Lambda API call", "no `data` field")
        return body["data"]

    def _objects(self, data: Any, what: str) -> list[Mapping[str, Any]]:
        """``data`` that must be a list of objects."""
        if not isinstance(data, list):
            raise malformed(self.name, what, "`data` is not a list")
        return [obj(d, self.name, what, f"entry {i}") for i, d in enumerate(data)]

    # ---- normalization -------------------------------------------------------------------------
    def _shape(self, type_obj: Mapping[str, Any]) -> GpuShape | None:
        native = self.catalogue.type_named(str(type_obj.get("name", "")))
        if native is not None:
            return native.shape
        gpus = (type_obj.get("specs") or {}).get("gpus")
        m = _GPU_DESC.match(str(type_obj.get("gpu_description") or ""))
        if m and isinstance(gpus, int) and gpus > 0:
            return GpuShape(m.group(1).lower(), gpus)
        return None

    def _price(self, type_obj: Mapping[str, Any]) -> tuple[float | None, str | None]:
        cents = type_obj.get("price_cents_per_hour")
        if isinstance(cents, (int, float)) and not isinstance(cents, bool):
            return cents / 100, API_PRICE
        native = self.catalogue.type_named(str(type_obj.get("name", "")))
        if native is not None:
            return native.list_price_per_hour, native.price_source
        return None, None

    def _instance(self, d: Any, what: str = "an instance answer") -> Instance:
        """The parsing layer for instances: every field is checked (``wire``); a bad answer is MalformedAnswer."""
        p = self.name
        d = obj(d, p, what)
        with parsing(p, what):
            iid = text(d, "id", p, what, required=True)
            type_obj: Mapping[str, Any] = d.get("instance_type") or {}
            if isinstance(type_obj, str):
                type_obj = {"name": type_obj}
            type_obj = obj(type_obj, p, what, "field 'instance_type'")
            type_name = text(type_obj, "name", p, what) or ""
            number(type_obj, "price_cents_per_hour", p, what)
            region = d.get("region")
            if isinstance(region, Mapping):
                region_name = text(region, "name", p, what)
            else:
                region_name = text(d, "region", p, what)
            native_state = text(d, "status", p, what) or ""
            reserved = flag(d, "is_reserved", p, what)
            actions = obj(d.get("actions") or {}, p, what, "field 'actions'")
            term = obj(actions.get("terminate") or {}, p, what, "field 'actions.terminate'")
            terminate = flag(term, "available", p, what, default=not reserved) if "available" in term else None
            price, source = self._price(type_obj)
            return Instance(
                provider=self.name,
                id=str(iid),
                name=_name(d.get("name")),
                state=map_state(native_state, STATE),
                native_state=native_state,
                native_type=type_name,
                gpu=self._shape(type_obj),
                region=region_name or None,
                public_ip=text(d, "ip", p, what) or None,
                private_ip=text(d, "private_ip", p, what) or None,
                reserved=reserved,
                reservation_id=text(d, "reservation_id", p, what) or None,
                price_per_hour=price,
                price_source=source,
                created_at=parse_utc(text(d, "created_at", p, what) or text(d, "created", p, what)),
                labels=_labels(d.get("tags")),
                can_terminate=terminate if terminate is not None else not reserved,
            )

    # ---- reads ---------------------------------------------------------------------------------
    def list_instances(self) -> list[Instance]:
        what = "GET instances"
        return [self._instance(d, what) for d in self._objects(self._get("/instances"), what)]

    def get_instance(self, instance_id: str) -> Instance:
        return self._instance(self._get(f"/instances/{segment(instance_id, 'instance id')}"), "GET instance")

    def reservations(self) -> list[Reservation]:
        out = []
        what, p = "GET reservations", self.name
        for r in self._objects(self._get("/reservations"), what):
            rid = text(r, "id", p, what, required=True)
            native = text(r, "instance_type", p, what) or ""
            entry = self.catalogue.type_named(native)
            out.append(Reservation(
                provider=self.name,
                id=str(rid),
                name=str(rid),
                native_type=native,
                gpu=entry.shape if entry else None,
                region=text(r, "region", p, what),
                active=True,  # Lambda reports no status and never checks the dates
                total_vms=integer(r, "quantity", p, what, 0),
                used_vms=integer(r, "used", p, what, 0),
                price_per_hour=None,
                start=text(r, "start_date", p, what),
                end=text(r, "end_date", p, what),
            ))
        return out

    def _instance_types(self) -> dict[str, Any]:
        """Instance types by name, each entry checked: an ``instance_type`` object and a list of regions."""
        data = self._get("/instance-types")
        what, p = "GET instance-types", self.name
        if not isinstance(data, dict):
            raise malformed(p, what, "`data` is not an object")
        for name, entry in data.items():
            entry = obj(entry, p, what, f"entry {name!r}")
            if entry.get("instance_type") is not None:
                type_obj = obj(entry["instance_type"], p, what, f"{name}.instance_type")
                text(type_obj, "name", p, what)
                number(type_obj, "price_cents_per_hour", p, what)
            regions = entry.get("regions_with_capacity_available") or []
            if not isinstance(regions, list):
                raise malformed(p, what, f"{name}.regions_with_capacity_available is not a list")
            for r in regions:
                text(obj(r, p, what, f"a region of {name}"), "name", p, what, required=True)
        return data

    def offers(self, shape: GpuShape | None = None) -> list[Offer]:
        out: list[Offer] = []
        for tname, entry in self._instance_types().items():
            type_obj = entry.get("instance_type") or {"name": tname}
            gpu = self._shape(type_obj)
            if gpu is None or (shape is not None and gpu != shape):
                continue
            price, source = self._price(type_obj)
            with_cap = [r.get("name") for r in entry.get("regions_with_capacity_available") or []]
            regions = list(self.catalogue.regions) + [r for r in with_cap if r not in self.catalogue.regions]
            for region in regions:
                out.append(Offer(provider=self.name, gpu=gpu, native_type=tname, region=region,
                                 price_per_hour=price, price_source=source or API_PRICE,
                                 available=None, has_capacity=region in with_cap))
        for rsv in self.reservations():
            if rsv.gpu is None or (shape is not None and rsv.gpu != shape):
                continue
            out.append(Offer(provider=self.name, gpu=rsv.gpu, native_type=rsv.native_type, region=rsv.region,
                             price_per_hour=None, price_source="lambda reservation (prepaid)",
                             available=rsv.available_vms, has_capacity=rsv.available_vms > 0,
                             reserved=True, reservation_id=rsv.id))
        return out

    # ---- create --------------------------------------------------------------------------------
    def placement(self, request: CreateRequest) -> tuple[str, str | None]:
        """(region, reservation id or None) for a create."""
        if request.reservation_policy is ReservationPolicy.STRICT:
            if not request.reservation_ids:
                raise InvalidArgument("a strict reservation policy needs at least one reservation id",
                                      provider=self.name, hint="Pass --reservation ID (see `vm reservations`)")
            known = {r.id: r for r in self.reservations()}
            problems = []
            for rid in request.reservation_ids:
                rsv = known.get(rid)
                if rsv is None:
                    problems.append(f"{rid} does not exist")
                elif rsv.native_type != request.native_type:
                    problems.append(f"{rid} is for {rsv.native_type}")
                elif request.region and rsv.region != request.region:
                    problems.append(f"{rid} is in {rsv.region}")
                elif rsv.available_vms < 1:
                    problems.append(f"{rid} is full ({rsv.used_vms}/{rsv.total_vms} used)")
                else:
                    return str(rsv.region), rsv.id
            raise InsufficientCapacity(
                f"no usable reservation for {request.native_type}: " + "; ".join(problems), provider=self.name,
                hint="Check `vm reservations`, or allow on-demand capacity")
        # AUTO and FORBID: Lambda never auto-places, and reserved VMs cannot be terminated through the API,
        # so vmops only lands on reserved capacity when the caller names it (STRICT).
        if request.region:
            return request.region, None
        types = self._instance_types()
        entry = types.get(request.native_type)
        if entry is None:
            raise InvalidArgument(f"Lambda has no instance type {request.native_type}", provider=self.name,
                                  hint=f"Known types: {', '.join(types)}")
        regions = [r.get("name") for r in entry.get("regions_with_capacity_available") or []]
        if not regions:
            raise InsufficientCapacity(f"no Lambda region has on-demand capacity for {request.native_type}",
                                       provider=self.name)
        return str(regions[0]), None

    def _launched_ids(self, data: Any) -> list[str]:
        what = "POST launch"
        ids = obj(data, self.name, what, "`data`").get("instance_ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise malformed(self.name, what, "`instance_ids` is not a list of ids")
        return ids

    def launched(self, iid: str, request: CreateRequest, region: str | None) -> Instance:
        """A VM as the launch answer tells it (an id only): booting, no addresses yet (``read_back=False``)."""
        native = self.catalogue.type_named(request.native_type)
        return Instance(provider=self.name, id=iid, name=request.name, state=State.CREATING,
                        native_state="(launched)", native_type=request.native_type,
                        gpu=native.shape if native else None, region=region)

    def create(self, request: CreateRequest, *, wait: bool = True) -> Instance:
        if not isinstance(request.name, str) or not request.name.strip():
            raise InvalidArgument("a Lambda instance needs a non-empty name (vmops finds lost launches by name)",
                                  provider=self.name)
        region, rid = self.placement(request)
        body: dict[str, Any] = {
            "region_name": region,
            "instance_type_name": request.native_type,
            "ssh_key_names": [self.settings.ssh_key],
            "name": request.name,
            "quantity": 1,  # one VM per launch: with quantity > 1 Lambda appends -N to the names
        }
        if rid:
            body["reservation_id"] = rid
        # Names are not unique at Lambda: remember who already carries this name, so a lost answer
        # adopts only a VM this call made.
        before = protocol.named_before(request, self.find_by_name)

        def lookup_failed(sent: ProviderUnavailable, lookup: ProviderUnavailable) -> VmopsError:
            if isinstance(sent, RetryAfter):  # refused, so nothing was launched: the lookup's own error
                return lookup
            return OutcomeUnknown(
                f"launch of {request.name} may have happened ({sent.message}) and looking it up by name failed",
                provider=self.name, hint="Check `vm list` for the name before creating it again")

        # an unreadable answer is a lost one; nothing listening means nothing was launched (asking again waits)
        done = protocol.create_resolving(
            lambda: self._launched_ids(self._post("/instance-operations/launch", body)),
            lambda: [i for i in self.find_by_name(request.name) if i.id not in before], self.timing,
            sleep=self._sleep, resend=LAUNCH_RESEND, lookup_failed=lookup_failed)
        if done.adopted is not None:
            inst = done.adopted
        else:
            ids = done.answer or []
            if not ids:
                raise ProviderUnavailable(f"launch of {request.name} returned no instance id", provider=self.name)
            if not wait and not request.read_back:
                return self.launched(str(ids[0]), request, region)
            try:
                inst = self.get_instance(str(ids[0]))
            except ProviderUnavailable:
                raise OutcomeUnknown(f"launched {request.name} as {ids[0]} but could not read it back",
                                     provider=self.name, hint="Check it with `vm get` before creating it again") from None
        if region and inst.region is None:
            inst = replace(inst, region=region)
        if wait and inst.state is not State.RUNNING:
            inst = self.settle(inst, "create")
        return inst

    # ---- lifecycle -----------------------------------------------------------------------------
    def refusal(self, verb: str, instance: Instance | None = None) -> VmopsError | None:
        if verb in _NO_SUCH_VERB:
            message, hint = _NO_SUCH_VERB[verb]
            return Unsupported(message, provider=self.name, hint=hint)
        if verb == "destroy" and instance is not None:
            return self._destroy_refusal(instance)
        return super().refusal(verb, instance)

    def _destroy_refusal(self, inst: Instance) -> VmopsError | None:
        if inst.reserved or not inst.can_terminate:
            return ReservedCannotTerminate(
                f"instance {inst.id} ({inst.name}) is reserved"
                + (f" (reservation {inst.reservation_id})" if inst.reservation_id else "")
                + " and cannot be terminated through the Lambda API", provider=self.name)
        return None

    def stop(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("stop")

    def start(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("start")

    def reboot(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("reboot")

    def reset(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("reset")

    def restart(self, instance_id: str, *, wait: bool = True) -> Instance:
        segment(instance_id, "instance id")
        data = self._post("/instance-operations/restart", {"instance_ids": [instance_id]})
        items = self._objects(obj(data, self.name, "POST restart", "`data`").get("restarted_instances") or [],
                              "POST restart")
        inst = self._instance(items[0], "POST restart") if items else self.get_instance(instance_id)
        if wait and inst.state is not State.RUNNING:
            inst = self.settle(inst, "restart")
        return inst

    def destroy(self, instance_id: str, *, wait: bool = True) -> Instance:
        inst = self.get_instance(instance_id)  # NotFound for an unknown id; validates the id too
        refusal = self.refusal("destroy", inst)  # before any terminate call
        if refusal is not None:
            raise refusal
        return self._terminate_one(inst, wait=wait)

    def _terminate_one(self, inst: Instance, *, wait: bool) -> Instance:
        """Terminate exactly one id. A lost answer is resolved by looking the instance up: gone means
        done, still there means the terminate can safely be sent again (bounded)."""
        gone = False

        def confirm() -> bool:  # gone means done; still listed means the terminate can be sent again
            nonlocal gone
            try:
                self.get_instance(inst.id)
            except NotFound:
                gone = True
            return gone

        data = protocol.mutate_confirming(lambda: self._post("/instance-operations/terminate", {"instance_ids": [inst.id]}),
                                          confirm, self.timing, sleep=self._sleep, resend=TERMINATE_RESEND)
        if gone:
            done = replace(inst, state=State.DELETED, native_state="terminated")
        else:
            try:
                items = self._objects(obj(data, self.name, "POST terminate", "`data`").get("terminated_instances")
                                      or [], "POST terminate")
                done = self._instance(items[0], "POST terminate") if items else replace(inst, state=State.DELETING)
            except ProviderUnavailable:  # the terminate was accepted; the answer is unreadable: check below
                done = replace(inst, state=State.DELETING)
        if wait:
            settled = self.wait_for({inst.id: TARGETS["destroy"]})[inst.id]
            done = replace(done, state=State.DELETED) if settled.state is State.DELETED else settled
        return done

    def destroy_many(self, instance_ids: Iterable[str], *, wait: bool = True,
                     listed: Mapping[str, Instance] | None = None) -> list[DestroyResult]:
        """Reserved ids refused without a call, the rest terminated ``destroy_batch`` ids per call
        (``_terminate_chunk``), then one list to verify what really happened to every id. The list before
        is skipped when ``listed`` has every id."""
        ids = list(dict.fromkeys(instance_ids))
        results: dict[str, DestroyResult] = {}
        try:
            live = self.current(ids, listed)
        except VmopsError as e:
            return [DestroyResult(iid, False, None, e) for iid in ids]
        attempted: dict[str, Instance] = {}
        for iid in ids:
            inst = live.get(iid)
            if inst is None:
                results[iid] = DestroyResult(iid, True, None)  # already gone (or never existed)
                continue
            refusal = self.refusal("destroy", inst)
            if refusal is not None:
                results[iid] = DestroyResult(iid, False, inst, refusal)
                continue
            attempted[iid] = inst
        items = list(attempted.values())
        size = self.destroy_batch
        for start in range(0, len(items), size):
            self._terminate_chunk(items[start:start + size], results)
        if attempted:
            self._verify_destroyed(attempted, results, wait)
        return [results[iid] for iid in ids]

    @property
    def destroy_batch(self) -> int:
        """Ids per terminate call: the setting, else the catalogue's for this dialect (design.md section 3)."""
        configured = self.settings.terminate_batch
        return configured if configured is not None else self.catalogue.terminate_batch(self.settings.dialect)

    def _terminate_chunk(self, chunk: list[Instance], results: dict[str, DestroyResult]) -> None:
        """Terminate ``chunk`` (terminable instances, fresh from a listing) in one call. If that call errs or
        its answer is lost, which of its ids went is unknown (§2.3.4: the ones before a failing id are gone,
        without saying so), so each is then sent alone, where "not found" means gone. A call that could not
        be sent at all changed nothing: every id keeps that error."""
        batch_error: VmopsError | None = None
        if len(chunk) > 1:
            try:
                done = self._terminate_many(chunk)
            except Unreachable as e:
                for inst in chunk:
                    results[inst.id] = DestroyResult(inst.id, False, inst, e)
                return
            except VmopsError as e:
                batch_error = e  # one by one below
            else:
                for inst in chunk:
                    results[inst.id] = DestroyResult(inst.id, True, done.get(inst.id) or replace(inst, state=State.DELETING))
                return
        for inst in chunk:
            try:
                results[inst.id] = DestroyResult(inst.id, True, self._terminate_one(inst, wait=False))
            except NotFound:
                results[inst.id] = DestroyResult(inst.id, True, replace(inst, state=State.DELETED, native_state="(gone)"))
            except Silent as e:  # not sent (the batch left the provider silent): the batch's error says more
                results[inst.id] = DestroyResult(inst.id, False, inst, batch_error or e)
            except VmopsError as e:
                results[inst.id] = DestroyResult(inst.id, False, inst, e)

    def _terminate_many(self, chunk: list[Instance]) -> dict[str, Instance]:
        """One terminate call for every id of ``chunk``; the instances its answer lists, by id (an unreadable
        answer lists none: the verifying list after it tells)."""
        data = self._post("/instance-operations/terminate", {"instance_ids": [inst.id for inst in chunk]})
        try:
            items = self._objects(obj(data, self.name, "POST terminate", "`data`").get("terminated_instances") or [],
                                  "POST terminate")
            return {i.id: i for i in (self._instance(d, "POST terminate") for d in items)}
        except ProviderUnavailable:  # accepted; the answer is unreadable
            return {}

    def _verify_destroyed(self, attempted: dict[str, Instance], results: dict[str, DestroyResult], wait: bool) -> None:
        try:
            listed = {i.id: i for i in self.list_instances() if i.id in attempted}
        except VmopsError:
            return  # each per-id result is already definitive (lost answers were resolved by lookups)
        pending: dict[str, frozenset[State]] = {}
        for iid, inst in attempted.items():
            cur = listed.get(iid)
            r = results[iid]
            if cur is None:
                if not r.ok or r.instance is None or r.instance.state is not State.DELETED:
                    results[iid] = DestroyResult(iid, True, replace(inst, state=State.DELETED, native_state="(gone)"))
            elif r.ok and cur.state is State.DELETING and wait:
                pending[iid] = TARGETS["destroy"]
            elif r.ok and cur.state not in (State.DELETING, State.DELETED):
                results[iid] = DestroyResult(iid, False, cur, FailedPrecondition(
                    f"instance {iid} ({cur.name}) is still {cur.state.value} after terminate", provider=self.name))
        if pending:
            try:
                self.wait_for(pending)
            except OperationTimeout as e:
                for iid in pending:
                    results[iid] = DestroyResult(iid, False, attempted[iid], e)

    def close(self) -> None:
        self._client.close()


def _name(value: Any) -> str:
    """Lambda's rename accepts any JSON value as a name (contract §2), so a name of any type is shown as text."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _labels(tags: Any) -> dict[str, str]:
    if not isinstance(tags, list):
        return {}
    out = {}
    for t in tags:
        if isinstance(t, Mapping) and "key" in t:
            out[str(t["key"])] = str(t.get("value", ""))
    return out
