"""The simulators' `malformed` fault knob: off by default, each variant spoils only successful answers, the
call itself is still served (a mutation is committed), and requests that reach no endpoint are logged."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest

from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
from vmops.sim.common import MALFORMED_VARIANTS, NON_JSON_BODY, UNKNOWN_ENUM_VALUE, Fault, malform_json
from vmops.sim.rest import NO_ENDPOINT

CRUSOE_KEY = {"Authorization": "Bearer crusoe-test-key-001"}
LAMBDA_KEY = {"Authorization": "Bearer lambda-test-key-001"}
NEBIUS_MD = (("authorization", "Bearer nebius-test-key-001"),)
CRUSOE_LIST = "/v1alpha5/projects/proj-001/compute/vms/instances"


def test_fault_needs_a_known_variant():
    with pytest.raises(ValueError, match="variant"):
        Fault("list_instances", "malformed")
    with pytest.raises(ValueError, match="variant"):
        Fault("list_instances", "malformed", variant="garbled")
    f = Fault.from_dict({"provider": "crusoe", "endpoint": "get_instance", "kind": "malformed", "variant": "empty"})
    assert (f.kind, f.variant) == ("malformed", "empty")


def test_malform_json_variants():
    body = {"items": [{"id": "a", "state": "STATE_RUNNING", "n": 2, "ok": True, "x": None, "disks": []}]}
    assert malform_json(body, "empty") == {}
    assert malform_json(body, "missing_fields") == {"items": [{"disks": []}]}
    wrong = malform_json(body, "wrong_types")["items"][0]
    assert wrong == {"id": 12345, "state": 12345, "n": "2 units", "ok": "yes", "x": {"unexpected": True}, "disks": []}
    enum = malform_json(body, "unknown_enum", ["state"])["items"][0]
    assert enum["state"] == UNKNOWN_ENUM_VALUE and enum["id"] == "a"
    assert body["items"][0]["id"] == "a"  # the input is not modified


def test_off_by_default_and_every_variant_on_crusoe_list(crusoe_sim):
    with httpx.Client(base_url=crusoe_sim.address, trust_env=False) as c:
        good = c.get(CRUSOE_LIST, headers=CRUSOE_KEY)
        assert good.status_code == 200 and good.json()["items"][0]["id"]
        for variant in MALFORMED_VARIANTS:
            crusoe_sim.faults.clear()
            crusoe_sim.faults.add(Fault("list_instances", "malformed", variant=variant))
            r = c.get(CRUSOE_LIST, headers=CRUSOE_KEY)
            assert r.status_code == 200, variant
            if variant == "non_json":
                assert r.headers["content-type"].startswith("text/html") and r.content == NON_JSON_BODY
                continue
            if variant == "truncated":
                assert good.content.startswith(r.content) and len(r.content) < len(good.content)
                with pytest.raises(ValueError):
                    json.loads(r.content)
                continue
            body = r.json()
            item = (body.get("items") or [{}])[0]
            if variant == "empty":
                assert body == {}
            elif variant == "wrong_types":
                assert isinstance(item["id"], int) and isinstance(item["name"], int)
            elif variant == "missing_fields":
                assert "id" not in item and "state" not in item and item["disks"] == []
            elif variant == "unknown_enum":
                assert item["state"] == UNKNOWN_ENUM_VALUE and item["id"] == good.json()["items"][0]["id"]
        outcomes = [r.outcome for r in crusoe_sim.requests.records() if r.endpoint == "list_instances"]
        assert outcomes[0] == "ok" and outcomes[1:] == [f"fault:malformed:{v}" for v in MALFORMED_VARIANTS]


def test_error_answers_are_not_spoiled(lambda_sim):
    lambda_sim.faults.add(Fault("*", "malformed", variant="non_json"))
    with httpx.Client(base_url=lambda_sim.address, trust_env=False) as c:
        r = c.get("/api/v1/instances", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["detail"]["error"]["code"] == "global/invalid-api-key"
        r = c.get("/api/v1/instances/does-not-exist", headers=LAMBDA_KEY)
        assert r.status_code == 404 and "error" in r.json()["detail"]


def test_a_spoiled_create_is_still_committed(lambda_sim):
    lambda_sim.faults.add(Fault("launch", "malformed", variant="truncated"))
    with httpx.Client(base_url=lambda_sim.address, trust_env=False) as c:
        body = {"region_name": "us-west-1", "instance_type_name": "gpu_1x_a100", "ssh_key_names": ["default-key"],
                "name": "spoiled-launch", "quantity": 1}
        r = c.post("/api/v1/instance-operations/launch", json=body, headers=LAMBDA_KEY)
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
        names = [d["name"] for d in c.get("/api/v1/instances", headers=LAMBDA_KEY).json()["data"]]
    assert names.count("spoiled-launch") == 1


def test_requests_log_raw_paths_and_requests_that_reach_no_endpoint(crusoe_sim):
    with httpx.Client(base_url=crusoe_sim.address, trust_env=False) as c:
        c.get(CRUSOE_LIST + "/a%3Fb%23c", headers=CRUSOE_KEY)
        c.get("/v1alpha5/projects/proj-001/compute/vms/nothing/here", headers=CRUSOE_KEY)
        c.get(CRUSOE_LIST, params={"names": "x y"}, headers=CRUSOE_KEY)
    recs = crusoe_sim.requests.records()
    assert [(r.endpoint, r.path) for r in recs] == [
        ("get_instance", CRUSOE_LIST + "/a%3Fb%23c"),
        (NO_ENDPOINT, "/v1alpha5/projects/proj-001/compute/vms/nothing/here"),
        ("list_instances", CRUSOE_LIST + "?names=x+y"),
    ]
    assert recs[1].outcome == "http:404"


def _nebius_get(nebius_sim) -> tuple[pb.Instance | None, grpc.RpcError | None, str]:
    with grpc.insecure_channel(nebius_sim.address) as ch:
        stub = svc_grpc.InstanceServiceStub(ch)
        iid = stub.List(svc.ListInstancesRequest(parent_id="project-e1a2b3c4"), metadata=NEBIUS_MD).instances[0].metadata.id
        try:
            return stub.Get(svc.GetInstanceRequest(id=iid), metadata=NEBIUS_MD, timeout=5), None, iid
        except grpc.RpcError as e:
            return None, e, iid


@pytest.mark.parametrize("variant", MALFORMED_VARIANTS)
def test_nebius_variants(nebius_sim, variant):
    nebius_sim.faults.add(Fault("InstanceService/Get", "malformed", variant=variant))
    msg, err, iid = _nebius_get(nebius_sim)
    if variant in ("non_json", "truncated"):
        assert err is not None and err.code() == grpc.StatusCode.INTERNAL
        assert "deserializing response" in err.details().lower()
        return
    assert err is None and msg is not None
    if variant == "unknown_enum":
        assert msg.status.state == 99 and msg.metadata.id == iid
    else:  # wrong_types (skipped as unknown fields), missing_fields, empty: no id reaches the client
        assert msg.metadata.id == ""
    assert [r.outcome for r in nebius_sim.requests.records() if r.endpoint == "InstanceService/Get"] == \
        [f"fault:malformed:{variant}"]


def test_nebius_off_by_default(nebius_sim):
    msg, err, iid = _nebius_get(nebius_sim)
    assert err is None and msg.metadata.id == iid and msg.status.state == pb.RUNNING
