"""Crusoe adapter, cloud dialect: Crusoe's real public API (../shared/cloud-apis.md §1, corrections in §6).

It shares the operation machinery of the reference adapter (``CrusoeProvider``: operation polling, settling,
failed-create cleanup, destroy and destroy_many) and replaces the wire: signed requests (``crusoe_sign``),
``VMOPS_CRUSOE_URL`` including the API version, project discovery, paginated lists, the real instance and
operation objects, PATCH actions (START/STOP/RESET; restart = STOP then START), capacities + types + quotas for
offers, organization reservations (below), and the shared create/mutate protocol (``vmops.providers.protocol``).

Reservations (§1.3 "Reservations", §4 rows 24/25) belong to the organization (``VMOPS_CRUSOE_ORGANIZATION_ID``,
else the project's ``organization_id`` from ``GET /organizations/projects``). Each one is a product line
(``h100``) with a ``quantity`` in one or more locations; vmops shows it as VMs of the line's largest product the
project may use (``h100-80gb-sxm-ib.8x``), in its first location, counting ``quantity``/``used_quantity`` as GPUs
and ``price`` as USD per GPU-hour (both units are unconfirmed). Only reservations listing this project (or no
project) and inside their contract dates are active. Creates send ``reservation_specification``: ``{id}`` for
a strict policy (an id given, else the eligible reservation Crusoe's ``lowest_cost`` would pick), ``{selection_strategy:
"on_demand"}`` to forbid reservations, nothing for auto (Crusoe's default, ``lowest_cost``).

Unconfirmed points (§5) are accepted in every documented variant: states with or without ``STATE_``; unknown
states are transitional; the new VM id from ``operation.metadata.id`` or else found by its unique name; a
missing VM as 404 or 403; error tokens in ``code`` or ``message``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import httpx

from vmops.config import ProviderSettings
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
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
from vmops.providers.base import Capabilities, Timing
from vmops.providers.crusoe import CrusoeProvider
from vmops.providers.crusoe_sign import CrusoeSigner, SignatureError
from vmops.providers.http import RestClient, parse_utc, segment
from vmops.providers.pacing import PaceLimits, pacer_for
from vmops.providers.sshkeys import public_key_text
from vmops.providers.wire import integer, items, obj, parsing, text

log = logging.getLogger("vmops.crusoe")

DEFAULT_VERSION = "/v1alpha5"

#: native state without the optional ``STATE_`` prefix -> canonical state (§1.3; only RUNNING, DELETING and
#: DELETED are confirmed, the rest come from third parties; anything else maps to unknown = transitional)
STATE: dict[str, State] = {
    "RUNNING": State.RUNNING,
    "RUNNING_DEGRADED": State.RUNNING,
    "DEFINING": State.CREATING,
    "RESOURCING_LOCATION": State.CREATING,
    "RESOURCING_AGENT": State.CREATING,
    "CREATING": State.CREATING,
    "PROVISIONING": State.CREATING,
    "SHUTDOWN": State.STOPPING,
    "STOPPING": State.STOPPING,
    "SHUTOFF": State.STOPPED,
    "STOPPED": State.STOPPED,
    "STARTING": State.STARTING,
    "DELETING": State.DELETING,
    "DELETED": State.DELETED,
    "CRASHED": State.ERROR,
    "BLOCKED": State.ERROR,
}
_CAPACITY_TOKENS = ("out_of_stock", "insufficient_capacity", "resource_exhausted")
_RPC_PREFIX = re.compile(r"^rpc error: code = \w+ desc = ")
_PRODUCT = re.compile(r"^([a-z]+\d+[a-z]*)(?:-[0-9a-z-]+)?\.(\d+)x$")
_GPU_TYPE = re.compile(r"^\s*([A-Za-z]+\d+[A-Za-z]*)")
LIST_PRICE_NOTE = "crusoe published list price (the API has no prices)"
RESERVATION_PRICE_NOTE = "crusoe reservation price"


def map_error(resp: httpx.Response) -> VmopsError:
    """The one place Crusoe cloud error answers become vmops errors: HTTP status first, then the spec's token
    (in ``code`` or in ``message``: §1.4 leaves the placement open)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    code = str(body.get("code") or "")
    message = _RPC_PREFIX.sub("", str(body.get("message") or "")) or code or f"HTTP {resp.status_code}"
    where = f"{resp.request.method} {resp.request.url.path}" if resp.request is not None else "request"
    tokens = f"{code} {message}".lower()
    text_ = f"{message} ({where})"
    status = resp.status_code
    if status == 401:
        return AuthError(text_, provider="crusoe",
                         hint="Check VMOPS_CRUSOE_ACCESS_KEY_ID / VMOPS_CRUSOE_SECRET_KEY and this machine's clock "
                              "(every request is signed with the time; `vm doctor` shows the skew)")
    if status == 403:
        return PermissionDenied(text_, provider="crusoe",
                                hint="Check VMOPS_CRUSOE_PROJECT: the key's user must be a member of that project")
    if status == 404:
        return NotFound(text_, provider="crusoe")
    if status == 409:
        return FailedPrecondition(text_, provider="crusoe")
    if any(t in tokens for t in _CAPACITY_TOKENS):
        return InsufficientCapacity(text_, provider="crusoe")
    if "quota" in tokens:
        return InsufficientCapacity(text_, provider="crusoe", hint="The project's quota is used up: see `vm capacity`")
    return InvalidArgument(text_, provider="crusoe")


