"""The ``hang`` fault: the call is accepted and never answered (no state change), held until the fault's
bound, a reset or stop; the server keeps serving other calls and stops cleanly."""

from __future__ import annotations

import threading

import grpc
import httpx
import pytest

from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops.sim.common import Fault, SimOptions
from vmops.sim.lambdalabs import LambdaSim
from vmops.sim.nebius import NebiusSim


def test_rest_hang_holds_the_call_and_answers_nothing(lambda_sim) -> None:
    lambda_sim.faults.add(Fault("list_instances", "hang"))
    headers = {"Authorization": "Bearer lambda-test-key-001"}
    with httpx.Client(base_url=lambda_sim.address, headers=headers, timeout=httpx.Timeout(0.5)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/api/v1/instances")
        assert c.get("/api/v1/instance-types").status_code == 200  # other endpoints still served
    assert [r.outcome for r in lambda_sim.requests.records() if r.endpoint == "list_instances"] == ["fault:hang"]


def test_a_bounded_hang_drops_the_call_unanswered(lambda_sim) -> None:
    lambda_sim.faults.add(Fault("list_instances", "hang", hang_s=0.2, times=1))
    headers = {"Authorization": "Bearer lambda-test-key-001"}
    with httpx.Client(base_url=lambda_sim.address, headers=headers, timeout=httpx.Timeout(10)) as c:
        with pytest.raises(httpx.HTTPError) as e:
            c.get("/api/v1/instances")
        assert not isinstance(e.value, httpx.TimeoutException)  # dropped by the server, not timed out
        assert c.get("/api/v1/instances").status_code == 200  # `times` = 1: the next call is served


def test_grpc_hang_then_reset_releases_it(nebius_sim) -> None:
    nebius_sim.faults.add(Fault("InstanceService/List", "hang"))
    codes: list[grpc.StatusCode] = []
    with grpc.insecure_channel(nebius_sim.address) as ch:
        stub = svc_grpc.InstanceServiceStub(ch)
        md = (("authorization", "Bearer nebius-test-key-001"),)
        with pytest.raises(grpc.RpcError) as e:
            stub.List(svc.ListInstancesRequest(parent_id="project-e1a2b3c4"), metadata=md, timeout=0.5)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def call() -> None:
            try:
                stub.List(svc.ListInstancesRequest(parent_id="project-e1a2b3c4"), metadata=md, timeout=30)
            except grpc.RpcError as err:
                codes.append(err.code())

        t = threading.Thread(target=call)
        t.start()
        while nebius_sim.faults.held() < 2:  # the first (timed-out) call is still held too
            t.join(0.01)
        nebius_sim.reset()  # releases the held call: it ends unanswered, at once
        t.join(10)
        assert not t.is_alive() and codes == [grpc.StatusCode.UNAVAILABLE]
        assert stub.List(svc.ListInstancesRequest(parent_id="project-e1a2b3c4"), metadata=md, timeout=5).instances


@pytest.mark.parametrize("cls", [LambdaSim, NebiusSim])
def test_a_server_holding_hung_calls_stops(cls) -> None:
    sim = cls(SimOptions(time_scale=0.05, faults=[Fault("*", "hang")]))
    sim.start(0)
    done = threading.Event()

    def call() -> None:
        try:
            if cls is LambdaSim:
                httpx.get(sim.address + "/api/v1/instances", timeout=60,
                          headers={"Authorization": "Bearer lambda-test-key-001"})
            else:
                with grpc.insecure_channel(sim.address) as ch:
                    svc_grpc.InstanceServiceStub(ch).List(svc.ListInstancesRequest(parent_id="project-e1a2b3c4"),
                                                          metadata=(("authorization", "Bearer nebius-test-key-001"),),
                                                          timeout=60)
        except Exception:
            pass
        done.set()

    threading.Thread(target=call, daemon=True).start()
    while sim.faults.held() < 1:
        done.wait(0.01)
    sim.stop()
    assert done.wait(15)  # the held call was let go, and stop returned


def _cloud_list(sim) -> None:
    """One list call to a cloud-dialect simulator, authenticated as its clients are (Crusoe's fault is drawn
    before the signature is checked, so an unsigned call reaches it)."""
    from vmops.sim.crusoe_cloud import CrusoeCloudSim
    from vmops.sim.lambda_cloud import LambdaCloudSim

    if isinstance(sim, CrusoeCloudSim):
        from vmops.sim.crusoe_cloud import TEST_PROJECT

        httpx.get(f"{sim.address}/projects/{TEST_PROJECT}/compute/vms/instances", timeout=60)
    elif isinstance(sim, LambdaCloudSim):
        httpx.get(sim.address + "/instances", timeout=60, headers={"Authorization": "Bearer lambda-cloud-test-key-001"})
    else:
        from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2 as csvc
        from vmops._gen.cloud.nebius.compute.v1 import instance_service_pb2_grpc as csvc_grpc

        with grpc.insecure_channel(sim.address) as ch:
            csvc_grpc.InstanceServiceStub(ch).List(csvc.ListInstancesRequest(parent_id=sim.parent), timeout=60,
                                                   metadata=(("authorization", "Bearer nebius-iam-token-001"),))


@pytest.mark.parametrize("cls_path", ["vmops.sim.crusoe_cloud:CrusoeCloudSim", "vmops.sim.lambda_cloud:LambdaCloudSim",
                                      "vmops.sim.nebius_cloud:NebiusCloudSim"])
def test_cloud_simulators_hang_too_and_stop_releases_the_call(cls_path) -> None:
    """The cloud dialect's simulators draw their faults through the same code (vmops.sim.common.draw_faults):
    a ``hang`` holds the list call unanswered (recorded as such) until stop, which returns promptly."""
    import importlib

    mod, _, name = cls_path.partition(":")
    sim = getattr(importlib.import_module(mod), name)(SimOptions(time_scale=0.05))
    sim.start(0)
    sim.faults.add(Fault("list_instances" if "Nebius" not in name else "InstanceService/List", "hang"))
    done = threading.Event()
    failed: list[BaseException] = []

    def call() -> None:
        try:
            _cloud_list(sim)
        except Exception as e:  # dropped unanswered: an error, never an answer
            failed.append(e)
        done.set()

    threading.Thread(target=call, daemon=True).start()
    while sim.faults.held() < 1:
        done.wait(0.01)
    assert not done.is_set()  # held, not answered
    assert [r.outcome for r in sim.requests.records()][-1:] == ["fault:hang"]
    sim.stop()
    assert done.wait(15) and failed
