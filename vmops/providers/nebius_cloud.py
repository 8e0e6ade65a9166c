"""Nebius adapter, cloud dialect: Nebius AI Cloud's public gRPC API (../shared/cloud-apis.md section 3).

Wire: ``nebius.compute.v1`` InstanceService and DiskService, ``nebius.common.v1`` OperationService (on the
compute host, which created the operations), ``nebius.vpc.v1`` SubnetService (VPC host) and
``nebius.iam.v1`` TokenExchangeService (token host), from the stubs in ``vmops._gen.cloud``. TLS with the
system CA store unless ``VMOPS_NEBIUS_CA_BUNDLE``/``VMOPS_CA_BUNDLE`` names a PEM, or plaintext with
``VMOPS_NEBIUS_TLS=0`` (or a ``grpc://`` endpoint). Every call carries ``authorization: Bearer <IAM token>``
(``vmops.providers.nebius_auth``); every mutation carries an ``x-idempotency-key`` that its retries reuse.

Behaviour (docs/design.md, "Nebius cloud dialect"):

* The image family is ``VMOPS_NEBIUS_IMAGE_FAMILY``, else discovered once per adapter and platform from
  ``ImageService/ListPublic`` for the project's region (``VMOPS_NEBIUS_REGION``, else ``ProjectService/Get``)
  by the rule in ``vmops.providers.nebius_images``.
* create = boot disk from an image family (``DiskService/Create``, awaited), then the instance with that
  disk, the subnet, the labels and the SSH public key in cloud-init user data (``InstanceService/Create``,
  awaited). The boot disk carries the instance's labels and is named ``<instance name>-boot``.
* A lost answer is retried with the same key (the server answers a repeated key with the original
  operation); a name already taken by a resource carrying our labels is adopted (a crash between two runs).
* A create that fails after the disk exists deletes what it made (instance, then disk): nothing is left
  behind. That includes the late capacity failure: the create operation succeeds, then the instance falls
  back to STOPPED ("Not enough resources"); it is reported as ``InsufficientCapacity``.
* destroy = delete the instance (awaited), then its boot disk. With ``wait=False`` the disk is deleted by
  the next ``wait_for`` that sees the instance gone (what fleets call after ``destroy_many``), or ``close``.
* Lists follow ``next_page_token`` to the end (``VMOPS_NEBIUS_PAGE_SIZE`` per page).
* Errors are mapped once, in ``nebius_cloud_errors.map_error``, from the gRPC code and the
  ``nebius.common.v1.ServiceError`` in ``grpc-status-details-bin`` (or in a failed operation's status).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import replace
from datetime import timezone
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, TypeVar

import grpc

from vmops._gen.cloud.nebius.common.v1 import metadata_pb2, operation_pb2
from vmops._gen.cloud.nebius.common.v1 import operation_service_pb2 as ops
from vmops._gen.cloud.nebius.common.v1 import operation_service_pb2_grpc as ops_grpc
from vmops._gen.cloud.nebius.compute.v1 import disk_pb2, disk_service_pb2, disk_service_pb2_grpc
from vmops._gen.cloud.nebius.compute.v1 import image_pb2, image_service_pb2, image_service_pb2_grpc
from vmops._gen.cloud.nebius.compute.v1 import instance_pb2 as pb
from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops._gen.cloud.nebius.iam.v1 import project_service_pb2, project_service_pb2_grpc
from vmops._gen.cloud.nebius.iam.v1 import token_exchange_service_pb2_grpc as tokens_grpc
from vmops._gen.cloud.nebius.iam.v1 import token_service_pb2 as tokens
from vmops._gen.cloud.nebius.vpc.v1 import subnet_pb2, subnet_service_pb2, subnet_service_pb2_grpc
from vmops.catalogue import NativeType
from vmops.config import NebiusCloudSettings, ProviderSettings, endpoint_host
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    MalformedAnswer,
    NotFound,
    OperationTimeout,
    PermissionDenied,
    UsageError,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, Instance, Offer, Reservation, ReservationPolicy, State, map_state
from vmops.providers import nebius_auth, nebius_images, protocol
from vmops.providers.base import TARGETS, Capabilities, Provider, Resolved, Timing
from vmops.providers.nebius import _check_id, _endpoint
from vmops.providers.silence import Silence, grpc_no_answer
from vmops.providers.nebius_cloud_errors import NameTaken, map_error, rpc_error_parts, service_error, status_code
from vmops.providers.tls import NotTransient, is_verify_failure, read_ca_bundle, verify_error

log = logging.getLogger("vmops.grpc")

T = TypeVar("T")

#: Native ``InstanceStatus.InstanceState`` names -> canonical state (unknown numbers: UNKNOWN).
STATE: Mapping[str, State] = {
    "UNSPECIFIED": State.UNKNOWN,
    "CREATING": State.CREATING,
    "UPDATING": State.UNKNOWN,  # an Update in progress: no canonical equivalent
    "STARTING": State.STARTING,
    "RUNNING": State.RUNNING,
    "STOPPING": State.STOPPING,
    "STOPPED": State.STOPPED,
    "DELETING": State.DELETING,
    "ERROR": State.ERROR,
}

PUBLIC_SUFFIX = ".api.nebius.cloud"
PUBLIC_TOKEN_ENDPOINT = "tokens.iam.api.nebius.cloud:443"
PUBLIC_VPC_ENDPOINT = "vpc.api.nebius.cloud:443"
PUBLIC_IAM_ENDPOINT = "cpl.iam.api.nebius.cloud:443"  # ProjectService (cloud-apis.md §3.1)
BOOT_DISK_GIB = 200
DEFAULT_SSH_KEYS = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")
_KEY_CHARS = re.compile(r"^[A-Za-z0-9-]{8,128}$")
_POLICY = {ReservationPolicy.AUTO: pb.ReservationPolicy.AUTO, ReservationPolicy.FORBID: pb.ReservationPolicy.FORBID,
           ReservationPolicy.STRICT: pb.ReservationPolicy.STRICT}
_MAX_PAGES = 10_000
#: the states a create waits for: RUNNING is success; STOPPED is the late capacity failure
_CREATE_SETTLED = frozenset({State.RUNNING, State.STOPPED, State.ERROR})


def _strip_cidr(address: str) -> str | None:
    return address.split("/", 1)[0] or None


def _idempotency_key(base: str | None, suffix: str) -> str:
    """A key of ``[A-Za-z0-9-]`` for one logical mutation: the caller's when it fits, else derived from it."""
    if base is None:
        return str(uuid.uuid4())
    key = f"{base}-{suffix}"
    return key if _KEY_CHARS.match(key) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"vmops:{base}:{suffix}"))


