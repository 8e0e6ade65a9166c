"""Lambda adapter, cloud dialect: Lambda Cloud's real public API (../shared/cloud-apis.md §2, corrections §6).

It shares instance parsing, terminate-then-verify (one id per call here unless ``VMOPS_LAMBDA_TERMINATE_BATCH``
says otherwise: the public API's partial-failure semantics are unconfirmed), restart and ``destroy_many`` with the
reference adapter (``LambdaProvider``) and replaces: the error envelope (``{"error": {code, message, suggestion}}``),
pacing (one process-wide ``Pacer`` per API key: about one request per second, one launch per 12 s, both
configurable with ``VMOPS_LAMBDA_REQUEST_INTERVAL`` / ``_LAUNCH_INTERVAL``), one instance per launch with no
``quantity`` or reservation, offers from ``/instance-types`` (``regions_with_capacity_available``), and the
create protocol (``vmops.providers.protocol``): a launch whose answer is lost is resolved by its unique name
after the launch window, never re-sent blindly. Lambda has no reservations API and no stop/start.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import httpx

from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    Unsupported,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, Instance, Offer, Reservation, ReservationPolicy, State
from vmops.providers import protocol
from vmops.providers.base import Capabilities
from vmops.providers.http import RestClient
from vmops.providers.lambdalabs import API_PRICE, LambdaProvider
from vmops.providers.pacing import PaceLimits, pacer_for

LAUNCH_PATH = "/instance-operations/launch"

#: error code -> (vmops error class, hint or None) (§2.4; §6.9: quota-exceeded is HTTP 400)
_CODES: dict[str, tuple[type[VmopsError], str | None]] = {
    "global/invalid-api-key": (AuthError, "Check VMOPS_LAMBDA_API_KEY (create a key on the dashboard's API keys page)"),
    "global/account-inactive": (PermissionDenied, "The Lambda account is inactive: check billing on the dashboard"),
    "global/object-does-not-exist": (NotFound, None),
    "global/invalid-parameters": (InvalidArgument, None),
    "global/invalid-address": (InvalidArgument, None),
    "global/quota-exceeded": (InsufficientCapacity, "The account's instance quota is used up; it grows with paid "
                                                    "invoices (Lambda support can raise it)"),
    "instance-operations/launch/insufficient-capacity": (InsufficientCapacity, None),
    "instance-operations/launch/file-system-in-wrong-region": (InvalidArgument, None),
    "ssh-keys/key-in-use": (FailedPrecondition, None),
}
_STATUS: dict[int, type[VmopsError]] = {400: InvalidArgument, 401: AuthError, 403: PermissionDenied, 404: NotFound,
                                        409: FailedPrecondition}


def map_error(resp: httpx.Response, secret: str = "") -> VmopsError:
    """The one place Lambda cloud error answers become vmops errors (5xx and 429 are RestClient's)."""
    where = f"{resp.request.method} {resp.request.url.path}" if resp.request is not None else ""
    try:
        body = resp.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code", "")) if isinstance(err, dict) else ""
    message = str(err.get("message", "")) if isinstance(err, dict) else ""
    suggestion = str(err.get("suggestion", "")) if isinstance(err, dict) and err.get("suggestion") else None
    text = (message or f"HTTP {resp.status_code}").rstrip(".")
    if secret:
        text = text.replace(secret, "****")
    if code.startswith("provider/"):  # an upstream provider's failure (§2.4): transient
        return ProviderUnavailable(f"{text} ({code}, {where})", provider="lambda")
    cls, hint = _CODES.get(code, (_STATUS.get(resp.status_code, InvalidArgument), None))
    return cls(f"{text} ({where})" if where else text, provider="lambda", hint=hint or suggestion)


class LambdaCloudProvider(LambdaProvider):
    """Lambda Cloud's public API behind the normalized model."""

    name = "lambda"
    capabilities = Capabilities(stop_start=False, labels=False, terminate_reserved=True, idempotency_key=False)

    def _rest_client(self) -> RestClient:
        """The reference client's shape with the cloud error envelope, paced by the process-wide pacer."""
        entry, settings = self.catalogue, self.settings
        self.limits = PaceLimits(
            request_interval=(settings.request_interval if settings.request_interval is not None
                              else entry.cloud_request_interval),
            launch_interval=(settings.launch_interval if settings.launch_interval is not None
                             else entry.cloud_launch_interval),
            max_per_launch=entry.cloud_max_per_launch or 1)
        secret = settings.api_key.reveal()
        self._pacer = pacer_for(self.name, settings.url, secret, self.limits)
        return RestClient(settings, self.timing, lambda r: map_error(r, secret), auth_scheme="Bearer",
                          before_send=self._paced, on_rate_limited=self._slow_down)

    def pace_limits(self) -> PaceLimits:
        return self.limits

    def _paced(self, method: str, path: str) -> None:
        self._pacer.acquire(launch=path.endswith(LAUNCH_PATH))

    def _slow_down(self, path: str, retry_after: float | None) -> None:
        launch = path.endswith(LAUNCH_PATH)
        wait = retry_after if retry_after is not None else (self.limits.launch_interval if launch
                                                            else self.limits.request_interval)
        self._pacer.penalize(wait, launch=launch)

    # ---- reads ---------------------------------------------------------------------------------
    def reservations(self) -> list[Reservation]:
        """Lambda publishes no reservations API (§2.3): none."""
        return []

    def offers(self, shape: GpuShape | None = None) -> list[Offer]:
        out: list[Offer] = []
        for tname, entry in self._instance_types().items():
            type_obj = entry.get("instance_type") or {"name": tname}
            gpu = self._shape(type_obj)
            if gpu is None or (shape is not None and gpu != shape):
                continue
            price, source = self._price(type_obj)
            for region in [r.get("name") for r in entry.get("regions_with_capacity_available") or []]:
                out.append(Offer(provider=self.name, gpu=gpu, native_type=tname, region=region, price_per_hour=price,
                                 price_source=source or API_PRICE, available=None, has_capacity=True))
        return out

    # ---- create --------------------------------------------------------------------------------
    def _type_and_region(self, request: CreateRequest) -> tuple[str, str]:
        """The real type name for the request (a catalogue name of either dialect maps through its shape) and
        a region: the requested one, else the first with capacity (launching blind burns a 12 s slot)."""
        if request.reservation_policy is ReservationPolicy.STRICT:
            raise Unsupported("Lambda's API has no reservations to launch into", provider=self.name,
                              hint="Create without --reservation")
        types = self._instance_types()
        tname = request.native_type
        if tname not in types:
            known = self.catalogue.type_named(tname)
            same = [n for n, e in types.items()
                    if known is not None and self._shape(e.get("instance_type") or {"name": n}) == known.shape]
            if not same:
                raise InvalidArgument(f"Lambda has no instance type {tname}", provider=self.name,
                                      hint="Known types: " + ", ".join(types))
            with_cap = [n for n in same if types[n].get("regions_with_capacity_available")]
            tname = (with_cap or same)[0]
        regions = [r.get("name") for r in types[tname].get("regions_with_capacity_available") or []]
        if request.region:
            return tname, request.region
        if not regions:
            raise InsufficientCapacity(f"no Lambda region has capacity for {tname}", provider=self.name)
        return tname, str(regions[0])

    def placement(self, request: CreateRequest) -> tuple[str, str | None]:
        return self._type_and_region(request)[1], None

    def create(self, request: CreateRequest, *, wait: bool = True) -> Instance:
        if not isinstance(request.name, str) or not request.name.strip() or len(request.name) > 64:
            raise InvalidArgument("a Lambda instance needs a name of 1 to 64 characters (vmops finds lost launches "
                                  "by name)", provider=self.name)
        tname, region = self._type_and_region(request)
        body: dict[str, Any] = {"region_name": region, "instance_type_name": tname,
                                "ssh_key_names": [self.settings.ssh_key], "name": request.name}
        before = protocol.named_before(request, self.find_by_name)

        def find_new() -> list[Instance]:
            return [i for i in self.find_by_name(request.name) if i.id not in before]

        try:
            done = protocol.create_resolving(lambda: self._post(LAUNCH_PATH, body), find_new, self.timing,
                                             grace=max(self.timing.request_timeout, self.limits.launch_interval),
                                             sleep=self._sleep)
        except NotFound as e:  # the only named object a launch refers to besides type and region: the SSH key
            if "ssh" not in e.message.lower():
                raise
            raise InvalidArgument(f"Lambda has no SSH key named {self.settings.ssh_key!r} ({e.message})",
                                  provider=self.name,
                                  hint="Register your public key under that name on the dashboard's SSH keys page, "
                                       "or set VMOPS_LAMBDA_SSH_KEY to the name of one you registered") from None
        if done.adopted is not None:
            inst = done.adopted
        else:
            ids = self._launched_ids(done.answer)
            if not ids:
                raise ProviderUnavailable(f"launch of {request.name} returned no instance id", provider=self.name)
            if not wait and not request.read_back:  # a paced GET per VM saved: the caller's wait lists anyway
                return self.launched(str(ids[0]), replace(request, native_type=tname), region)
            try:
                inst = protocol.retrying(lambda: self.get_instance(str(ids[0])), self.timing, sleep=self._sleep)
            except ProviderUnavailable:
                raise OutcomeUnknown(f"launched {request.name} as {ids[0]} but could not read it back",
                                     provider=self.name, hint="Check it with `vm get` before creating it again") from None
        if inst.region is None:
            inst = replace(inst, region=region)
        if wait and inst.state is not State.RUNNING:
            inst = self.settle(inst, "create")
        return inst

    def _terminate_one(self, inst: Instance, *, wait: bool) -> Instance:
        """Terminate one id through the shared protocol: after a lost answer the instance is looked up, and
        ``terminating`` or gone counts as done (the real API keeps it listed while it shuts down)."""
        def send() -> Any:
            return self._post("/instance-operations/terminate", {"instance_ids": [inst.id]})

        def confirm() -> bool:
            return self.get_instance(inst.id).state in (State.DELETING, State.DELETED)

        try:
            data = protocol.mutate_confirming(send, confirm, self.timing, sleep=self._sleep, gone_is_done=True)
        except NotFound:  # gone between the lookup and a resend
            data = None
        done = replace(inst, state=State.DELETING, native_state="terminating")
        if isinstance(data, Mapping):
            try:
                listed = self._objects(data.get("terminated_instances") or [], "POST terminate")
                done = self._instance(listed[0], "POST terminate") if listed else done
            except ProviderUnavailable:
                pass  # accepted; the answer is unreadable: the wait below tells
        if wait:
            settled = self.wait_for({inst.id: frozenset({State.DELETED})})[inst.id]
            done = replace(done, state=State.DELETED) if settled.state is State.DELETED else settled
        return done

    def _destroy_refusal(self, inst: Instance) -> VmopsError | None:
        """The public API has no reserved instances; ``actions.terminate`` is read only to say why not."""
        if inst.state is State.DELETING or inst.can_terminate:
            return None
        return FailedPrecondition(f"instance {inst.id} ({inst.name}) cannot be terminated now", provider=self.name)

    def _instance(self, d: Any, what: str = "an instance answer") -> Instance:
        inst = super()._instance(d, what)
        if isinstance(d, Mapping) and inst.state is State.DELETING:
            return replace(inst, can_terminate=True)  # already terminating: a repeat is harmless
        return inst

    def check_access(self) -> str:
        return f"{len(self._instance_types())} instance types"
