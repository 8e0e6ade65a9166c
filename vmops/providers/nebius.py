"""Nebius adapter: gRPC (``nebius.compute.v1``) behind the normalized model.

Transport: one channel to ``settings.url`` (``host:port``; insecure unless ``settings.tls``), metadata
``authorization: Bearer <key>`` on every call, a deadline of ``timing.request_timeout`` per call.
Scope: every List/Create uses ``settings.scope`` as ``parent_id``; Nebius has no regions, so instances
carry ``settings.region`` (a display label, normally None).

Async hidden inside: mutations return an Operation that can never be read again (``done`` is always
false), so results are settled by polling the instances: ``wait_for`` does one ``List(parent)`` per tick.

Decisions worth knowing:

* Create always sends an explicit ``reservation_policy`` (AUTO/FORBID/STRICT plus ids) and an
  ``x-idempotency-key`` (``CreateRequest.idempotency_key`` or a fresh uuid4) that stays the same across
  retries. When an answer is lost (UNAVAILABLE/DEADLINE_EXCEEDED after the call may have been sent) the
  adapter first looks the VM up by name and labels, created since this create began, and adopts it; only
  if none exists does it retry (bounded), with the same key, so the server deduplicates as well.
* STRICT with no usable reservation (FAILED_PRECONDITION "No matching reservation ...") is reported as
  ``InsufficientCapacity``: for the caller it means "the reserved capacity you asked for is not there".
* A create whose instance goes to ERROR raises ``InstanceFailed`` (an ``InsufficientCapacity``) naming
  the state and the instance id. The instance is left in place (it still holds capacity): the caller
  decides whether to inspect or destroy it, and the message says so.
* RESOURCE_EXHAUSTED is capacity when the details say "No capacity", otherwise rate limiting
  (transient: reads retry with backoff, honouring a ``retry-after`` trailer when present).
* Offers: reserved offers come from the reservations (exact ``available_units``); on-demand capacity is
  unknowable through this API, so on-demand offers have ``available=None`` and ``has_capacity=None``,
  at the catalogue's list price (the API has no prices at all; reserved offers carry no price).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import grpc

from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops.catalogue import NativeType
from vmops.config import ProviderSettings
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    MalformedAnswer,
    NoAnswer,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    Unreachable,
    Unsupported,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, Instance, Offer, Reservation, ReservationPolicy, State, map_state
from vmops.providers.silence import GRPC_CONNECT_FAILED, Silence, grpc_no_answer
from vmops.providers.base import TARGETS, Capabilities, Provider, Timing
from vmops.providers import protocol
from vmops.providers.retry import DEADLINE_HINT, RetryAfter
from vmops.providers.wire import MAX_ID_LENGTH
from vmops.providers.tls import NotTransient, is_verify_failure, read_ca_bundle, unsendable_key_error, verify_error

log = logging.getLogger("vmops.grpc")

T = TypeVar("T")

#: Native ``InstanceState`` enum names -> canonical state (anything else, including unknown numbers: UNKNOWN).
STATE: Mapping[str, State] = {
    "STATE_UNSPECIFIED": State.UNKNOWN,
    "CREATING": State.CREATING,
    "RUNNING": State.RUNNING,
    "STOPPING": State.STOPPING,
    "STOPPED": State.STOPPED,
    "STARTING": State.STARTING,
    "DELETING": State.DELETING,
    "ERROR": State.ERROR,
}

_POLICY = {ReservationPolicy.AUTO: pb.AUTO, ReservationPolicy.FORBID: pb.FORBID, ReservationPolicy.STRICT: pb.STRICT}
#: after a lost create answer, an instance created this long before the create began still counts as ours
_CLOCK_SLACK_S = 5.0
#: a create carries an idempotency key: it is looked for only when its answer was lost or unreadable (once; the
#: key deduplicates a resend that races a late first one), resent with the same key after any other transient
#: failure, and a refused connection ends it (nothing was sent)
CREATE_RESEND = protocol.Resend(look_on=(OutcomeUnknown, MalformedAnswer), unreachable_ends=True)
#: Stop/Start/Delete are resent without a look (a repeat is harmless); a refused resend is confirmed instead
MUTATE_RESEND = protocol.Resend(look_on=(), unreachable_ends=True)


class InstanceFailed(InsufficientCapacity):
    """A create was accepted but the instance went to ERROR; it still exists (``instance_id``)."""

    def __init__(self, message: str, *, provider: str, instance_id: str, state: str) -> None:
        self.instance_id = instance_id
        self.state = state
        super().__init__(message, provider=provider,
                         hint=f"Destroy it with `vm destroy {instance_id}` once inspected; then try another "
                              "shape or provider (`vm capacity`)")


def map_error(code: grpc.StatusCode, details: str, *, what: str, mutating: bool = False,
              retry_after: float | None = None, provider: str = "nebius") -> VmopsError:
    """The one place gRPC statuses become vmops errors. ``details`` is the server's text (never a key)."""
    d = details or code.name
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthError(f"{what}: the API key was rejected ({d})", provider=provider)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"{what}: {d}", provider=provider)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what}: {d}", provider=provider)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"{what}: {d}", provider=provider,
                               hint="`vm types` lists the shapes Nebius offers")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        if "No matching reservation" in d:
            return InsufficientCapacity(f"{what}: {d}", provider=provider,
                                        hint="Check `vm reservations` for free units, or allow on-demand "
                                             "(reservation policy auto)")
        return FailedPrecondition(f"{what}: {d}", provider=provider)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if "No capacity" in d:
            return InsufficientCapacity(f"{what}: {d}", provider=provider)
        return RetryAfter(f"{what}: rate limited ({d})", provider=provider, retry_after=retry_after)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return Unsupported(f"{what}: the endpoint does not implement this call ({d})", provider=provider,
                           hint="Check that VMOPS_NEBIUS_ENDPOINT points at a Nebius compute API")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        nothing_sent = any(s in d.lower() for s in GRPC_CONNECT_FAILED)
        if mutating and not nothing_sent:
            return OutcomeUnknown(f"{what}: the answer was lost ({code.name}: {d}); it may have taken effect",
                                  provider=provider)
        if nothing_sent:
            return Unreachable(f"{what}: {code.name} ({d})", provider=provider)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:  # a read that got no answer within the deadline
            return NoAnswer(f"{what}: no answer in time ({d})", provider=provider, hint=DEADLINE_HINT)
        return ProviderUnavailable(f"{what}: {code.name} ({d})", provider=provider)
    if code == grpc.StatusCode.INTERNAL and "deserializing response" in d.lower():  # the answer's bytes did not decode
        return MalformedAnswer(f"{what}: the answer is not a valid protobuf message ({d})", provider=provider)
    # INTERNAL, UNKNOWN, CANCELLED, ABORTED, DATA_LOSS, ...: the server or transport failed us
    return ProviderUnavailable(f"{what}: {code.name} ({d})", provider=provider)