@dataclass(frozen=True)
class CloudType:
    """One product of ``GET /compute/vms/types``."""

    name: str
    shape: GpuShape | None
    vcpus: int
    memory_gib: int


def shape_of(product: str, gpu_type: str | None = None, num_gpu: int | None = None) -> GpuShape | None:
    """A canonical shape from the API's GPU type and count, else from the product name (``a100-80gb.8x``)."""
    m = _GPU_TYPE.match(gpu_type or "")
    if m and num_gpu and num_gpu > 0:
        return GpuShape(m.group(1).lower(), num_gpu)
    m = _PRODUCT.match(product)
    return GpuShape(m.group(1), int(m.group(2))) if m else None


class CrusoeCloudProvider(CrusoeProvider):
    name = "crusoe"
    capabilities = Capabilities(stop_start=True, labels=False, terminate_reserved=True, idempotency_key=False)

    def __init__(self, settings: ProviderSettings, timing: Timing | None = None) -> None:
        if "://" in settings.url and "/" not in settings.url.split("://", 1)[1].rstrip("/"):
            settings = replace(settings, url=settings.url.rstrip("/") + DEFAULT_VERSION)
        self._project: str | None = settings.scope
        self._organization: str | None = settings.organization
        self._types: dict[str, CloudType] | None = None
        super().__init__(settings, timing)

    def _rest_client(self) -> RestClient:
        """A client that signs every attempt, paced when a request interval is configured; a missing or bad
        credential is raised at the first request, before anything is sent."""
        settings = self.settings
        self._cred_error: VmopsError | None = None
        signer: CrusoeSigner | None = None
        if not settings.key_id or not settings.api_key:
            self._cred_error = AuthError(
                "no Crusoe access key id / secret key is configured", provider=self.name,
                hint="Set VMOPS_CRUSOE_ACCESS_KEY_ID and VMOPS_CRUSOE_SECRET_KEY (or *_FILE), or run `crusoe "
                     "config` to write ~/.crusoe/config")
        else:
            try:
                signer = CrusoeSigner(settings.key_id, settings.api_key.reveal())
            except SignatureError:
                self._cred_error = AuthError("the Crusoe secret key is not base64url text", provider=self.name,
                                             hint="Copy the secret key exactly as the console showed it")
        limits = self.pace_limits()
        self._pacer = (pacer_for(self.name, settings.url, str(settings.key_id), limits)
                       if limits.request_interval > 0 else None)
        return RestClient(settings, self.timing, map_error, auth=signer, before_send=self._before_send,
                          on_rate_limited=self._slow_down)

    def pace_limits(self) -> PaceLimits:
        interval = (self.settings.request_interval if self.settings.request_interval is not None
                    else self.catalogue.cloud_request_interval)
        return PaceLimits(request_interval=interval)

    def _slow_down(self, path: str, retry_after: float | None) -> None:
        if self._pacer is not None:
            self._pacer.penalize(retry_after if retry_after is not None else 1.0)

    def _before_send(self, method: str, path: str) -> None:
        if self._cred_error is not None:
            raise self._cred_error
        if self._pacer is not None:
            self._pacer.acquire()

    # ------------------------------------------------------------------ plumbing
    @property
    def _base(self) -> str:
        return f"/projects/{segment(self.project(), 'project')}"

    def _projects(self) -> list[tuple[str, str | None]]:
        """``(project id, organization id)`` of every project the key's user belongs to."""
        what = "GET organizations/projects"
        found = items(self._get("/organizations/projects"), "items", self.name, what)
        return [(str(text(p, "id", self.name, what, required=True)), text(p, "organization_id", self.name, what))
                for p in found]

    def project(self) -> str:
        """The configured project, else the only project the key's user belongs to (§1.1)."""
        if self._project:
            return self._project
        projects = self._projects()
        ids = [pid for pid, _ in projects]
        if len(ids) != 1:
            raise InvalidArgument(
                f"no Crusoe project is configured and this key can reach {len(ids)} projects", provider=self.name,
                hint="Set VMOPS_CRUSOE_PROJECT (or `project` in [crusoe]) to one of: " + ", ".join(map(str, ids))
                if ids else "Create a project in the Crusoe console first")
        self._project, self._organization = ids[0], self._organization or projects[0][1]
        return self._project

    def organization(self) -> str:
        """The configured organization, else the one the project belongs to (its reservations live there)."""
        if self._organization:
            return self._organization
        project = self.project()  # discovering the project also reads its organization
        if not self._organization:
            org = next((o for pid, o in self._projects() if pid == project), None)
            if not org:
                raise InvalidArgument(f"cannot tell which Crusoe organization project {project} belongs to",
                                      provider=self.name,
                                      hint="Set VMOPS_CRUSOE_ORGANIZATION_ID (or `organization_id` in [crusoe])")
            self._organization = org
        return self._organization

    def _pages(self, path: str, params: Mapping[str, str], what: str) -> list[Mapping[str, Any]]:
        """Every item of a paginated list: ``next_token`` until ``next_page_token`` comes back empty."""
        out: list[Mapping[str, Any]] = []
        token = ""
        seen: set[str] = set()
        while True:
            body = self._get(path, params={**params, **({"next_token": token} if token else {})})
            out.extend(items(body, "items", self.name, what))
            token = text(obj(body, self.name, what), "next_page_token", self.name, what) or ""
            if not token:
                return out
            if token in seen:  # a server handing back a token twice would loop forever
                raise InvalidArgument(f"{what}: the page token repeats", provider=self.name)
            seen.add(token)

    # ------------------------------------------------------------------ normalization
    def cloud_types(self) -> dict[str, CloudType]:
        """The products this project may use, read from the API once per adapter (§6.6)."""
        if self._types is None:
            what, p = "GET compute/vms/types", self.name
            found: dict[str, CloudType] = {}
            for t in items(self._get(f"{self._base}/compute/vms/types"), "items", p, what):
                name = text(t, "product_name", p, what, required=True) or ""
                found[name] = CloudType(name, shape_of(name, text(t, "gpu_type", p, what),
                                                       integer(t, "num_gpu", p, what, 0)),
                                        integer(t, "cpu_cores", p, what, 0), integer(t, "memory_gb", p, what, 0))
            self._types = found
        return self._types

    def _shape(self, product: str) -> GpuShape | None:
        known = self.catalogue.type_named(product)
        if known is not None:
            return known.shape
        if self._types is not None and product in self._types:
            return self._types[product].shape
        return shape_of(product)

    def _list_price(self, product: str) -> tuple[float | None, str | None]:
        known = self.catalogue.type_named(product)
        return (known.list_price_per_hour, known.price_source) if known else (None, None)

    def _instance(self, vm: Any, what: str = "an instance answer") -> Instance:
        p = self.name
        vm = obj(vm, p, what)
        with parsing(p, what):
            iid = text(vm, "id", p, what, required=True)
            product = text(vm, "type", p, what) or ""
            native_state = text(vm, "state", p, what) or ""
            public_ip = private_ip = None
            nics = vm.get("network_interfaces") or []
            if isinstance(nics, list) and nics:
                ips = obj(nics[0], p, what, "network_interfaces[0]").get("ips") or []
                if isinstance(ips, list) and ips:
                    first = obj(ips[0], p, what, "network_interfaces[0].ips[0]")
                    pub = first.get("public_ipv4") or {}
                    priv = first.get("private_ipv4") or {}
                    public_ip = text(obj(pub, p, what, "public_ipv4"), "address", p, what)
                    private_ip = text(obj(priv, p, what, "private_ipv4"), "address", p, what)
            price, source = self._list_price(product)
            reservation = text(vm, "reservation_id", p, what) or None
            return Instance(
                provider=self.name, id=str(iid), name=text(vm, "name", p, what) or "",
                state=map_state(native_state.removeprefix("STATE_"), STATE), native_state=native_state,
                native_type=product, gpu=self._shape(product), region=text(vm, "location", p, what),
                public_ip=public_ip or None, private_ip=private_ip or None, reserved=reservation is not None,
                reservation_id=reservation, price_per_hour=price, price_source=source,
                created_at=parse_utc(text(vm, "created_at", p, what)), labels={}, can_terminate=True,
            )

    # ------------------------------------------------------------------ reads
    def list_instances(self) -> list[Instance]:
        what = "GET instances"
        return [self._instance(vm, what) for vm in self._pages(self._instances_path(), {}, what)]

    def get_instance(self, instance_id: str) -> Instance:
        try:
            return self._instance(self._get(self._instances_path(instance_id)), "GET instance")
        except PermissionDenied:  # a missing VM may answer 403 (§6.5); the project itself answered other calls
            raise NotFound(f"instance {instance_id} does not exist in this Crusoe project", provider=self.name) from None

    def find_by_name(self, name: str) -> list[Instance]:
        if "," in name or not name:  # the server splits the filter on commas
            return super(CrusoeProvider, self).find_by_name(name)
        what = "GET instances by name"
        found = self._pages(self._instances_path(), {"names": name}, what)
        return [i for i in (self._instance(vm, what) for vm in found) if i.name == name]

    def reservations(self) -> list[Reservation]:
        """The organization's reservations that include this project (see the module docstring)."""
        what, p = "GET organizations/reservations", self.name
        project = self.project()
        rows = self._pages(f"/organizations/{segment(self.organization(), 'organization')}/reservations", {}, what)
        out: list[Reservation] = []
        for r in rows:
            with parsing(p, what):
                projects = r.get("projects") or []
                if not isinstance(projects, list):
                    raise TypeError("projects is not a list")
                if projects and project not in projects:
                    continue
                out.append(self._reservation_of(r, what))
        return out

    def _line_product(self, line: str) -> str | None:
        """The product a reservation of product line ``line`` is shown in: the line's product with the most GPUs
        (a catalogue name first, then any product the types endpoint lists)."""
        types = self.cloud_types()
        same = [t for t in types.values() if t.shape is not None and t.shape.model == line.lower()]
        if not same:
            return None
        known = {t.name for t in self.catalogue.cloud_types}
        best = max(same, key=lambda t: (t.shape.count if t.shape else 0, t.name in known, t.name))
        return best.name

    def _reservation_of(self, r: Mapping[str, Any], what: str) -> Reservation:
        p = self.name
        rid = str(text(r, "id", p, what, required=True))
        line = text(r, "product_line", p, what) or ""
        product = self._line_product(line)
        gpu = self._shape(product) if product else None
        per_vm = gpu.count if gpu else 1
        quantity, used = integer(r, "quantity", p, what, 0), integer(r, "used_quantity", p, what, 0)
        locations = [str(x) for x in (r.get("locations") or []) if isinstance(x, str)]
        start, end = text(r, "contract_start_date", p, what), text(r, "contract_end_date", p, what)
        now = time.time()
        began, ends = parse_utc(start), parse_utc(end)  # a date alone (2026-08-01) parses too
        active = (began is None or began.timestamp() <= now) and (ends is None or now < ends.timestamp())
        price = r.get("price")
        unit = float(price) if isinstance(price, (int, float)) and not isinstance(price, bool) else None
        total_vms = quantity // per_vm
        return Reservation(
            provider=self.name, id=rid, name=f"{text(r, 'reservation_type', p, what) or 'reservation'} {line}".strip(),
            native_type=product or line, gpu=gpu, region=locations[0] if locations else None, active=active,
            total_vms=total_vms, used_vms=max(0, total_vms - max(0, quantity - used) // per_vm),
            price_per_hour=round(unit * per_vm, 4) if unit is not None else None, start=start, end=end)

    def _quota_left(self) -> dict[str, int]:
        """Instances the project may still make per product family (``available`` of its GPU quotas)."""
        what, p = "GET quotas", self.name
        try:
            body = self._get(f"{self._base}/quotas")
        except NotFound:
            return {}
        out: dict[str, int] = {}
        for q in items(body, "quotas", p, what):
            name = text(q, "programmatic_name", p, what) or ""
            if name:
                out[name] = integer(q, "available", p, what, 0)
        return out

    def offers(self, shape: GpuShape | None = None) -> list[Offer]:
        what, p = "GET capacities", self.name
        types = self.cloud_types()
        rows = items(self._get("/capacities"), "items", p, what)
        quota = self._quota_left()
        out: list[Offer] = []
        for row in rows:
            product = text(row, "type", p, what, required=True) or ""
            location = text(row, "location", p, what, required=True)
            gpu = types[product].shape if product in types else None
            if gpu is None or (shape is not None and gpu != shape):
                continue
            n = integer(row, "quantity", p, what, 0)
            family = product.split(".")[0]
            if family in quota:
                n = min(n, quota[family])
            price, source = self._list_price(product)
            out.append(Offer(provider=self.name, gpu=gpu, native_type=product, region=location, price_per_hour=price,
                             price_source=source or LIST_PRICE_NOTE, available=n, has_capacity=n > 0))
        try:
            reservations = self.reservations()
        except (PermissionDenied, NotFound, InvalidArgument) as e:  # a project member may not read the org's
            log.warning("crusoe: no reserved offers (%s)", e.message)
            reservations = []
        return out + reserved_offers(reservations, shape, RESERVATION_PRICE_NOTE)

    # ------------------------------------------------------------------ create
    def _product_for(self, native_type: str) -> str:
        """The product to create for ``native_type``: a product name of this API, or any catalogue name
        (either dialect) mapped through its GPU shape to a product the types endpoint lists."""
        types = self.cloud_types()
        if native_type in types:
            return native_type
        known = self.catalogue.type_named(native_type)
        if known is not None:
            preferred = [t.name for t in self.catalogue.cloud_types if t.shape == known.shape and t.name in types]
            same = preferred or [n for n, t in types.items() if t.shape == known.shape]
            if same:
                return same[0]
        raise InvalidArgument(f"{native_type!r} is not a Crusoe product", provider=self.name,
                              hint="Products of this project: " + ", ".join(sorted(types)))

    def _location_for(self, product: str, region: str | None) -> str:
        rows = [r for r in items(self._get("/capacities", params={"product_name": product}), "items", self.name,
                                 "GET capacities") if r.get("type") == product]
        if region:
            if rows and region not in {r.get("location") for r in rows}:
                raise InvalidArgument(f"Crusoe has no location {region!r} for {product}", provider=self.name,
                                      hint="Locations: " + ", ".join(sorted({str(r.get('location')) for r in rows})))
            return region
        for r in rows:
            if isinstance(r.get("quantity"), int) and r["quantity"] > 0 and isinstance(r.get("location"), str):
                return r["location"]
        raise InsufficientCapacity(f"no Crusoe location has capacity for {product}", provider=self.name)

    def _reservation_spec(self, request: CreateRequest, product: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(reservation_specification, the reservation's location)`` of a create (§1.3, §4 row 25)."""
        policy = request.reservation_policy
        if policy is ReservationPolicy.FORBID:
            return {"selection_strategy": "on_demand"}, None
        if policy is not ReservationPolicy.STRICT:
            return None, None  # AUTO: Crusoe's default placement (lowest_cost: a reservation first)
        shape = self._shape(product)
        per_vm = shape.count if shape else 1
        known = {r.id: r for r in self.reservations()}

        def fits(r: Reservation) -> bool:
            return (r.active and r.gpu is not None and shape is not None and r.gpu.model == shape.model
                    and (request.region is None or r.region in (None, request.region))
                    and r.available_vms * r.gpu.count >= per_vm)

        if request.reservation_ids:
            rid = next((i for i in request.reservation_ids if i in known and fits(known[i])),
                       request.reservation_ids[0])  # none fits: the first, and Crusoe says why
            found = known.get(rid)
            return {"id": rid}, found.region if found else None
        candidates = [r for r in known.values() if fits(r)]
        if not candidates:
            raise InsufficientCapacity(
                f"no reservation of this Crusoe organization has free capacity for {product}"
                + (f" in {request.region}" if request.region else "") + " in this project", provider=self.name,
                hint="See `vm reservations`, or create with the auto reservation policy")
        pick = min(candidates, key=lambda r: (r.price_per_hour if r.price_per_hour is not None else 0.0,
                                              -r.available_vms, r.id))
        return {"id": pick.id}, pick.region

    def _placed(self, request: CreateRequest) -> tuple[str, dict[str, Any] | None, str]:
        """(product, reservation_specification, location) of a create: what ``placement`` shows and ``create`` sends."""
        product = self._product_for(request.native_type)
        spec, reserved_in = self._reservation_spec(request, product)
        location = (request.region or reserved_in or self._location_for(product, None) if spec and "id" in spec
                    else self._location_for(product, request.region))
        return product, spec, location

    def placement(self, request: CreateRequest) -> tuple[str, str | None]:
        _, spec, location = self._placed(request)
        return location, (str(spec["id"]) if spec and "id" in spec else None)

    def create(self, request: CreateRequest, *, wait: bool = True) -> Instance:
        if not request.name:
            raise InvalidArgument("a Crusoe VM needs a name (vmops finds lost creates by name)", provider=self.name)
        product, spec, location = self._placed(request)
        body: dict[str, Any] = {"name": request.name, "type": product, "location": location,
                                "ssh_public_key": public_key_text(self.settings)}
        if spec:
            body["reservation_specification"] = spec
        before = protocol.named_before(request, self.find_by_name)

        def find_new() -> list[Instance]:
            return [i for i in self.find_by_name(request.name) if i.id not in before]

        done = protocol.create_resolving(
            lambda: self._client.request("POST", self._instances_path(), json=body, idempotent=False),
            find_new, self.timing)
        if done.adopted is not None:
            return self._settle(done.adopted, None, "create") if wait else done.adopted
        op = self._operation(done.answer, "POST instances")
        new_id = None
        if op is not None:
            meta = op.get("metadata")
            new_id = meta.get("id") if isinstance(meta, Mapping) and isinstance(meta.get("id"), str) else None
        if new_id and not wait and not request.read_back:  # what the operation says (the caller's wait lists)
            return Instance(provider=self.name, id=str(new_id), name=request.name, state=State.CREATING,
                            native_state="(accepted)", native_type=product, gpu=self._shape(product),
                            region=location)
        if new_id:
            inst = protocol.retrying(lambda: self.get_instance(str(new_id)), self.timing)
        else:  # no id in the operation (unconfirmed placement, §6.2): the unique name finds it
            inst = self._await_named(request.name, find_new, op, product, body["location"])
        return self._settle(inst, op, "create") if wait else inst

    def _await_named(self, name: str, find_new: Callable[[], list[Instance]], op: dict[str, Any] | None,
                     product: str, location: str) -> Instance:
        """The VM an accepted create made, found by its unique name; polls until it is listed, the operation
        fails (``_fail_created`` raises) or the operation timeout passes (OutcomeUnknown: the caller's later
        lookups by name settle it). Never returns an instance without an id."""
        started = time.monotonic()
        deadline = started + self.timing.op_timeout
        pending = Instance(provider=self.name, id="", name=name, state=State.CREATING, native_state="(accepted)",
                           native_type=product, gpu=self._shape(product), region=location)
        path = (f"{self._instances_path()}/operations/{segment(str(op['operation_id']), 'operation id')}"
                if op else None)
        while True:
            found = protocol.retrying(find_new, self.timing)
            if found:
                return found[0]
            if path is not None and op is not None:
                op = obj(self._get(path), self.name, "GET operation")
                if op.get("state") == "FAILED":
                    self._fail_created(pending, dict(op), "create")
            if time.monotonic() >= deadline:  # accepted, not (yet) listed: a later lookup by name resolves it
                raise OutcomeUnknown(f"create of {name} was accepted but no VM carried its name after "
                                     f"{self.timing.op_timeout:g}s", provider=self.name)
            time.sleep(self.poll_delay(time.monotonic() - started))

    # ------------------------------------------------------------------ lifecycle
    def _mutate(self, verb: str, instance_id: str, method: str, path: str, body: Any,
                took_effect: Callable[[Instance], bool]) -> tuple[Instance | None, dict[str, Any] | None]:
        """The reference adapter's send-then-confirm, through the shared protocol; the answer is an operation."""
        def confirm() -> bool:
            return took_effect(self.get_instance(instance_id))

        answer = protocol.mutate_confirming(
            lambda: self._client.request(method, path, json=body, idempotent=False), confirm, self.timing,
            gone_is_done=verb == "destroy")
        if answer is None:
            return None, None
        return None, self._operation(answer, f"{method} instance")

    def refusal(self, verb: str, instance: Instance | None = None) -> VmopsError | None:
        if verb == "reboot":
            return Unsupported("Crusoe has no soft reboot", provider=self.name,
                               hint="Use `vm reset` (hard power cycle) or `vm restart` (stop, then start)")
        return super().refusal(verb, instance)

    def reboot(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("reboot")

    def reset(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._action("reset", instance_id, "PATCH", "", {"action": "RESET"}, wait, lambda i: False)

    def restart(self, instance_id: str, *, wait: bool = True) -> Instance:
        """STOP then START (the real API has no restart action); always waits for the stop."""
        self.stop(instance_id, wait=True)
        return self.start(instance_id, wait=wait)

    # ------------------------------------------------------------------ diagnostics (`vm doctor`)
    def check_access(self) -> str:
        project = self.project()
        return f"project {project}: {len(self.cloud_types())} VM types"

    def clock_skew(self) -> float | None:
        """The server's ``Date`` minus this machine's clock (signatures carry the time; §1.2)."""
        from email.utils import parsedate_to_datetime

        from vmops.providers.http import _no_tls
        from vmops.providers.tls import ssl_context

        url = self.settings.url
        verify = ssl_context(self.settings) if url.startswith("https://") else _no_tls()
        try:
            with httpx.Client(timeout=min(10.0, self.timing.request_timeout), verify=verify, trust_env=False) as c:
                before = time.time()
                resp = c.get(url + "/locations")  # unsigned: any answer carries the server's Date
                after = time.time()
            server = parsedate_to_datetime(resp.headers["date"]).timestamp()
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            return None
        return server - (before + after) / 2
