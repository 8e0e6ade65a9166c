"""Simulator of Nebius AI Cloud's public gRPC API (the cloud dialect, ../shared/cloud-apis.md section 3).

One grpcio server on ``127.0.0.1:<port>`` (plaintext, or TLS with ``SimOptions.tls_certfile/keyfile``) serving
every service a client needs, as section 3.7 allows for a fake server: ``nebius.compute.v1`` InstanceService,
DiskService and ImageService (``ListPublic``, ``GetLatestByFamily``: ``vmops.sim.nebius_cloud_images``),
``nebius.common.v1`` OperationService (for operations of both), ``nebius.vpc.v1`` SubnetService and
``nebius.iam.v1`` TokenExchangeService and ProjectService (``Get``: the project's region), from the stubs in
``vmops._gen.cloud``.

What it reproduces:

* Auth: every call but ``TokenExchangeService/Exchange`` needs ``authorization: Bearer <token>`` with a token
  from ``STATIC_TOKENS`` or one this simulator issued and that has not expired; else UNAUTHENTICATED.
  Exchange verifies the JWT (RS256 signature against a registered service-account public key found by the
  header's ``kid``, ``iss`` = ``sub`` = that service account, ``aud``, ``iat``/``exp`` within 60 s of now and
  not expired) and answers ``{access_token, token_type "Bearer", expires_in}`` (``token_lifetime_s``).
* Operations (``nebius.common.v1.Operation``): created in progress (no ``status``), finished by timers,
  readable with ``OperationService/Get`` and ``List``.
* Disks: Create (size + ``source_image_family``, a family of a READY public image of the project's region, else
  NOT_FOUND) -> READY at +1 s; Delete of an
  attached disk fails FAILED_PRECONDITION (``bad_resource_state``), else the disk is gone at +0.5 s.
* Instances: Create needs an existing READY, unattached disk and a subnet of the project; names are unique
  per project for instances and disks (ALREADY_EXISTS with ``resource_already_exists``). CREATING -> the
  operation succeeds at +1 s (STARTING) -> RUNNING at +2 s, with CIDR addresses (``10.0.0.n/32``). Stop/Start
  take 1 s and set ``spec.stopped``; Delete removes the instance at +1 s and detaches its boot disk (which
  stays, as an existing disk does at Nebius). Start of a non-STOPPED or Stop of a non-RUNNING instance:
  FAILED_PRECONDITION ``bad_resource_state``.
* Capacity per project and ``platform/preset``; when it runs out, ``capacity_failure`` decides how the create
  fails: ``stop`` (default: the operation succeeds, then the instance falls back to STOPPED, "Not enough
  resources", as section 3.3 describes), ``operation`` (the operation finishes RESOURCE_EXHAUSTED with
  ``not_enough_resources``) or ``sync`` (the Create call itself fails so).
* Idempotency: a mutation repeating an ``x-idempotency-key`` already seen for the same method returns the
  original operation (its current snapshot) and does nothing else (unconfirmed at Nebius; section 3.4 says
  simulators should do this). Keys are kept until ``reset()``.
* Pagination: Lists answer at most ``max_page_size`` items (default 3, to make clients page) with an opaque
  ``next_page_token``; an unknown token is INVALID_ARGUMENT.
* Errors carry ``grpc-status-details-bin`` = ``google.rpc.Status`` with a packed ``ServiceError``.

Fault knobs and request counters as the reference simulator (``vmops.sim.common``), keyed ``Service/Method``
(``ENDPOINTS``): ``error``, ``latency``, ``rate_limit`` (RESOURCE_EXHAUSTED with ``too_many_requests``,
``retry_type`` CALL), ``never_complete`` (the operation never finishes), ``fail_after_accept`` (Create: the
late capacity failure whatever the capacity), ``lose_response`` (committed, then UNAVAILABLE), ``malformed``,
``hang`` (held unanswered, then UNAVAILABLE); all drawn by ``vmops.sim.common.draw_faults``.

Scenario section (``nebius:`` of a scenario file, for this simulator): ``parents`` (project ids),
``subnets`` (``{parent: [names]}``), ``capacity`` (``{parent: {"platform/preset": n}}``), ``capacity_failure``,
``max_page_size``, ``token_lifetime_s``, ``regions`` and ``images`` (``vmops.sim.nebius_cloud_images``), ``service_accounts`` (``{id, public_key_id, public_key_pem}`` whose JWTs
the token exchange accepts), ``instances`` (``{name, parent_id, platform, preset, state, labels,
count}``, each with its own boot disk).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import grpc

from vmops._gen.cloud.google.rpc import status_pb2
from vmops._gen.cloud.nebius.common.v1 import error_pb2, operation_pb2
from vmops._gen.cloud.nebius.common.v1 import operation_service_pb2 as ops
from vmops._gen.cloud.nebius.common.v1 import operation_service_pb2_grpc as ops_grpc
from vmops._gen.cloud.nebius.compute.v1 import disk_pb2, disk_service_pb2, disk_service_pb2_grpc
from vmops._gen.cloud.nebius.compute.v1 import image_service_pb2_grpc
from vmops._gen.cloud.nebius.compute.v1 import instance_pb2 as pb
from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops._gen.cloud.nebius.iam.v1 import project_service_pb2_grpc
from vmops._gen.cloud.nebius.iam.v1 import token_exchange_service_pb2_grpc as tokens_grpc
from vmops._gen.cloud.nebius.iam.v1 import token_service_pb2 as tokens
from vmops._gen.cloud.nebius.vpc.v1 import subnet_pb2, subnet_service_pb2, subnet_service_pb2_grpc
from vmops.sim.base import Simulator
from vmops.sim.common import Effects as _Effects, SimOptions, draw_faults
from vmops.sim.nebius import _add_service, _status_code, bind, spoil
from vmops.sim.nebius_cloud_images import Abort as ImageAbort
from vmops.sim.nebius_cloud_images import ImagesServicer, ProjectsServicer, PublicImages

STATIC_TOKENS: frozenset[str] = frozenset({"nebius-iam-token-001"})
PARENTS: tuple[str, ...] = ("project-e00vmopssim01",)
CATALOG: dict[str, tuple[str, ...]] = {
    "gpu-h100-sxm": ("1gpu-16vcpu-200gb", "8gpu-160vcpu-1600gb"),
    "gpu-h200-sxm": ("1gpu-20vcpu-256gb", "8gpu-160vcpu-2048gb"),
}
SEED_CAPACITY: dict[str, int] = {
    "gpu-h100-sxm/1gpu-16vcpu-200gb": 8, "gpu-h100-sxm/8gpu-160vcpu-1600gb": 2,
    "gpu-h200-sxm/1gpu-20vcpu-256gb": 4, "gpu-h200-sxm/8gpu-160vcpu-2048gb": 1,
}
JWT_AUDIENCE = "token-service.iam.new.nebiuscloud.net"
DISK_READY_S = 1.0
DISK_DELETE_S = 0.5
OP_DONE_S = 1.0
RUNNING_S = 2.0
TRANSITION_S = 1.0
SERVICE = "compute"

S = grpc.StatusCode


class _Abort(Exception):
    """An error answer: code, message and the ServiceError detail that goes into grpc-status-details-bin."""

    def __init__(self, code: grpc.StatusCode, message: str, detail: error_pb2.ServiceError | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail

    def status(self) -> status_pb2.Status:
        st = status_pb2.Status(code=self.code.value[0], message=self.message)
        if self.detail is not None:
            st.details.add().Pack(self.detail)
        return st


def _err(code_text: str, **kw: Any) -> error_pb2.ServiceError:
    retry = kw.pop("retry_type", error_pb2.ServiceError.UNSPECIFIED)
    e = error_pb2.ServiceError(service=SERVICE, code=code_text, retry_type=retry)
    for name, value in kw.items():
        getattr(e, name).CopyFrom(value)
    return e


def not_found(kind: str, rid: str) -> _Abort:
    return _Abort(S.NOT_FOUND, f"{kind} {rid} not found",
                  _err("NotFound", resource_not_found=error_pb2.ResourceNotFound(resource_id=rid)))


def bad_state(rid: str, message: str) -> _Abort:
    return _Abort(S.FAILED_PRECONDITION, message,
                  _err("BadResourceState", bad_resource_state=error_pb2.BadResourceState(resource_id=rid,
                                                                                           message=message)))


def no_capacity(type_key: str) -> _Abort:
    v = error_pb2.NotEnoughResources.Violation(resource_type=type_key, message="Not enough resources", requested="1")
    return _Abort(S.RESOURCE_EXHAUSTED, f"Not enough resources for {type_key}",
                  _err("NotEnoughResources", retry_type=error_pb2.ServiceError.NOTHING,
                       not_enough_resources=error_pb2.NotEnoughResources(violations=[v])))


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class _Project:
    id: str
    subnets: list[subnet_pb2.Subnet] = field(default_factory=list)
    capacity: dict[str, int] = field(default_factory=dict)


class NebiusCloudSim(Simulator):
    name: ClassVar[str] = "nebius"
    dialect: ClassVar[str] = "cloud"
    default_port: ClassVar[int] = 50052
    ENDPOINTS: ClassVar[Mapping[str, bool]] = {
        "InstanceService/Get": False, "InstanceService/GetByName": False, "InstanceService/List": False,
        "InstanceService/Create": True, "InstanceService/Delete": True, "InstanceService/Start": True,
        "InstanceService/Stop": True,
        "DiskService/Get": False, "DiskService/GetByName": False, "DiskService/List": False,
        "DiskService/Create": True, "DiskService/Delete": True,
        "OperationService/Get": False, "OperationService/List": False,
        "SubnetService/Get": False, "SubnetService/List": False,
        "TokenExchangeService/Exchange": False,
        "ImageService/ListPublic": False, "ImageService/GetLatestByFamily": False, "ProjectService/Get": False,
    }

    def __init__(self, options: SimOptions | None = None) -> None:
        self._server: grpc.Server | None = None
        self.service_accounts: dict[str, tuple[str, Any]] = {}  # public key id -> (service account id, public key)
        super().__init__(options)

    # ---- state -----------------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}-e00{uuid.UUID(int=self.rng.getrandbits(128)).hex[:20]}"

    def seed_state(self) -> None:
        sc = dict(self.options.scenario or {})
        self.capacity_failure = str(sc.get("capacity_failure", "stop"))
        if self.capacity_failure not in ("stop", "operation", "sync"):
            raise ValueError("nebius cloud scenario: capacity_failure is one of stop, operation, sync")
        self.max_page_size = int(sc.get("max_page_size", 3))
        self.token_lifetime_s = int(sc.get("token_lifetime_s", 12 * 3600))
        self.projects: dict[str, _Project] = {}
        subnets = sc.get("subnets") or {}
        for pid in [str(p) for p in sc.get("parents", PARENTS)]:
            proj = _Project(pid, capacity=dict(SEED_CAPACITY))
            proj.capacity.update({str(k): int(v) for k, v in ((sc.get("capacity") or {}).get(pid) or {}).items()})
            for name in subnets.get(pid, ["default-subnet-a1b2"]):
                s = subnet_pb2.Subnet()
                s.metadata.id, s.metadata.parent_id, s.metadata.name = self._id("vpcsubnet"), pid, str(name)
                s.spec.network_id = "vpcnetwork-e00default"
                s.status.state = subnet_pb2.SubnetStatus.READY
                proj.subnets.append(s)
            self.projects[pid] = proj
        self.public = PublicImages(sc, self.projects)
        self.instances: dict[str, pb.Instance] = {}
        self.disks: dict[str, disk_pb2.Disk] = {}
        self.operations: dict[str, operation_pb2.Operation] = {}
        self.idempotency: dict[tuple[str, str], str] = {}  # (method, key) -> operation id
        self.issued: dict[str, float] = {}  # access token -> expiry (wall clock)
        self.holding: set[str] = set()  # instances holding a unit of capacity
        self.addresses_given = 0
        self.keys: list[tuple[str, str | None]] = []  # (endpoint, x-idempotency-key) of every mutation
        for sa in sc.get("service_accounts") or []:  # {id, public_key_id, public_key_pem}
            self.register_service_account(str(sa["id"]), str(sa["public_key_id"]), str(sa["public_key_pem"]).encode())
        for e in sc.get("instances") or []:
            count = int(e.get("count", 1))
            for k in range(count):
                self._seed_instance(e, str(e.get("name", "vm")) if count == 1 else f"{e.get('name', 'vm')}-{k}")

    def _seed_instance(self, e: Mapping[str, Any], name: str) -> None:
        pid = str(e.get("parent_id", next(iter(self.projects))))
        disk = self._new_disk(pid, f"{name}-boot", dict(e.get("labels") or {}), "ubuntu22.04-cuda12")
        disk.status.state = disk_pb2.DiskStatus.READY
        inst = self._new_instance(pid, name, dict(e.get("labels") or {}), str(e.get("platform", "gpu-h100-sxm")),
                                  str(e.get("preset", "1gpu-16vcpu-200gb")), disk, self.projects[pid].subnets[0])
        inst.status.state = pb.InstanceStatus.InstanceState.Value(str(e.get("state", "RUNNING")).upper())
        inst.status.reconciling = False
        self._give_addresses(inst)

    def register_service_account(self, service_account_id: str, public_key_id: str, public_key_pem: bytes) -> None:
        """Make a service account's public key known to the token exchange (tests)."""
        from cryptography.hazmat.primitives import serialization

        self.service_accounts[public_key_id] = (service_account_id, serialization.load_pem_public_key(public_key_pem))

    def expire_tokens(self) -> None:
        """Every issued token expires now (tests of renewal after UNAUTHENTICATED)."""
        with self.lock:
            self.issued.clear()

    def _now_ts(self, ts: Any) -> None:
        ts.seconds = int(time.time())

    def _new_disk(self, pid: str, name: str, labels: Mapping[str, str], family: str) -> disk_pb2.Disk:
        d = disk_pb2.Disk()
        d.metadata.id, d.metadata.parent_id, d.metadata.name = self._id("computedisk"), pid, name
        d.metadata.resource_version = 1
        self._now_ts(d.metadata.created_at)
        d.metadata.labels.update(labels)
        d.spec.size_gibibytes = 200
        d.spec.type = disk_pb2.DiskSpec.NETWORK_SSD
        d.spec.source_image_family.image_family = family
        d.status.state = disk_pb2.DiskStatus.CREATING
        d.status.size_bytes = 200 * 2**30
        self.disks[d.metadata.id] = d
        return d

    def _new_instance(self, pid: str, name: str, labels: Mapping[str, str], platform: str, preset: str,
                      disk: disk_pb2.Disk, subnet: subnet_pb2.Subnet) -> pb.Instance:
        inst = pb.Instance()
        m = inst.metadata
        m.id, m.parent_id, m.name, m.resource_version = self._id("computeinstance"), pid, name, 1
        self._now_ts(m.created_at)
        self._now_ts(m.updated_at)
        m.labels.update(labels)
        inst.spec.resources.platform, inst.spec.resources.preset = platform, preset
        inst.spec.boot_disk.attach_mode = pb.AttachedDiskSpec.READ_WRITE
        inst.spec.boot_disk.existing_disk.id = disk.metadata.id
        nic = inst.spec.network_interfaces.add(name="eth0", subnet_id=subnet.metadata.id)
        nic.ip_address.SetInParent()
        nic.public_ip_address.SetInParent()
        inst.status.state = pb.InstanceStatus.CREATING
        inst.status.reconciling = True
        inst.status.disk_attachments.add(id=disk.metadata.id, name=disk.metadata.name, is_managed=False)
        disk.status.read_write_attachment = m.id
        self.instances[m.id] = inst
        return inst

    def _give_addresses(self, inst: pb.Instance) -> None:
        self.addresses_given += 1
        n = self.addresses_given + 10
        del inst.status.network_interfaces[:]
        nic = inst.status.network_interfaces.add(index=0, name="eth0", mac_address=f"d0:0d:00:00:{n // 256:02x}:{n % 256:02x}")
        nic.ip_address.address = f"10.0.{n // 250}.{n % 250 + 2}/32"
        nic.public_ip_address.address = f"185.1.{n // 250}.{n % 250 + 2}/32"

    def _project(self, pid: str) -> _Project:
        p = self.projects.get(pid)
        if p is None:
            raise _Abort(S.PERMISSION_DENIED, f"Permission denied for {pid}",
                         _err("PermissionDenied", permission_denied=error_pb2.PermissionDenied(resource_id=pid)))
        return p

    def _instance(self, iid: str) -> pb.Instance:
        inst = self.instances.get(iid)
        if inst is None:
            raise not_found("Instance", iid)
        return inst

    def _operation(self, description: str, resource_id: str) -> operation_pb2.Operation:
        op = operation_pb2.Operation(id=self._id("computeoperation"), description=description,
                                     resource_id=resource_id, created_by="serviceaccount-e00vmopssim")
        self._now_ts(op.created_at)
        self.operations[op.id] = op
        return op

    def _finish(self, op: operation_pb2.Operation, abort: _Abort | None = None) -> None:
        self._now_ts(op.finished_at)
        op.status.CopyFrom(abort.status() if abort is not None else status_pb2.Status(code=0))

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        def run() -> None:
            with self.lock:
                fn()

        self.scheduler.call_later(delay_s, run)

    def _idempotent(self, method: str, key: str | None, make: Callable[[], operation_pb2.Operation]
                    ) -> operation_pb2.Operation:
        if key:
            known = self.idempotency.get((method, key))
            if known is not None and known in self.operations:
                return self.operations[known]
        op = make()
        if key:
            self.idempotency[(method, key)] = op.id
        return op

    def _page(self, items: list[Any], page_size: int, token: str) -> tuple[list[Any], str]:
        size = self.max_page_size if page_size <= 0 else min(int(page_size), self.max_page_size)
        start = 0
        if token:
            try:
                start = int(_b64url_decode(token).decode().removeprefix("offset:"))
            except (ValueError, UnicodeDecodeError):
                raise _Abort(S.INVALID_ARGUMENT, "invalid page_token") from None
        end = start + size
        nxt = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode().rstrip("=") if end < len(items) else ""
        return items[start:end], nxt

    @staticmethod
    def _copy(msg: Any) -> Any:
        out = type(msg)()
        out.CopyFrom(msg)
        return out

    # ---- TokenExchangeService --------------------------------------------------------------------
    def exchange(self, req: tokens.ExchangeTokenRequest) -> tokens.CreateTokenResponse:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def deny(why: str) -> _Abort:
            return _Abort(S.UNAUTHENTICATED, f"token exchange refused: {why}")

        if req.grant_type != "urn:ietf:params:oauth:grant-type:token-exchange" or \
                req.subject_token_type != "urn:ietf:params:oauth:token-type:jwt" or \
                req.requested_token_type != "urn:ietf:params:oauth:token-type:access_token":
            raise _Abort(S.INVALID_ARGUMENT, "unsupported grant_type, subject_token_type or requested_token_type")
        try:
            h64, c64, s64 = req.subject_token.split(".")
            header, claims = json.loads(_b64url_decode(h64)), json.loads(_b64url_decode(c64))
            signature = _b64url_decode(s64)
        except (ValueError, UnicodeDecodeError):
            raise deny("the subject token is not a JWT") from None
        if header.get("alg") != "RS256" or header.get("kid") not in self.service_accounts:
            raise deny("unknown key id or algorithm")
        sa_id, public_key = self.service_accounts[header["kid"]]
        try:
            public_key.verify(signature, f"{h64}.{c64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise deny("bad signature") from None
        now = time.time()
        if claims.get("iss") != sa_id or claims.get("sub") != sa_id or claims.get("aud") != JWT_AUDIENCE:
            raise deny("iss/sub/aud do not match the key's service account")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp <= now or iat > now + 60 or exp - iat > 3600:
            raise deny("the JWT is expired or not yet valid")
        token = "ne1" + uuid.UUID(int=self.rng.getrandbits(128)).hex
        self.issued[token] = now + self.token_lifetime_s
        return tokens.CreateTokenResponse(access_token=token, issued_token_type=req.requested_token_type,
                                          token_type="Bearer", expires_in=self.token_lifetime_s)

    def authorized(self, value: str | None) -> bool:
        if not isinstance(value, str) or not value.startswith("Bearer "):
            return False
        token = value[len("Bearer "):]
        with self.lock:
            return token in STATIC_TOKENS or self.issued.get(token, 0.0) > time.time()

    # ---- SubnetService ---------------------------------------------------------------------------
    def list_subnets(self, req: subnet_service_pb2.ListSubnetsRequest) -> subnet_service_pb2.ListSubnetsResponse:
        items, nxt = self._page(self._project(req.parent_id).subnets, req.page_size, req.page_token)
        return subnet_service_pb2.ListSubnetsResponse(items=items, next_page_token=nxt)

    def get_subnet(self, req: subnet_service_pb2.GetSubnetRequest) -> subnet_pb2.Subnet:
        for p in self.projects.values():
            for s in p.subnets:
                if s.metadata.id == req.id:
                    return self._copy(s)
        raise not_found("Subnet", req.id)

    # ---- DiskService -----------------------------------------------------------------------------
    def create_disk(self, req: disk_service_pb2.CreateDiskRequest, key: str | None, fx: _Effects
                    ) -> operation_pb2.Operation:
        def make() -> operation_pb2.Operation:
            md, spec = req.metadata, req.spec
            self._project(md.parent_id)
            if spec.WhichOneof("size") is None or spec.type == disk_pb2.DiskSpec.UNSPECIFIED:
                raise _Abort(S.INVALID_ARGUMENT, "spec.size and spec.type are required")
            family = spec.source_image_family.image_family
            if (spec.WhichOneof("source") == "source_image_family"
                    and family not in self.public.ready_families(self.public.regions[md.parent_id])):
                raise not_found("Image family", family)
            for d in self.disks.values():
                if d.metadata.parent_id == md.parent_id and d.metadata.name == md.name and md.name:
                    raise _Abort(S.ALREADY_EXISTS, f"disk named {md.name!r} already exists", _err(
                        "AlreadyExists",
                        resource_already_exists=error_pb2.ResourceAlreadyExists(resource_id=d.metadata.id)))
            disk = self._new_disk(md.parent_id, md.name, dict(md.labels), family)
            op = self._operation(f"Create disk {disk.metadata.id}", disk.metadata.id)

            def ready() -> None:
                if disk.metadata.id in self.disks:
                    disk.status.state = disk_pb2.DiskStatus.READY
                    self._finish(op)

            if not fx.never_complete:
                self._later(DISK_READY_S, ready)
            return op

        return self._copy(self._idempotent("DiskService/Create", key, make))

    def delete_disk(self, req: disk_service_pb2.DeleteDiskRequest, key: str | None, fx: _Effects
                    ) -> operation_pb2.Operation:
        def make() -> operation_pb2.Operation:
            disk = self.disks.get(req.id)
            if disk is None:
                raise not_found("Disk", req.id)
            if disk.status.read_write_attachment:
                raise bad_state(req.id, f"disk {req.id} is attached to {disk.status.read_write_attachment}")
            disk.status.state = disk_pb2.DiskStatus.DELETING
            op = self._operation(f"Delete disk {req.id}", req.id)

            def gone() -> None:
                self.disks.pop(req.id, None)
                self._finish(op)

            if not fx.never_complete:
                self._later(DISK_DELETE_S, gone)
            return op

        return self._copy(self._idempotent("DiskService/Delete", key, make))

    def get_disk(self, req: disk_service_pb2.GetDiskRequest) -> disk_pb2.Disk:
        d = self.disks.get(req.id)
        if d is None:
            raise not_found("Disk", req.id)
        return self._copy(d)

    def get_disk_by_name(self, req: Any) -> disk_pb2.Disk:
        self._project(req.parent_id)
        for d in self.disks.values():
            if d.metadata.parent_id == req.parent_id and d.metadata.name == req.name:
                return self._copy(d)
        raise not_found("Disk", req.name)

    def list_disks(self, req: disk_service_pb2.ListDisksRequest) -> disk_service_pb2.ListDisksResponse:
        self._project(req.parent_id)
        mine = [d for d in self.disks.values() if d.metadata.parent_id == req.parent_id]
        items, nxt = self._page(mine, req.page_size, req.page_token)
        return disk_service_pb2.ListDisksResponse(items=items, next_page_token=nxt)

    # ---- InstanceService -------------------------------------------------------------------------
    def create_instance(self, req: svc.CreateInstanceRequest, key: str | None, fx: _Effects
                        ) -> operation_pb2.Operation:
        def make() -> operation_pb2.Operation:
            md, spec = req.metadata, req.spec
            proj = self._project(md.parent_id)
            platform, preset = spec.resources.platform, spec.resources.preset
            if platform not in CATALOG or preset not in CATALOG[platform]:
                raise _Abort(S.INVALID_ARGUMENT, f"unknown platform/preset {platform}/{preset}", _err(
                    "BadRequest", bad_request=error_pb2.BadRequest(violations=[error_pb2.BadRequest.Violation(
                        field="spec.resources", message=f"unknown platform/preset {platform}/{preset}")])))
            for other in self.instances.values():
                if other.metadata.parent_id == md.parent_id and other.metadata.name == md.name:
                    raise _Abort(S.ALREADY_EXISTS, f"instance named {md.name!r} already exists", _err(
                        "AlreadyExists",
                        resource_already_exists=error_pb2.ResourceAlreadyExists(resource_id=other.metadata.id)))
            if spec.boot_disk.attach_mode == pb.AttachedDiskSpec.UNSPECIFIED or \
                    spec.boot_disk.WhichOneof("type") != "existing_disk":
                raise _Abort(S.INVALID_ARGUMENT, "spec.boot_disk needs attach_mode and existing_disk")
            disk = self.disks.get(spec.boot_disk.existing_disk.id)
            if disk is None or disk.metadata.parent_id != md.parent_id:
                raise not_found("Disk", spec.boot_disk.existing_disk.id)
            if disk.status.state != disk_pb2.DiskStatus.READY or disk.status.read_write_attachment:
                raise bad_state(disk.metadata.id, f"disk {disk.metadata.id} is not ready or is attached")
            if len(spec.network_interfaces) != 1 or not spec.network_interfaces[0].HasField("ip_address"):
                raise _Abort(S.INVALID_ARGUMENT, "spec.network_interfaces needs one interface with ip_address")
            subnet = next((s for s in proj.subnets if s.metadata.id == spec.network_interfaces[0].subnet_id), None)
            if subnet is None:
                raise not_found("Subnet", spec.network_interfaces[0].subnet_id)
            type_key = f"{platform}/{preset}"
            has_capacity = proj.capacity.get(type_key, 0) > 0
            if not has_capacity and self.capacity_failure == "sync":
                raise no_capacity(type_key)
            holds = has_capacity and not fx.fail_after_accept
            if holds:
                proj.capacity[type_key] -= 1
            late = fx.fail_after_accept or (not has_capacity and self.capacity_failure == "stop")
            failing = not has_capacity and self.capacity_failure == "operation" and not fx.fail_after_accept
            inst = self._new_instance(md.parent_id, md.name, dict(md.labels), platform, preset, disk, subnet)
            inst.spec.cloud_init_user_data = spec.cloud_init_user_data
            inst.spec.reservation_policy.CopyFrom(spec.reservation_policy)
            iid = inst.metadata.id
            if holds:
                self.holding.add(iid)
            op = self._operation(f"Create instance {iid}", iid)

            def accepted() -> None:
                if iid not in self.instances:
                    return
                if failing:  # the operation fails; the instance is left in ERROR, holding its disk
                    inst.status.state = pb.InstanceStatus.ERROR
                    inst.status.reconciling = False
                    self._finish(op, no_capacity(type_key))
                    return
                inst.status.state = pb.InstanceStatus.STARTING
                self._finish(op)
                self._later(RUNNING_S - OP_DONE_S, running)

            def running() -> None:
                if iid not in self.instances or inst.status.state != pb.InstanceStatus.STARTING:
                    return
                inst.status.reconciling = False
                if late:  # Not enough resources: back to STOPPED (cloud-apis.md 3.3)
                    inst.status.state = pb.InstanceStatus.STOPPED
                    return
                inst.status.state = pb.InstanceStatus.RUNNING
                self._give_addresses(inst)

            if not fx.never_complete:
                self._later(OP_DONE_S, accepted)
            return op

        return self._copy(self._idempotent("InstanceService/Create", key, make))

    def _release(self, inst: pb.Instance) -> None:
        proj = self.projects.get(inst.metadata.parent_id)
        if proj is not None and inst.metadata.id in self.holding:
            self.holding.discard(inst.metadata.id)
            key = f"{inst.spec.resources.platform}/{inst.spec.resources.preset}"
            proj.capacity[key] = proj.capacity.get(key, 0) + 1

    def delete_instance(self, req: svc.DeleteInstanceRequest, key: str | None, fx: _Effects
                        ) -> operation_pb2.Operation:
        def make() -> operation_pb2.Operation:
            inst = self._instance(req.id)
            inst.status.state = pb.InstanceStatus.DELETING
            inst.status.reconciling = True
            op = self._operation(f"Delete instance {req.id}", req.id)

            def gone() -> None:
                if self.instances.pop(req.id, None) is None:
                    return
                self._release(inst)
                disk = self.disks.get(inst.spec.boot_disk.existing_disk.id)
                if disk is not None and disk.status.read_write_attachment == req.id:
                    disk.status.read_write_attachment = ""  # an existing disk stays behind, detached
                self._finish(op)

            if not fx.never_complete:
                self._later(TRANSITION_S, gone)
            return op

        return self._copy(self._idempotent("InstanceService/Delete", key, make))

    def _transition(self, method: str, req: Any, key: str | None, fx: _Effects) -> operation_pb2.Operation:
        start = method == "InstanceService/Start"

        def make() -> operation_pb2.Operation:
            inst = self._instance(req.id)
            need = pb.InstanceStatus.STOPPED if start else pb.InstanceStatus.RUNNING
            if inst.status.state != need:
                state = pb.InstanceStatus.InstanceState.Name(inst.status.state)
                raise bad_state(req.id, f"instance {req.id} is {state}, not "
                                        f"{pb.InstanceStatus.InstanceState.Name(need)}")
            proj = self._project(inst.metadata.parent_id)
            type_key = f"{inst.spec.resources.platform}/{inst.spec.resources.preset}"
            if start:
                if proj.capacity.get(type_key, 0) <= 0:
                    raise no_capacity(type_key)
                proj.capacity[type_key] -= 1
                self.holding.add(req.id)
            inst.status.state = pb.InstanceStatus.STARTING if start else pb.InstanceStatus.STOPPING
            inst.status.reconciling = True
            inst.spec.stopped = not start
            op = self._operation(f"{'Start' if start else 'Stop'} instance {req.id}", req.id)

            def done() -> None:
                if req.id not in self.instances:
                    return
                inst.status.reconciling = False
                inst.status.state = pb.InstanceStatus.RUNNING if start else pb.InstanceStatus.STOPPED
                if not start:
                    self._release(inst)
                self._finish(op)

            if not fx.never_complete:
                self._later(TRANSITION_S, done)
            return op

        return self._copy(self._idempotent(method, key, make))

    def get_instance(self, req: svc.GetInstanceRequest) -> pb.Instance:
        return self._copy(self._instance(req.id))

    def get_instance_by_name(self, req: Any) -> pb.Instance:
        self._project(req.parent_id)
        for inst in self.instances.values():
            if inst.metadata.parent_id == req.parent_id and inst.metadata.name == req.name:
                return self._copy(inst)
        raise not_found("Instance", req.name)

    def list_instances(self, req: svc.ListInstancesRequest) -> svc.ListInstancesResponse:
        self._project(req.parent_id)
        mine = [i for i in self.instances.values() if i.metadata.parent_id == req.parent_id]
        items, nxt = self._page(mine, req.page_size, req.page_token)
        return svc.ListInstancesResponse(items=items, next_page_token=nxt)

    # ---- OperationService ------------------------------------------------------------------------
    def get_operation(self, req: ops.GetOperationRequest) -> operation_pb2.Operation:
        op = self.operations.get(req.id)
        if op is None:
            raise not_found("Operation", req.id)
        return self._copy(op)

    def list_operations(self, req: ops.ListOperationsRequest) -> ops.ListOperationsResponse:
        mine = [o for o in self.operations.values() if o.resource_id == req.resource_id]
        items, nxt = self._page(mine, req.page_size, req.page_token)
        return ops.ListOperationsResponse(operations=items, next_page_token=nxt)

    # ---- inspection helpers (tests) --------------------------------------------------------------
    def disk_count(self) -> int:
        with self.lock:
            return len(self.disks)

    def disk_names(self) -> list[str]:
        with self.lock:
            return sorted(d.metadata.name for d in self.disks.values())

    def instance_count(self) -> int:
        with self.lock:
            return len(self.instances)

    def capacity(self, parent_id: str | None = None) -> dict[str, int]:
        with self.lock:
            return dict(self.projects[parent_id or next(iter(self.projects))].capacity)

    @property
    def parent(self) -> str:
        return next(iter(self.projects))

    # ---- server ----------------------------------------------------------------------------------
    def serve(self, endpoint: str, context: grpc.ServicerContext, fn: Callable[[_Effects], Any]) -> Any:
        """Count the call, check auth, apply faults, run ``fn`` and answer its ``_Abort`` with details."""
        n = self.requests.begin(endpoint)
        mutating = bool(self.ENDPOINTS.get(endpoint, False))
        if endpoint != "TokenExchangeService/Exchange":
            md = dict(context.invocation_metadata() or ())
            if not self.authorized(md.get("authorization")):
                self.requests.record(endpoint, False, "error:UNAUTHENTICATED")
                context.abort(S.UNAUTHENTICATED, "invalid or expired IAM token")
        fault, fx = draw_faults(self, endpoint, n)
        if fault is not None and fault.kind == "hang":  # held unanswered: now drop the RPC
            context.abort(S.UNAVAILABLE, "connection reset")
        if fault is not None and fault.kind == "error":
            code = _status_code(fault.grpc_code)
            self.requests.record(endpoint, False, f"fault:error:{code.name}")
            self._abort(context, _Abort(code, fault.message or f"injected {code.name}"))
        if fault is not None:  # rate_limit
            self.requests.record(endpoint, False, "fault:rate_limit")
            self._abort(context, _Abort(S.RESOURCE_EXHAUSTED, fault.message or "too many requests", _err(
                "TooManyRequests", retry_type=error_pb2.ServiceError.CALL,
                too_many_requests=error_pb2.TooManyRequests(violation="requests per second"))))
        try:
            with self.lock:
                try:
                    result = fn(fx)
                except ImageAbort as ie:
                    raise _Abort(ie.code, ie.message) from None
        except _Abort as e:
            self.requests.record(endpoint, False, f"error:{e.code.name}")
            self._abort(context, e)
        if fx.lose_response:
            self.requests.record(endpoint, mutating, "fault:lose_response")
            context.abort(S.UNAVAILABLE, "connection reset")
        if fx.malformed:
            self.requests.record(endpoint, mutating, f"fault:malformed:{fx.malformed}")
            return spoil(result, fx.malformed)
        self.requests.record(endpoint, mutating, "ok")
        return result

    @staticmethod
    def _abort(context: grpc.ServicerContext, e: _Abort) -> None:
        context.set_trailing_metadata((("grpc-status-details-bin", e.status().SerializeToString()),))
        context.abort(e.code, e.message)

    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=10, thread_name_prefix="sim-nebius-cloud"))
        _add_service(svc_grpc.add_InstanceServiceServicer_to_server, _Instances(self), server)
        _add_service(disk_service_pb2_grpc.add_DiskServiceServicer_to_server, _Disks(self), server)
        _add_service(ops_grpc.add_OperationServiceServicer_to_server, _Operations(self), server)
        _add_service(subnet_service_pb2_grpc.add_SubnetServiceServicer_to_server, _Subnets(self), server)
        _add_service(tokens_grpc.add_TokenExchangeServiceServicer_to_server, _Tokens(self), server)
        _add_service(image_service_pb2_grpc.add_ImageServiceServicer_to_server,
                     ImagesServicer(self.serve, lambda: self.public, self._page), server)
        _add_service(project_service_pb2_grpc.add_ProjectServiceServicer_to_server,
                     ProjectsServicer(self.serve, lambda: self.public), server)
        bound = bind(server, host, port, self.tls)
        server.start()
        self._server, self.port, self._host = server, bound, host
        return bound

    def stop(self) -> None:
        self.faults.release_hangs()
        if self._server is not None:
            self._server.stop(grace=0).wait(5)
            self._server = None
        self.scheduler.shutdown()

    def client_env(self) -> dict[str, str]:
        """Dialect, endpoint, plaintext or TLS as served, a static test token and the first project. The SSH
        public key stays the user's (``VMOPS_NEBIUS_SSH_PUBLIC_KEY_FILE`` or ~/.ssh/id_ed25519.pub); a TLS
        simulator's CA is the caller's to name (``VMOPS_NEBIUS_CA_BUNDLE``)."""
        return {"VMOPS_NEBIUS_DIALECT": "cloud", "VMOPS_NEBIUS_ENDPOINT": self.address,
                "VMOPS_NEBIUS_TLS": "1" if self.tls else "0", "VMOPS_NEBIUS_IAM_TOKEN": sorted(STATIC_TOKENS)[0],
                "VMOPS_NEBIUS_PARENT": self.parent}

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("nebius cloud simulator is not started")
        return f"{getattr(self, '_host', '127.0.0.1')}:{self.port}"