def _retry_after(err: grpc.RpcError) -> float | None:
    try:
        for k, v in err.trailing_metadata() or ():  # type: ignore[attr-defined]
            if k == "retry-after":
                return max(0.0, float(v))
    except (ValueError, TypeError, AttributeError):
        return None
    return None


def _endpoint(url: str) -> tuple[str, bool | None]:
    """``host:port`` from a configured endpoint, and whether its scheme demands TLS (None: not said)."""
    for scheme, tls in (("grpcs://", True), ("https://", True), ("grpc://", False), ("http://", False)):
        if url.startswith(scheme):
            return url[len(scheme):].rstrip("/"), tls
    return url.rstrip("/"), None


def _check_id(instance_id: str, what: str = "instance id") -> str:
    if (not isinstance(instance_id, str) or not instance_id.strip() or len(instance_id) > MAX_ID_LENGTH
            or any(c in instance_id for c in "\r\n\x00")):
        shown = instance_id if not isinstance(instance_id, str) or len(instance_id) <= 80 \
            else instance_id[:80] + f"... ({len(instance_id)} characters)"
        raise InvalidArgument(f"{what} {shown!r} is not valid", provider="nebius",
                              hint="Pass the id as shown by `vm list`")
    return instance_id


class NebiusProvider(Provider):
    name: ClassVar[str] = "nebius"
    capabilities: ClassVar[Capabilities] = Capabilities(stop_start=True, labels=True, terminate_reserved=True,
                                                        idempotency_key=True)

    def __init__(self, settings: ProviderSettings, timing: Timing | None = None) -> None:
        super().__init__(settings, timing)
        self.silence = Silence(self.name, self.timing.deadline)
        target, scheme_tls = _endpoint(settings.url)
        self.target = target
        tls = settings.tls if scheme_tls is None else scheme_tls
        self.tls = tls
        if tls:  # the configured CA bundle, else the system's roots
            creds = grpc.ssl_channel_credentials(root_certificates=read_ca_bundle(settings))
            self._channel = grpc.secure_channel(target, creds)
        else:
            self._channel = grpc.insecure_channel(target)
        self._instances = svc_grpc.InstanceServiceStub(self._channel)
        self._reservations = svc_grpc.ReservationServiceStub(self._channel)
        self._key_error = unsendable_key_error(settings)  # raised at the first call, never sent
        self._auth = () if self._key_error else (("authorization", f"Bearer {settings.api_key.reveal()}"),)

    @property
    def parent(self) -> str:
        if not self.settings.scope:
            raise InvalidArgument("no Nebius parent (project) is configured", provider=self.name,
                                  hint="Set VMOPS_NEBIUS_PARENT or `parent` in the [nebius] config section")
        return self.settings.scope

    def close(self) -> None:
        self._channel.close()

    # ---- transport -----------------------------------------------------------------------------
    def _call(self, method: Callable[..., T], request: Any, *, what: str, mutating: bool,
              metadata: tuple[tuple[str, str], ...] = ()) -> T:
        try:
            return self._call_once(method, request, what=what, mutating=mutating, metadata=metadata)
        except NotTransient as e:
            raise e.error from None

    def _call_once(self, method: Callable[..., T], request: Any, *, what: str, mutating: bool,
                   metadata: tuple[tuple[str, str], ...] = ()) -> T:
        """One call; a certificate failure comes out as NotTransient so that retry loops stop."""
        if self._key_error is not None:
            raise self._key_error
        if log.isEnabledFor(logging.DEBUG):
            log.debug("nebius %s %s (%s) metadata=%s", "grpcs" if self.tls else "grpc", self.target, what,
                      [(k, "****" if k == "authorization" else v) for k, v in self._auth + metadata])
        try:
            return self.silence.around(
                lambda: method(request, metadata=self._auth + metadata, timeout=self.timing.request_timeout),
                grpc_no_answer)
        except grpc.RpcError as e:
            code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
            details = e.details() if callable(getattr(e, "details", None)) else str(e)
            log.debug("nebius %s -> %s", what, code.name if code else code)
            if self.tls and code == grpc.StatusCode.UNAVAILABLE and is_verify_failure(details or ""):
                raise NotTransient(verify_error(self.settings, self.target, (details or "").splitlines()[0][:200])) \
                    from None
            raise map_error(code, details or "", what=what, mutating=mutating, retry_after=_retry_after(e),
                            provider=self.name) from None

    def _read(self, method: Callable[..., T], request: Any, *, what: str) -> T:
        return protocol.reading(lambda: self._call_once(method, request, what=what, mutating=False), self.timing)

    # ---- normalization -------------------------------------------------------------------------
    def _native(self, native_type: str) -> NativeType | None:
        return self.catalogue.type_named(native_type)

    def to_instance(self, msg: pb.Instance, what: str = "an instance answer") -> Instance:
        """The parsing layer for instances. Protobuf guarantees types; what can still be wrong is a missing
        id (MalformedAnswer) and an enum number this client does not know (state ``unknown``)."""
        md, spec, status = msg.metadata, msg.spec, msg.status
        if not md.id:
            raise MalformedAnswer(f"malformed answer to {what}: an instance has no id", provider=self.name)
        try:
            native_state = pb.InstanceState.Name(status.state)
        except ValueError:
            native_state = str(status.state)
        native_type = f"{spec.resources.platform}/{spec.resources.preset}"
        nt = self._native(native_type)
        public = private = None
        if len(status.network_interfaces):
            public = status.network_interfaces[0].public_ip_address or None
            private = status.network_interfaces[0].ip_address or None
        if private is None and len(spec.network_interfaces):
            private = spec.network_interfaces[0].ip_address or None
        created = md.created_at.ToDatetime(tzinfo=timezone.utc) if md.HasField("created_at") else None
        rid = status.reservation_id or None
        return Instance(
            provider=self.name,
            id=md.id,
            name=md.name,
            state=map_state(native_state, STATE),
            native_state=native_state,
            native_type=native_type,
            gpu=nt.shape if nt else None,
            region=self.settings.region,
            public_ip=public,
            private_ip=private,
            reserved=rid is not None,
            reservation_id=rid,
            price_per_hour=nt.list_price_per_hour if nt else None,
            price_source=nt.price_source if nt else None,
            created_at=created,
            labels=dict(md.labels),
            can_terminate=True,
        )

    def to_reservation(self, msg: pb.Reservation) -> Reservation:
        if not msg.metadata.id:
            raise MalformedAnswer("malformed answer to listing reservations: a reservation has no id",
                                  provider=self.name)
        native_type = f"{msg.spec.platform}/{msg.spec.preset}"
        nt = self._native(native_type)
        start = msg.metadata.created_at.ToDatetime(tzinfo=timezone.utc).isoformat() \
            if msg.metadata.HasField("created_at") else None
        return Reservation(
            provider=self.name,
            id=msg.metadata.id,
            name=msg.metadata.name,
            native_type=native_type,
            gpu=nt.shape if nt else None,
            region=self.settings.region,
            active=msg.status.state == pb.RESERVATION_ACTIVE,
            total_vms=msg.spec.total_units,
            used_vms=msg.status.used_units,
            price_per_hour=None,
            start=start,
            end=None,
        )

    # ---- reads ---------------------------------------------------------------------------------
    def _list_native(self) -> list[pb.Instance]:
        resp = self._read(self._instances.List, svc.ListInstancesRequest(parent_id=self.parent),
                          what=f"listing instances of {self.parent}")
        return list(resp.instances)

    def list_instances(self) -> list[Instance]:
        return [self.to_instance(m, f"listing instances of {self.parent}") for m in self._list_native()]

    def get_instance(self, instance_id: str) -> Instance:
        _check_id(instance_id)
        msg = self._read(self._instances.Get, svc.GetInstanceRequest(id=instance_id),
                         what=f"getting instance {instance_id}")
        return self.to_instance(msg, f"getting instance {instance_id}")

    def _reservations_native(self) -> list[pb.Reservation]:
        resp = self._read(self._reservations.List, svc.ListReservationsRequest(parent_id=self.parent),
                          what=f"listing reservations of {self.parent}")
        if any(not r.metadata.id for r in resp.reservations):  # the parsing layer, as in to_reservation
            raise MalformedAnswer(f"malformed answer to listing reservations of {self.parent}: a reservation "
                                  "has no id", provider=self.name)
        return list(resp.reservations)

    def reservations(self) -> list[Reservation]:
        return [self.to_reservation(r) for r in self._reservations_native()]

    def offers(self, shape: GpuShape | None = None) -> list[Offer]:
        types = [t for t in self.catalogue.types if shape is None or t.shape == shape]
        if not types:
            return []
        region = self.settings.region
        out: list[Offer] = []
        reservations = self._reservations_native()
        for t in types:
            for r in reservations:
                if f"{r.spec.platform}/{r.spec.preset}" != t.name or r.status.state != pb.RESERVATION_ACTIVE:
                    continue
                avail = max(0, r.status.available_units)
                out.append(Offer(provider=self.name, gpu=t.shape, native_type=t.name, region=region,
                                 price_per_hour=None, price_source="nebius reservation (no price in the API)",
                                 available=avail, has_capacity=avail > 0, reserved=True,
                                 reservation_id=r.metadata.id))
            out.append(Offer(provider=self.name, gpu=t.shape, native_type=t.name, region=region,
                             price_per_hour=t.list_price_per_hour, price_source=t.price_source,
                             available=None, has_capacity=None, reserved=False))
        return out

    # ---- mutations -----------------------------------------------------------------------------
    def _create_request(self, request: CreateRequest, platform: str, preset: str) -> svc.CreateInstanceRequest:
        req = svc.CreateInstanceRequest()
        req.metadata.parent_id = self.parent
        req.metadata.name = request.name
        req.metadata.labels.update({str(k): str(v) for k, v in request.labels.items()})
        req.spec.resources.platform = platform
        req.spec.resources.preset = preset
        req.spec.reservation_policy.policy = _POLICY[ReservationPolicy(request.reservation_policy)]
        req.spec.reservation_policy.reservation_ids.extend(request.reservation_ids)
        return req

    def _find_created(self, request: CreateRequest, since: datetime) -> list[Instance]:
        """What a lost create made: same name, labels included, created since ``since``."""
        want = {str(k): str(v) for k, v in request.labels.items()}
        return [
            i for i in self.find_by_name(request.name)
            if all(i.labels.get(k) == v for k, v in want.items())
            and (i.created_at is None or i.created_at.timestamp() >= since.timestamp() - _CLOCK_SLACK_S)
            and i.state is not State.DELETING
        ]

    def create(self, request: CreateRequest, *, wait: bool = True) -> Instance:
        nt = self._native(request.native_type)
        if nt is None:
            known = ", ".join(t.name for t in self.catalogue.types)
            raise InvalidArgument(f"{request.native_type!r} is not a Nebius platform/preset; known: {known}",
                                  provider=self.name)
        if request.region not in (None, "", self.settings.region):
            raise InvalidArgument(f"Nebius has no regions (asked for {request.region!r})", provider=self.name,
                                  hint="Omit --region for nebius; it is scoped by parent")
        platform, _, preset = nt.name.partition("/")
        req = self._create_request(request, platform, preset)
        key = request.idempotency_key or str(uuid.uuid4())
        started = datetime.now(timezone.utc)
        what = f"creating instance {request.name!r} ({nt.name}) in {self.parent}"

        def send() -> str:  # the same key on every send, so the server deduplicates as well
            op = self._call(self._instances.Create, req, what=what, mutating=True,
                            metadata=(("x-idempotency-key", key),))
            if not op.resource_id:
                raise MalformedAnswer(f"malformed answer to {what}: the operation names no instance",
                                      provider=self.name)
            return str(op.resource_id)

        done = protocol.create_resolving(send, lambda: self._find_created(request, started), self.timing,
                                         grace=0.0, resend=CREATE_RESEND)
        iid = done.adopted.id if done.adopted is not None else done.answer
        if not wait and not request.read_back:  # what the answer says: the operation names the new id
            return Instance(provider=self.name, id=iid, name=request.name, state=State.CREATING,
                            native_state="(created)", native_type=nt.name, gpu=nt.shape)
        if not wait:
            return self.get_instance(iid)
        inst = self.wait_for({iid: TARGETS["create"]})[iid]
        if inst.state is State.ERROR:
            raise InstanceFailed(
                f"instance {iid} ({request.name}) went to {inst.native_state} while being created; "
                f"it still exists (id {iid}) and holds its capacity until destroyed",
                provider=self.name, instance_id=iid, state=inst.native_state,
            )
        return inst

    def _mutate(self, verb: str, instance_id: str, *, wait: bool) -> Instance:
        """Stop/Start/Delete: retry transient failures; a retry that finds the change already made succeeds."""
        _check_id(instance_id)
        method, req_cls, rpc, accepted = {
            "stop": (self._instances.Stop, svc.StopInstanceRequest, "stopping", {State.STOPPING, State.STOPPED}),
            "start": (self._instances.Start, svc.StartInstanceRequest, "starting", {State.STARTING, State.RUNNING}),
            "destroy": (self._instances.Delete, svc.DeleteInstanceRequest, "deleting", {State.DELETING}),
        }[verb]
        what = f"{rpc} instance {instance_id}"

        def confirm() -> bool:  # a resend was refused: an earlier attempt whose answer was lost may have done it
            current = self.get_instance(instance_id)
            return current.state in accepted or current.state in TARGETS[verb]

        protocol.mutate_confirming(lambda: self._call(method, req_cls(id=instance_id), what=what, mutating=True),
                                   confirm, self.timing, gone_is_done=verb == "destroy", resend=MUTATE_RESEND,
                                   confirm_refusals=(FailedPrecondition, NotFound))
        if not wait and verb == "destroy":  # accepted: the caller's wait lists it (no read per VM)
            return Instance(provider=self.name, id=instance_id, name="", state=State.DELETING,
                            native_state="(deleting)", native_type="")
        if not wait:
            try:
                return self.get_instance(instance_id)
            except NotFound:
                if verb != "destroy":
                    raise
                return Instance(provider=self.name, id=instance_id, name="", state=State.DELETED,
                                native_state="(gone)", native_type="")
        inst = self.wait_for({instance_id: TARGETS[verb]})[instance_id]
        if inst.state not in TARGETS[verb]:
            raise FailedPrecondition(f"instance {instance_id} went to {inst.native_state} while {rpc}",
                                     provider=self.name)
        return inst

    def stop(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._mutate("stop", instance_id, wait=wait)

    def start(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._mutate("start", instance_id, wait=wait)

    def destroy(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._mutate("destroy", instance_id, wait=wait)
