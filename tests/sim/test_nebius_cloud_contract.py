"""The Nebius cloud-dialect simulator answers like Nebius' public API (../shared/cloud-apis.md section 3), checked
with raw gRPC calls through the generated stubs (no vmops adapter involved)."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest

from vmops._gen.cloud.google.rpc import status_pb2
from vmops._gen.cloud.nebius.common.v1 import error_pb2, metadata_pb2
from vmops._gen.cloud.nebius.common.v1 import operation_service_pb2 as ops
from vmops._gen.cloud.nebius.common.v1 import operation_service_pb2_grpc as ops_grpc
from vmops._gen.cloud.nebius.compute.v1 import disk_pb2, disk_service_pb2, disk_service_pb2_grpc
from vmops._gen.cloud.nebius.compute.v1 import instance_pb2 as pb
from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops._gen.cloud.nebius.iam.v1 import token_exchange_service_pb2_grpc as tokens_grpc
from vmops._gen.cloud.nebius.iam.v1 import token_service_pb2 as tokens
from vmops._gen.cloud.nebius.vpc.v1 import subnet_service_pb2, subnet_service_pb2_grpc
from vmops.sim.common import Fault, SimOptions
from vmops.sim.nebius_cloud import NebiusCloudSim

AUTH = (("authorization", "Bearer nebius-iam-token-001"),)
PARENT = "project-e00vmopssim01"


class Stubs:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.instances = svc_grpc.InstanceServiceStub(self.channel)
        self.disks = disk_service_pb2_grpc.DiskServiceStub(self.channel)
        self.ops = ops_grpc.OperationServiceStub(self.channel)
        self.subnets = subnet_service_pb2_grpc.SubnetServiceStub(self.channel)
        self.tokens = tokens_grpc.TokenExchangeServiceStub(self.channel)


@pytest.fixture
def stubs(nebius_cloud_sim: NebiusCloudSim) -> Any:
    s = Stubs(nebius_cloud_sim.address)
    yield s
    s.channel.close()


def service_error(e: grpc.RpcError) -> error_pb2.ServiceError:
    [raw] = [v for k, v in e.trailing_metadata() if k == "grpc-status-details-bin"]  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(raw)
    assert status.code == e.code().value[0]  # type: ignore[attr-defined]
    err = error_pb2.ServiceError()
    assert status.details[0].Unpack(err)
    return err


def wait_done(stubs: Stubs, op_id: str) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        op = stubs.ops.Get(ops.GetOperationRequest(id=op_id), metadata=AUTH)
        if op.HasField("status"):
            return op
        time.sleep(0.01)
    raise AssertionError(f"operation {op_id} did not finish")


def make_disk(stubs: Stubs, name: str, key: str | None = None) -> Any:
    req = disk_service_pb2.CreateDiskRequest()
    req.metadata.parent_id, req.metadata.name = PARENT, name
    req.spec.size_gibibytes, req.spec.type = 200, disk_pb2.DiskSpec.NETWORK_SSD
    req.spec.source_image_family.image_family = "ubuntu22.04-cuda12"
    md = AUTH + ((("x-idempotency-key", key),) if key else ())
    return stubs.disks.Create(req, metadata=md)


def instance_request(stubs: Stubs, name: str, disk_id: str) -> svc.CreateInstanceRequest:
    [subnet] = stubs.subnets.List(subnet_service_pb2.ListSubnetsRequest(parent_id=PARENT), metadata=AUTH).items
    req = svc.CreateInstanceRequest()
    req.metadata.parent_id, req.metadata.name = PARENT, name
    req.spec.resources.platform, req.spec.resources.preset = "gpu-h100-sxm", "1gpu-16vcpu-200gb"
    req.spec.boot_disk.attach_mode = pb.AttachedDiskSpec.READ_WRITE
    req.spec.boot_disk.existing_disk.id = disk_id
    nic = req.spec.network_interfaces.add(name="eth0", subnet_id=subnet.metadata.id)
    nic.ip_address.SetInParent()
    return req


def test_every_call_but_the_token_exchange_needs_a_token(stubs: Stubs) -> None:
    for call in (lambda md: stubs.instances.List(svc.ListInstancesRequest(parent_id=PARENT), metadata=md),
                 lambda md: stubs.ops.Get(ops.GetOperationRequest(id="x"), metadata=md)):
        with pytest.raises(grpc.RpcError) as e:
            call((("authorization", "Bearer nope"),))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e2:  # no authorization needed: the JWT itself is refused
        stubs.tokens.Exchange(tokens.ExchangeTokenRequest(
            grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
            requested_token_type="urn:ietf:params:oauth:token-type:access_token",
            subject_token="a.b.c", subject_token_type="urn:ietf:params:oauth:token-type:jwt"))
    assert e2.value.code() == grpc.StatusCode.UNAUTHENTICATED and "not a JWT" in e2.value.details()


def test_operations_disks_and_instances(stubs: Stubs, nebius_cloud_sim: NebiusCloudSim) -> None:
    op = make_disk(stubs, "boot-1")
    assert not op.HasField("status") and op.resource_id.startswith("computedisk-")  # in progress
    assert wait_done(stubs, op.id).status.code == 0
    disk = stubs.disks.Get(disk_service_pb2.GetDiskRequest(id=op.resource_id), metadata=AUTH)
    assert disk.status.state == disk_pb2.DiskStatus.READY
    iop = stubs.instances.Create(instance_request(stubs, "vm-1", disk.metadata.id), metadata=AUTH)
    assert wait_done(stubs, iop.id).status.code == 0
    inst = stubs.instances.GetByName(metadata_pb2.GetByNameRequest(parent_id=PARENT, name="vm-1"), metadata=AUTH)
    assert inst.metadata.id == iop.resource_id
    with pytest.raises(grpc.RpcError) as e:  # names are unique per project
        stubs.instances.Create(instance_request(stubs, "vm-1", disk.metadata.id), metadata=AUTH)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as e2:  # an attached disk cannot be deleted
        stubs.disks.Delete(disk_service_pb2.DeleteDiskRequest(id=disk.metadata.id), metadata=AUTH)
    assert e2.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert service_error(e2.value).WhichOneof("details") == "bad_resource_state"
    wait_done(stubs, stubs.instances.Delete(svc.DeleteInstanceRequest(id=inst.metadata.id), metadata=AUTH).id)
    with pytest.raises(grpc.RpcError) as e3:
        stubs.instances.Get(svc.GetInstanceRequest(id=inst.metadata.id), metadata=AUTH)
    assert e3.value.code() == grpc.StatusCode.NOT_FOUND
    assert service_error(e3.value).resource_not_found.resource_id == inst.metadata.id
    assert nebius_cloud_sim.disk_count() == 1  # an existing boot disk survives its instance
    wait_done(stubs, stubs.disks.Delete(disk_service_pb2.DeleteDiskRequest(id=disk.metadata.id), metadata=AUTH).id)
    assert nebius_cloud_sim.disk_count() == 0


def test_a_repeated_idempotency_key_returns_the_original_operation(stubs: Stubs,
                                                                   nebius_cloud_sim: NebiusCloudSim) -> None:
    a = make_disk(stubs, "same", key="k-0123456789")
    b = make_disk(stubs, "same", key="k-0123456789")
    assert (a.id, a.resource_id) == (b.id, b.resource_id) and nebius_cloud_sim.disk_count() == 1
    with pytest.raises(grpc.RpcError) as e:  # a new key for the same name: a second disk is refused
        make_disk(stubs, "same", key="k-other-key-1")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert service_error(e.value).resource_already_exists.resource_id == a.resource_id


def test_lists_come_in_small_pages() -> None:
    sim = NebiusCloudSim(SimOptions(time_scale=0.05, scenario={"instances": [{"name": "p", "count": 7}]}))
    sim.start(0)
    try:
        s = Stubs(sim.address)
        first = s.instances.List(svc.ListInstancesRequest(parent_id=PARENT, page_size=100), metadata=AUTH)
        assert len(first.items) == 3 and first.next_page_token
        names, token = [], ""
        while True:
            page = s.instances.List(svc.ListInstancesRequest(parent_id=PARENT, page_token=token), metadata=AUTH)
            names += [i.metadata.name for i in page.items]
            token = page.next_page_token
            if not token:
                break
        assert sorted(names) == [f"p-{k}" for k in range(7)]
        with pytest.raises(grpc.RpcError) as e:
            s.instances.List(svc.ListInstancesRequest(parent_id=PARENT, page_token="garbage!"), metadata=AUTH)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        s.channel.close()
    finally:
        sim.stop()


def test_rate_limit_fault_carries_a_retryable_service_error(stubs: Stubs, nebius_cloud_sim: NebiusCloudSim) -> None:
    nebius_cloud_sim.faults.add(Fault(endpoint="InstanceService/List", kind="rate_limit", per_seconds=60))
    stubs.instances.List(svc.ListInstancesRequest(parent_id=PARENT), metadata=AUTH)
    with pytest.raises(grpc.RpcError) as e:
        stubs.instances.List(svc.ListInstancesRequest(parent_id=PARENT), metadata=AUTH)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    err = service_error(e.value)
    assert err.WhichOneof("details") == "too_many_requests" and err.retry_type == error_pb2.ServiceError.CALL
    assert nebius_cloud_sim.requests.counts()["InstanceService/List"] == 2