def _key(context: grpc.ServicerContext) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == "x-idempotency-key" and isinstance(v, str) and v:
            return v
    return None


def _keyed(sim: NebiusCloudSim, endpoint: str, context: grpc.ServicerContext) -> str | None:
    """The call's idempotency key, remembered in ``sim.keys`` (endpoint, key or None) for tests."""
    key = _key(context)
    with sim.lock:
        sim.keys.append((endpoint, key))
    return key


class _Instances(svc_grpc.InstanceServiceServicer):
    def __init__(self, sim: NebiusCloudSim) -> None:
        self.sim = sim

    def Get(self, request: Any, context: Any) -> Any:
        return self.sim.serve("InstanceService/Get", context, lambda fx: self.sim.get_instance(request))

    def GetByName(self, request: Any, context: Any) -> Any:
        return self.sim.serve("InstanceService/GetByName", context, lambda fx: self.sim.get_instance_by_name(request))

    def List(self, request: Any, context: Any) -> Any:
        return self.sim.serve("InstanceService/List", context, lambda fx: self.sim.list_instances(request))

    def Create(self, request: Any, context: Any) -> Any:
        key = _keyed(self.sim, "InstanceService/Create", context)
        return self.sim.serve("InstanceService/Create", context, lambda fx: self.sim.create_instance(request, key, fx))

    def Delete(self, request: Any, context: Any) -> Any:
        key = _keyed(self.sim, "InstanceService/Delete", context)
        return self.sim.serve("InstanceService/Delete", context, lambda fx: self.sim.delete_instance(request, key, fx))

    def Start(self, request: Any, context: Any) -> Any:
        key = _keyed(self.sim, "InstanceService/Start", context)
        return self.sim.serve("InstanceService/Start", context,
                              lambda fx: self.sim._transition("InstanceService/Start", request, key, fx))

    def Stop(self, request: Any, context: Any) -> Any:
        key = _keyed(self.sim, "InstanceService/Stop", context)
        return self.sim.serve("InstanceService/Stop", context,
                              lambda fx: self.sim._transition("InstanceService/Stop", request, key, fx))