def cloud_init(public_key: str) -> str:
    """Cloud-init user data that authorizes ``public_key`` for the image's default user."""
    return f"#cloud-config\nssh_authorized_keys:\n  - {public_key}\n"


class NebiusCloudProvider(Provider):
    name: ClassVar[str] = "nebius"
    capabilities: ClassVar[Capabilities] = Capabilities(stop_start=True, labels=True, terminate_reserved=True,
                                                        idempotency_key=True)

    def __init__(self, settings: ProviderSettings, timing: Timing | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, timing)
        self.silence = Silence(self.name, self.timing.deadline)
        self.cloud: NebiusCloudSettings = settings.nebius_cloud or NebiusCloudSettings()
        target, scheme_tls = _endpoint(settings.url)
        self.target = target
        # TLS unless said otherwise: the public API is TLS-only (VMOPS_NEBIUS_TLS=0 or grpc:// for plaintext)
        self.tls = scheme_tls if scheme_tls is not None else (
            settings.tls if settings.sources.get("tls") not in (None, "default") else True)
        public = endpoint_host(target).endswith(PUBLIC_SUFFIX)
        self.vpc_target = _endpoint(self.cloud.vpc_endpoint or (PUBLIC_VPC_ENDPOINT if public else target))[0]
        self.token_target = _endpoint(self.cloud.token_endpoint or (PUBLIC_TOKEN_ENDPOINT if public else target))[0]
        self.iam_target = _endpoint(PUBLIC_IAM_ENDPOINT)[0] if public else target
        self._channels: dict[str, grpc.Channel] = {}
        compute = self._channel(target)
        self._instances = svc_grpc.InstanceServiceStub(compute)
        self._disks = disk_service_pb2_grpc.DiskServiceStub(compute)
        self._operations = ops_grpc.OperationServiceStub(compute)
        self._subnets = subnet_service_pb2_grpc.SubnetServiceStub(self._channel(self.vpc_target))
        self._images = image_service_pb2_grpc.ImageServiceStub(compute)
        self._projects = project_service_pb2_grpc.ProjectServiceStub(self._channel(self.iam_target))
        self._public_images: list[nebius_images.PublicImage] | None = None  # of the project's region
        self._region: str | None = settings.region
        self._image_choice: dict[tuple[str, ...], nebius_images.ImageChoice] = {}
        self._subnet_source = "config" if self.cloud.subnet else "discovered"
        self._token_service = tokens_grpc.TokenExchangeServiceStub(self._channel(self.token_target))
        self.credentials = self._token_source(clock)
        self._subnet: str | None = self.cloud.subnet
        self._boot_disks: dict[str, str] = {}  # instance id -> the boot disk this adapter made for it
        self._pending_disks: dict[str, str] = {}  # instance id -> boot disk to delete once the instance is gone
        self._creating: set[str] = set()  # instances this adapter created and has not yet seen settle

    # ---- set-up ----------------------------------------------------------------------------------
    def _channel(self, target: str) -> grpc.Channel:
        if target not in self._channels:
            if self.tls:
                creds = grpc.ssl_channel_credentials(root_certificates=read_ca_bundle(self.settings))
                self._channels[target] = grpc.secure_channel(target, creds)
            else:
                self._channels[target] = grpc.insecure_channel(target)
        return self._channels[target]

    def _token_source(self, clock: Callable[[], float]) -> nebius_auth.TokenSource:
        if self.cloud.iam_token:
            return nebius_auth.StaticToken(self.cloud.iam_token, "VMOPS_NEBIUS_IAM_TOKEN")
        if self.cloud.credentials_file:
            creds = nebius_auth.read_credentials_file(self.cloud.credentials_file)
            return nebius_auth.ServiceAccountToken(creds, self._exchange, clock)
        if self.settings.api_key and self.settings.sources.get("api_key", "default") != "default":
            return nebius_auth.StaticToken(self.settings.api_key, self.settings.sources["api_key"])
        raise UsageError("no Nebius credentials are configured", provider=self.name,
                         hint="Set VMOPS_NEBIUS_IAM_TOKEN (`nebius iam get-access-token`) or "
                              "VMOPS_NEBIUS_CREDENTIALS_FILE (a service account's credentials.json)")

    @property
    def parent(self) -> str:
        if not self.settings.scope:
            raise InvalidArgument("no Nebius parent (project) is configured", provider=self.name,
                                  hint="Set VMOPS_NEBIUS_PARENT or `parent` in the [nebius] config section")
        return self.settings.scope

    def close(self) -> None:
        try:
            if self._pending_disks:
                self.wait_for({iid: TARGETS["destroy"] for iid in list(self._pending_disks)})
        except VmopsError as e:
            log.warning("nebius: boot disks of deleted instances not deleted: %s", e)
        finally:
            for ch in self._channels.values():
                ch.close()

    # ---- transport -------------------------------------------------------------------------------
    def _exchange(self, jwt: str) -> tuple[str, int]:
        """TokenExchangeService/Exchange, sent without authorization; transient failures retried."""
        req = tokens.ExchangeTokenRequest(grant_type=nebius_auth.GRANT_TYPE,
                                          requested_token_type=nebius_auth.REQUESTED_TOKEN_TYPE,
                                          subject_token=jwt, subject_token_type=nebius_auth.SUBJECT_TOKEN_TYPE)
        what = f"exchanging the service account's JWT for an IAM token at {self.token_target}"
        try:
            resp = self._retrying(lambda: self._raw(self._token_service.Exchange, req, (), what, False), what)
        except (AuthError, PermissionDenied, InvalidArgument) as e:
            why = e.message.removeprefix(f"{what}: ")
            raise AuthError(f"{what}: the service account's key was rejected ({why})", provider=self.name,
                            hint="Check VMOPS_NEBIUS_CREDENTIALS_FILE (the key must be registered for the "
                                 "service account) and VMOPS_NEBIUS_TOKEN_ENDPOINT") from None
        if resp.token_type != "Bearer" or not resp.access_token or resp.expires_in <= 0:
            raise MalformedAnswer(f"malformed answer to {what}: token_type {resp.token_type!r}, "
                                  f"expires_in {resp.expires_in}", provider=self.name)
        return resp.access_token, int(resp.expires_in)

    def _raw(self, method: Callable[..., T], request: Any, metadata: tuple[tuple[str, str], ...], what: str,
             mutating: bool) -> T:
        try:
            return self.silence.around(
                lambda: method(request, metadata=metadata, timeout=self.timing.request_timeout), grpc_no_answer)
        except grpc.RpcError as e:
            code, details, err = rpc_error_parts(e)
            log.debug("nebius %s -> %s", what, code.name)
            if self.tls and code == grpc.StatusCode.UNAVAILABLE and is_verify_failure(details):
                raise NotTransient(verify_error(self.settings, self.target, details.splitlines()[0][:200])) from None
            raise map_error(code, details, err, what=what, mutating=mutating, provider=self.name) from None

    def _call(self, method: Callable[..., T], request: Any, *, what: str, key: str | None = None) -> T:
        """One authenticated call (a rejected token from a service account is renewed once)."""
        extra = (("x-idempotency-key", key),) if key else ()
        for renewed in (False, True):
            md = (("authorization", f"Bearer {self.credentials.token()}"),) + extra
            if log.isEnabledFor(logging.DEBUG):
                log.debug("nebius %s %s (%s) metadata=%s", "grpcs" if self.tls else "grpc", self.target, what,
                          [(k, "****" if k == "authorization" else v) for k, v in md])
            try:
                return self._raw(method, request, md, what, key is not None)
            except AuthError:
                if renewed or isinstance(self.credentials, nebius_auth.StaticToken):
                    raise
                self.credentials.invalidate()
        raise AssertionError("unreachable")

    def _retrying(self, fn: Callable[[], T], what: str) -> T:
        """Bounded retries of transient failures, malformed answers included (a mutation's retry carries the
        same idempotency key inside ``fn``, so the server does not run it twice)."""
        try:
            return protocol.retrying(fn, self.timing, retry_unreachable=False)  # nothing listens: asking again waits
        except NotTransient as e:
            raise e.error from None

    def _read(self, method: Callable[..., T], request: Any, *, what: str) -> T:
        return self._retrying(lambda: self._call(method, request, what=what), what)

    def _mutate(self, method: Callable[..., operation_pb2.Operation], request: Any, *, what: str,
                key: str) -> operation_pb2.Operation:
        """A mutation: retried on transient failures, lost and malformed answers with the SAME key (the server
        returns the original operation for a repeated key); its operation names the resource."""
        def once() -> operation_pb2.Operation:
            op = self._call(method, request, what=what, key=key)
            if not op.id or not op.resource_id:
                raise MalformedAnswer(f"malformed answer to {what}: the operation has no id or resource id",
                                      provider=self.name)
            return op

        return self._retrying(once, what)

    def _await(self, op: operation_pb2.Operation, what: str) -> operation_pb2.Operation:
        """Poll ``OperationService/Get`` until the operation has a status; a non-OK one is raised, mapped."""
        started = time.monotonic()
        expected = self.catalogue.typical_seconds("operation", self.settings.dialect)
        while not op.HasField("status"):
            waited = time.monotonic() - started
            if waited >= self.timing.op_timeout:
                about = f" on {op.resource_id}" if op.resource_id else ""
                raise OperationTimeout(f"{what}: operation {op.id}{about} has not finished after "
                                       f"{self.timing.op_timeout:g}s", provider=self.name,
                                       instance_id=op.resource_id or None, stuck_state="running")
            time.sleep(self.poll_delay(waited, expected))
            op = self._read(self._operations.Get, ops.GetOperationRequest(id=op.id), what=f"{what} (operation)")
        if op.status.code != 0:
            raise map_error(status_code(op.status.code), op.status.message, service_error(op.status),
                            what=what, provider=self.name)
        return op

    def _pages(self, method: Callable[..., Any], make: Callable[[str], Any], what: str) -> Iterator[Any]:
        """Every item of a paginated List, following ``next_page_token`` until it is empty."""
        token, seen = "", set()
        for _ in range(_MAX_PAGES):
            resp = self._read(method, make(token), what=what)
            yield from resp.items
            token = resp.next_page_token
            if not token:
                return
            if token in seen:
                raise MalformedAnswer(f"malformed answer to {what}: page token {token[:40]!r} came back again",
                                      provider=self.name)
            seen.add(token)
        raise MalformedAnswer(f"malformed answer to {what}: more than {_MAX_PAGES} pages", provider=self.name)

    # ---- normalization ---------------------------------------------------------------------------
    def _native(self, native_type: str) -> NativeType | None:
        return self.catalogue.type_named(native_type)

    def to_instance(self, msg: pb.Instance, what: str = "an instance answer") -> Instance:
        md, spec, status = msg.metadata, msg.spec, msg.status
        if not md.id:
            raise MalformedAnswer(f"malformed answer to {what}: an instance has no id", provider=self.name)
        try:
            native_state = pb.InstanceStatus.InstanceState.Name(status.state)
        except ValueError:
            native_state = str(status.state)
        native_type = f"{spec.resources.platform}/{spec.resources.preset}"
        nt = self._native(native_type)
        public = private = None
        if len(status.network_interfaces):
            nic = status.network_interfaces[0]
            public = _strip_cidr(nic.public_ip_address.address)
            private = _strip_cidr(nic.ip_address.address)
        created = md.created_at.ToDatetime(tzinfo=timezone.utc) if md.HasField("created_at") else None
        rid = status.reservation_id or None
        return Instance(
            provider=self.name, id=md.id, name=md.name, state=map_state(native_state, STATE),
            native_state=native_state, native_type=native_type, gpu=nt.shape if nt else None,
            region=self.settings.region, public_ip=public, private_ip=private, reserved=rid is not None,
            reservation_id=rid, price_per_hour=nt.list_price_per_hour if nt else None,
            price_source=nt.price_source if nt else None, created_at=created, labels=dict(md.labels),
            can_terminate=True,
        )

    # ---- reads -----------------------------------------------------------------------------------
    def _list_native(self) -> list[pb.Instance]:
        parent, size = self.parent, self.cloud.page_size
        return list(self._pages(self._instances.List,
                                lambda t: svc.ListInstancesRequest(parent_id=parent, page_size=size, page_token=t),
                                f"listing instances of {parent}"))

    def list_instances(self) -> list[Instance]:
        return [self.to_instance(m, f"listing instances of {self.parent}") for m in self._list_native()]

    def get_instance(self, instance_id: str) -> Instance:
        _check_id(instance_id)
        return self.to_instance(self._get_native(instance_id), f"getting instance {instance_id}")

    def _get_native(self, instance_id: str) -> pb.Instance:
        return self._read(self._instances.Get, svc.GetInstanceRequest(id=instance_id),
                          what=f"getting instance {instance_id}")

    def find_by_name(self, name: str) -> list[Instance]:
        """Names are unique per project at Nebius: one GetByName."""
        try:
            msg = self._read(self._instances.GetByName, metadata_pb2.GetByNameRequest(parent_id=self.parent, name=name),
                             what=f"getting instance {name!r} by name")
        except NotFound:
            return []
        return [self.to_instance(msg)]

    def list_disks(self) -> list[disk_pb2.Disk]:
        parent, size = self.parent, self.cloud.page_size
        return list(self._pages(self._disks.List,
                                lambda t: disk_service_pb2.ListDisksRequest(parent_id=parent, page_size=size,
                                                                            page_token=t),
                                f"listing disks of {parent}"))

    def release_leftovers(self, vm_names: Iterable[str]) -> list[str]:
        """Delete the boot disks vmops made (``<VM name>-boot``) for VMs named ``vm_names`` that no instance
        holds any more: a crash between disk and instance create, or between instance and disk delete, leaves
        them behind, and a disk bills. A disk attached to anything is never touched."""
        wanted = {f"{n}-boot" for n in vm_names}
        if not wanted:
            return []
        loose = [d for d in self.list_disks() if d.metadata.name in wanted and not d.status.read_write_attachment
                 and not list(d.status.read_only_attachments)]
        self._delete_disks_quietly([d.metadata.id for d in loose])
        gone = {d.metadata.id for d in self.list_disks()}
        return [d.metadata.name for d in loose if d.metadata.id not in gone]

    def reservations(self) -> list[Reservation]:
        """Reservations are capacity block groups (tenant-scoped, another service): not read by this dialect."""
        return []

    def offers(self, shape: GpuShape | None = None) -> list[Offer]:
        """On-demand offers at the catalogue's list price; capacity is unknown until a create (the API has
        capacity advice and prices in other services that this dialect does not call). One cheap read first (a
        one-instance page), so that a Nebius that does not answer or refuses the credential raises here, like
        every adapter whose offers are read, and a plan skips it instead of sending it creates."""
        types = [t for t in self.catalogue.types if shape is None or t.shape == shape]
        if types:
            parent = self.parent
            self._read(self._instances.List, svc.ListInstancesRequest(parent_id=parent, page_size=1),
                       what=f"listing instances of {parent}")
        return [Offer(provider=self.name, gpu=t.shape, native_type=t.name, region=self.settings.region,
                      price_per_hour=t.list_price_per_hour, price_source=t.price_source, available=None,
                      has_capacity=None, reserved=False)
                for t in types]

    # ---- what a create needs ---------------------------------------------------------------------
    def subnet(self) -> str:
        """The configured subnet, else the project's only subnet (an error naming them when there are several)."""
        if self._subnet:
            return self._subnet
        parent = self.parent
        found: list[subnet_pb2.Subnet] = list(self._pages(
            self._subnets.List,
            lambda t: subnet_service_pb2.ListSubnetsRequest(parent_id=parent, page_size=self.cloud.page_size,
                                                            page_token=t),
            f"listing subnets of {parent}"))
        if len(found) != 1:
            names = ", ".join(f"{s.metadata.id} ({s.metadata.name})" for s in found[:10]) or "none"
            raise UsageError(f"cannot choose a subnet in {parent}: {len(found)} found ({names})",
                             provider=self.name, hint="Set VMOPS_NEBIUS_SUBNET to the subnet id to use")
        if not found[0].metadata.id:
            raise MalformedAnswer(f"malformed answer to listing subnets of {parent}: a subnet has no id",
                                  provider=self.name)
        self._subnet = found[0].metadata.id
        return self._subnet

    def region(self) -> str:
        """The project's region: ``VMOPS_NEBIUS_REGION``, else ``ProjectService/Get`` (§3.1: one region per project)."""
        if self._region:
            return self._region
        parent = self.parent
        project = self._read(self._projects.Get, project_service_pb2.GetProjectRequest(id=parent),
                             what=f"getting project {parent}")
        region = project.status.region or project.spec.region
        if not region:
            raise UsageError(f"project {parent} names no region", provider=self.name,
                             hint="Set VMOPS_NEBIUS_REGION, or VMOPS_NEBIUS_IMAGE_FAMILY to skip image discovery")
        self._region = region
        return region

    def image_family(self, platform: str | None = None) -> nebius_images.ImageChoice:
        """The image family boot disks for ``platform`` are made from (None: for every catalogue platform, as
        `vm doctor` reports it): the configured one, else discovered once per adapter (``nebius_images``)."""
        if self.cloud.image_family:
            return nebius_images.ImageChoice(self.cloud.image_family, "config")
        platforms = (platform,) if platform else tuple(sorted({t.name.partition("/")[0] for t in self.catalogue.types}))
        if platforms not in self._image_choice:
            region = self.region()
            if self._public_images is None:
                ready = image_pb2.ImageStatus.READY
                self._public_images = [
                    nebius_images.PublicImage(i.spec.image_family, i.status.state == ready,
                                              tuple(i.spec.recommended_platforms))
                    for i in self._pages(self._images.ListPublic,
                                         lambda t: image_service_pb2.ListPublicRequest(
                                             region=region, page_size=self.cloud.page_size, page_token=t),
                                         f"listing public images of {region}")]
            self._image_choice[platforms] = nebius_images.choose(self._public_images, platforms, region)
        return self._image_choice[platforms]

    def resolved(self) -> tuple[Resolved, ...]:
        """The subnet and image family creates use, and whether configured or discovered (`vm doctor`)."""
        subnet = self.subnet()
        image = self.image_family()
        return (Resolved("subnet", subnet, self._subnet_source), Resolved("image_family", image.family, image.source))

    def ssh_public_key(self) -> str:
        """The SSH public key text for cloud-init (a missing or unreadable key is a configuration error)."""
        configured = self.cloud.ssh_public_key_file
        candidates = [configured] if configured else [str(Path(p).expanduser()) for p in DEFAULT_SSH_KEYS]
        hint = "Set VMOPS_NEBIUS_SSH_PUBLIC_KEY_FILE to an OpenSSH public key file (ssh-keygen -t ed25519)"
        for path in candidates:
            p = Path(path)
            if not p.exists():
                continue
            try:
                text = p.read_text().strip()
            except (OSError, UnicodeDecodeError):
                raise UsageError(f"the SSH public key file {p} cannot be read", provider=self.name, hint=hint) from None
            if "\n" in text or not re.match(r"^(ssh-|ecdsa-|sk-)[\w@.-]+ [A-Za-z0-9+/=]+( .*)?$", text):
                raise UsageError(f"{p} does not hold one OpenSSH public key", provider=self.name, hint=hint)
            return text
        raise UsageError(f"no SSH public key found (looked for {', '.join(candidates)})", provider=self.name,
                         hint=hint)

    # ---- mutations -------------------------------------------------------------------------------
    def _create_disk(self, request: CreateRequest, key: str, family: str) -> str:
        name = f"{request.name}-boot"
        req = disk_service_pb2.CreateDiskRequest()
        req.metadata.parent_id, req.metadata.name = self.parent, name
        req.metadata.labels.update({str(k): str(v) for k, v in request.labels.items()})
        req.spec.size_gibibytes = BOOT_DISK_GIB
        req.spec.type = disk_pb2.DiskSpec.NETWORK_SSD
        req.spec.source_image_family.image_family = family
        what = f"creating boot disk {name!r} in {self.parent}"
        try:
            op = self._mutate(self._disks.Create, req, what=what, key=key)
        except NotFound as e:  # the image family (the project is checked by PermissionDenied)
            raise InvalidArgument(f"{what}: {e.message.removeprefix(what + ': ')}", provider=self.name,
                                  hint="Set VMOPS_NEBIUS_IMAGE_FAMILY to an image family of the project's region "
                                       "(e.g. ubuntu22.04-cuda12)") from None
        except NameTaken as e:  # left by an earlier attempt of this create (a crash): adopt it if it is ours
            disk = self._read(self._disks.GetByName, metadata_pb2.GetByNameRequest(parent_id=self.parent, name=name),
                              what=f"getting disk {name!r} by name")
            mine = all(disk.metadata.labels.get(k) == str(v) for k, v in request.labels.items())
            if not mine:
                raise e
            return disk.metadata.id  # if attached, the instance create finds its namesake and adopts it
        op = self._await(op, what)
        if not op.resource_id:
            raise MalformedAnswer(f"malformed answer to {what}: the operation names no disk", provider=self.name)
        return op.resource_id

    def _instance_request(self, request: CreateRequest, platform: str, preset: str, disk_id: str,
                          subnet: str, user_data: str) -> svc.CreateInstanceRequest:
        req = svc.CreateInstanceRequest()
        req.metadata.parent_id, req.metadata.name = self.parent, request.name
        req.metadata.labels.update({str(k): str(v) for k, v in request.labels.items()})
        req.spec.resources.platform, req.spec.resources.preset = platform, preset
        req.spec.boot_disk.attach_mode = pb.AttachedDiskSpec.READ_WRITE
        req.spec.boot_disk.existing_disk.id = disk_id
        nic = req.spec.network_interfaces.add(name="eth0", subnet_id=subnet)
        nic.ip_address.SetInParent()  # empty = allocate a private address
        nic.public_ip_address.SetInParent()  # empty = a dynamic public address
        req.spec.cloud_init_user_data = user_data
        req.spec.reservation_policy.policy = _POLICY[ReservationPolicy(request.reservation_policy)]
        req.spec.reservation_policy.reservation_ids.extend(request.reservation_ids)
        return req

    def create(self, request: CreateRequest, *, wait: bool = True) -> Instance:
        nt = self._native(request.native_type)
        if nt is None:
            known = ", ".join(t.name for t in self.catalogue.types)
            raise InvalidArgument(f"{request.native_type!r} is not a Nebius platform/preset; known: {known}",
                                  provider=self.name)
        if request.region not in (None, "", self.settings.region):
            raise InvalidArgument(f"Nebius has no regions (asked for {request.region!r})", provider=self.name,
                                  hint="Omit --region for nebius; it is scoped by parent (project)")
        user_data = cloud_init(self.ssh_public_key())  # configuration errors before any mutation
        subnet = self.subnet()
        platform, _, preset = nt.name.partition("/")
        family = self.image_family(platform).family
        disk_id = self._create_disk(request, _idempotency_key(request.idempotency_key, "disk"), family)
        try:
            iid = self._create_instance(request, platform, preset, disk_id, subnet, user_data, wait)
        except BaseException:
            if disk_id not in self._boot_disks.values():  # no instance holds it: nothing else will delete it
                self._delete_disk_quietly(disk_id)
            raise
        if not wait:
            self._creating.add(iid)
            if not request.read_back:  # what the operation says: the new id (the caller's wait lists anyway)
                return Instance(provider=self.name, id=iid, name=request.name, state=State.CREATING,
                                native_state="(created)", native_type=nt.name, gpu=nt.shape,
                                region=self.settings.region, labels=dict(request.labels))
            return self.get_instance(iid)
        inst = self.wait_for({iid: _CREATE_SETTLED})[iid]
        if inst.state is not State.RUNNING:
            self._clean_up_failed(iid, disk_id)
            raise InsufficientCapacity(
                f"instance {iid} ({request.name}) went to {inst.native_state} after it was accepted (Nebius "
                "reports a lack of resources this way); it and its boot disk were deleted", provider=self.name)
        return inst

    def _create_instance(self, request: CreateRequest, platform: str, preset: str, disk_id: str, subnet: str,
                         user_data: str, wait: bool) -> str:
        req = self._instance_request(request, platform, preset, disk_id, subnet, user_data)
        what = f"creating instance {request.name!r} ({platform}/{preset}) in {self.parent}"
        try:
            op = self._mutate(self._instances.Create, req, what=what,
                              key=_idempotency_key(request.idempotency_key, "instance"))
        except NameTaken as e:
            found = self.find_by_name(request.name)
            mine = [i for i in found if all(i.labels.get(k) == str(v) for k, v in request.labels.items())]
            if not mine:
                raise e
            return mine[0].id  # made by an earlier attempt of this create
        iid = op.resource_id
        if not iid:
            raise MalformedAnswer(f"malformed answer to {what}: the operation names no instance", provider=self.name)
        self._boot_disks[iid] = disk_id  # from here on, the disk follows the instance
        if wait:
            try:
                self._await(op, what)
            except (InsufficientCapacity, FailedPrecondition, InvalidArgument, PermissionDenied) as e:
                self._clean_up_failed(iid, disk_id)
                raise e
        return iid

    def _clean_up_failed(self, iid: str, disk_id: str) -> None:
        """Delete a failed create's instance (if it exists) and then its disk; report, never raise."""
        self._creating.discard(iid)
        try:
            self._delete_instance(iid)
        except NotFound:
            pass
        except VmopsError as e:
            log.warning("nebius: could not delete failed instance %s: %s", iid, e)
            return
        self._boot_disks.pop(iid, None)
        self._delete_disk_quietly(disk_id)

    def _delete_instance(self, iid: str) -> None:
        what = f"deleting instance {iid}"
        op = self._mutate(self._instances.Delete, svc.DeleteInstanceRequest(id=iid), what=what,
                          key=_idempotency_key(None, "delete"))
        self._await(op, what)

    def _delete_disks_quietly(self, disk_ids: list[str]) -> None:
        """Delete boot disks: every Delete is sent first, then the operations are awaited, so many disks take
        about as long as one. Failures are logged (the disk stays behind, labelled), never raised."""
        sent: list[tuple[str, operation_pb2.Operation]] = []
        for disk_id in disk_ids:
            what = f"deleting boot disk {disk_id}"
            try:
                sent.append((what, self._mutate(self._disks.Delete, disk_service_pb2.DeleteDiskRequest(id=disk_id),
                                                what=what, key=_idempotency_key(None, "delete"))))
            except NotFound:
                pass
            except VmopsError as e:
                log.warning("nebius: boot disk %s not deleted: %s", disk_id, e)
        for what, op in sent:
            try:
                self._await(op, what)
            except VmopsError as e:
                log.warning("nebius: %s failed: %s", what, e)

    def _delete_disk_quietly(self, disk_id: str) -> None:
        self._delete_disks_quietly([disk_id])

    def _transition(self, verb: str, instance_id: str, *, wait: bool) -> Instance:
        _check_id(instance_id)
        method, req = {"stop": (self._instances.Stop, svc.StopInstanceRequest(id=instance_id)),
                       "start": (self._instances.Start, svc.StartInstanceRequest(id=instance_id))}[verb]
        what = f"{verb}ping instance {instance_id}" if verb == "stop" else f"starting instance {instance_id}"
        op = self._mutate(method, req, what=what, key=_idempotency_key(None, verb))
        if not wait:
            return self.get_instance(instance_id)
        self._await(op, what)
        inst = self.wait_for({instance_id: TARGETS[verb]})[instance_id]
        if inst.state not in TARGETS[verb]:
            raise FailedPrecondition(f"instance {instance_id} went to {inst.native_state} while {verb}ping"
                                     if verb == "stop" else
                                     f"instance {instance_id} went to {inst.native_state} while starting",
                                     provider=self.name)
        return inst

    def stop(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._transition("stop", instance_id, wait=wait)

    def start(self, instance_id: str, *, wait: bool = True) -> Instance:
        return self._transition("start", instance_id, wait=wait)

    def destroy(self, instance_id: str, *, wait: bool = True) -> Instance:
        """Delete the instance, then its boot disk (after the instance is gone)."""
        _check_id(instance_id)
        try:
            native = self._get_native(instance_id)
        except NotFound:  # already gone (deleted elsewhere): its boot disk, if this process made it, goes too
            disk = self._boot_disks.pop(instance_id, None)
            if disk:
                self._delete_disk_quietly(disk)
            raise
        current = self.to_instance(native, f"getting instance {instance_id}")
        disk_id = self._boot_disks.get(instance_id) or self._own_boot_disk(native)
        what = f"deleting instance {instance_id}"
        op = self._mutate(self._instances.Delete, svc.DeleteInstanceRequest(id=instance_id), what=what,
                          key=_idempotency_key(None, "delete"))
        self._creating.discard(instance_id)
        self._boot_disks.pop(instance_id, None)
        if disk_id:
            self._pending_disks[instance_id] = disk_id
        if not wait:
            return replace(current, state=State.DELETING, native_state="DELETING")
        self._await(op, what)
        return self.wait_for({instance_id: TARGETS["destroy"]})[instance_id]

    def _own_boot_disk(self, native: pb.Instance) -> str:
        """The boot disk vmops made for this instance (named ``<instance name>-boot``), else "": a disk that
        someone else attached as a boot disk is theirs and stays."""
        disk_id = native.spec.boot_disk.existing_disk.id
        if not disk_id:
            return ""
        try:
            disk = self._read(self._disks.Get, disk_service_pb2.GetDiskRequest(id=disk_id),
                              what=f"getting boot disk {disk_id}")
        except NotFound:
            return ""
        return disk_id if disk.metadata.name == f"{native.metadata.name}-boot" else ""

    # ---- waiting ---------------------------------------------------------------------------------
    def wait_for(self, targets: dict[str, frozenset[State]], *, timeout: float | None = None,
                 on_tick: Callable[[dict[str, Instance]], None] | None = None, expected: float | None = None,
                 cancel: threading.Event | None = None) -> dict[str, Instance]:
        """The base wait, plus two rules of this dialect: an instance this adapter created that falls back to
        STOPPED while RUNNING was wanted is reported in ERROR (the late capacity failure), and the boot disk
        of an instance seen gone is deleted."""
        late = {iid for iid, want in targets.items() if iid in self._creating and State.RUNNING in want}
        widened = {iid: (want | {State.STOPPED} if iid in late else want) for iid, want in targets.items()}
        seen = super().wait_for(widened, timeout=timeout, on_tick=on_tick, expected=expected, cancel=cancel)
        disks: list[str] = []
        for iid in list(seen):
            inst = seen[iid]
            if iid in late and inst.state is State.STOPPED and State.STOPPED not in targets[iid]:
                seen[iid] = replace(inst, state=State.ERROR)
            if inst.state is not State.CREATING and inst.state is not State.STARTING:
                self._creating.discard(iid)
            disk = self._pending_disks.pop(iid, None) if inst.state is State.DELETED else None
            if disk:  # pop is atomic: one thread deletes it
                disks.append(disk)
        self._delete_disks_quietly(disks)
        return seen