class _Disks(disk_service_pb2_grpc.DiskServiceServicer):
    def __init__(self, sim: NebiusCloudSim) -> None:
        self.sim = sim

    def Get(self, request: Any, context: Any) -> Any:
        return self.sim.serve("DiskService/Get", context, lambda fx: self.sim.get_disk(request))

    def GetByName(self, request: Any, context: Any) -> Any:
        return self.sim.serve("DiskService/GetByName", context, lambda fx: self.sim.get_disk_by_name(request))

    def List(self, request: Any, context: Any) -> Any:
        return self.sim.serve("DiskService/List", context, lambda fx: self.sim.list_disks(request))

    def Create(self, request: Any, context: Any) -> Any:
        key = _keyed(self.sim, "DiskService/Create", context)
        return self.sim.serve("DiskService/Create", context, lambda fx: self.sim.create_disk(request, key, fx))

    def Delete(self, request: Any, context: Any) -> Any:
        key = _keyed(self.sim, "DiskService/Delete", context)
        return self.sim.serve("DiskService/Delete", context, lambda fx: self.sim.delete_disk(request, key, fx))


class _Operations(ops_grpc.OperationServiceServicer):
    def __init__(self, sim: NebiusCloudSim) -> None:
        self.sim = sim

    def Get(self, request: Any, context: Any) -> Any:
        return self.sim.serve("OperationService/Get", context, lambda fx: self.sim.get_operation(request))

    def List(self, request: Any, context: Any) -> Any:
        return self.sim.serve("OperationService/List", context, lambda fx: self.sim.list_operations(request))


class _Subnets(subnet_service_pb2_grpc.SubnetServiceServicer):
    def __init__(self, sim: NebiusCloudSim) -> None:
        self.sim = sim

    def Get(self, request: Any, context: Any) -> Any:
        return self.sim.serve("SubnetService/Get", context, lambda fx: self.sim.get_subnet(request))

    def List(self, request: Any, context: Any) -> Any:
        return self.sim.serve("SubnetService/List", context, lambda fx: self.sim.list_subnets(request))


class _Tokens(tokens_grpc.TokenExchangeServiceServicer):
    def __init__(self, sim: NebiusCloudSim) -> None:
        self.sim = sim

    def Exchange(self, request: Any, context: Any) -> Any:
        return self.sim.serve("TokenExchangeService/Exchange", context, lambda fx: self.sim.exchange(request))
