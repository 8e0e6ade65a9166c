"""Contract tests for the Lambda simulator: the recorded wire exchanges replayed line by line, plus the
behaviours of provider-apis.md §0.2 / §2 that the recording does not show."""

from __future__ import annotations

import json

import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from vmops.sim.common import Fault, SimOptions
from vmops.sim.lambdalabs import LambdaSim
from tests.wire import wire_file

KEY = "lambda-test-key-001"
AUTH = {"Authorization": f"Bearer {KEY}"}
API = "/api/v1"
VOLATILE = ("jupyter_token", "jupyter_url")


def _wire_file() -> Path:
    return wire_file("lambda")


def _lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in _wire_file().read_text().splitlines() if line.strip()]


@pytest.fixture
def client(lambda_sim: LambdaSim) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lambda_sim.address, timeout=10, trust_env=False) as c:
        yield c


# ---- helpers ----------------------------------------------------------------------------------------
def assert_same_shape(expected: Any, actual: Any, where: str = "$") -> None:
    """Same keys (in the same order), same JSON value types, recursively; lists compared element-wise."""
    assert _jtype(expected) == _jtype(actual), f"{where}: expected {_jtype(expected)}, got {_jtype(actual)}"
    if isinstance(expected, dict):
        assert list(expected) == list(actual), f"{where}: keys {list(expected)} != {list(actual)}"
        for k in expected:
            assert_same_shape(expected[k], actual[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), f"{where}: {len(expected)} items expected, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same_shape(e, a, f"{where}[{i}]")


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def _mask(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: ("<volatile>" if k in VOLATILE else _mask(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [_mask(x) for x in v]
    return v


def _subst(v: Any, ids: dict[str, str]) -> Any:
    text = json.dumps(v)
    for old, new in ids.items():
        text = text.replace(old, new)
    return json.loads(text)


def launch_body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"region_name": "us-west-1", "instance_type_name": "gpu_1x_h100", "ssh_key_names": ["k"]}
    body.update(kw)
    return body


def launch(client: httpx.Client, **kw: Any) -> httpx.Response:
    return client.post(f"{API}/instance-operations/launch", json=launch_body(**kw), headers=AUTH)


def available(client: httpx.Client, region: str, itype: str) -> int:
    """The on-demand counter as the wire reveals it: the insufficient-capacity message of a huge launch."""
    r = launch(client, region_name=region, instance_type_name=itype, quantity=10**6)
    assert r.status_code == 400, r.text
    msg = r.json()["detail"]["error"]["message"]
    return int(msg.rsplit("available ", 1)[1].rstrip("."))


def instances(client: httpx.Client) -> list[dict[str, Any]]:
    r = client.get(f"{API}/instances", headers=AUTH)
    assert r.status_code == 200
    return r.json()["data"]


def by_name(client: httpx.Client, name: str) -> dict[str, Any]:
    [inst] = [i for i in instances(client) if i["name"] == name]
    return inst


def error_of(r: httpx.Response) -> dict[str, Any]:
    return r.json()["detail"]["error"]


# ---- the recording, replayed --------------------------------------------------------------------------
def test_replay_every_recorded_exchange(client: httpx.Client) -> None:
    lines = _lines()
    assert len(lines) >= 30
    recorded_seeds = [i["id"] for i in next(l for l in lines if l["step"] == "list")["response"]["body"]["data"]]
    actual_seeds = [i["id"] for i in instances(client)]
    assert len(actual_seeds) == len(recorded_seeds) == 3
    ids = dict(zip(recorded_seeds, actual_seeds))
    for line in lines:
        req, want = line["request"], line["response"]
        path = _subst(req["path"], ids)
        body = _subst(req["body"], ids) if req["body"] is not None else None
        r = client.request(req["method"], path, headers=req["headers"], json=body)
        step = line["step"]
        assert r.status_code == want["status"], f"{step}: {r.status_code} {r.text[:300]}"
        assert r.headers["content-type"] == want["content_type"], step
        got = r.json()
        if step.startswith("launch") and r.status_code == 200:
            rec_ids = want["body"]["data"]["instance_ids"]
            new_ids = got["data"]["instance_ids"]
            assert len(rec_ids) == len(new_ids), step
            assert all(len(i) == 32 and int(i, 16) >= 0 for i in new_ids), step
            ids.update(zip(rec_ids, new_ids))
        expected = _subst(want["body"], ids)
        assert_same_shape(expected, got, step)
        # Beyond shapes: everything but the random jupyter values is deterministic and must be equal.
        assert _mask(got) == _mask(expected), f"{step}: body differs"
        assert r.text == json.dumps(got, separators=(",", ":"), ensure_ascii=False), f"{step}: not compact JSON"


# ---- seed data -------------------------------------------------------------------------------------
def test_seed_instances_and_fresh_ids(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    data = instances(client)
    assert [i["name"] for i in data] == ["training-node-1", "dev-box", "reserved-h100-node"]
    assert [i["ip"] for i in data] == ["198.51.100.10", "198.51.100.11", "198.51.100.12"]
    assert [i["private_ip"] for i in data] == ["10.0.2.10", "10.0.2.11", "10.0.2.12"]
    for i in data:
        assert len(i["id"]) == 32 and i["id"] == i["id"].lower()
        assert len(i["jupyter_token"]) == 32
        assert i["jupyter_url"].startswith("https://jupyter-") and i["jupyter_url"].endswith(".lambdaspaces.com")
    assert data[2]["is_reserved"] is True and data[2]["actions"]["terminate"]["available"] is False
    before = {i["id"] for i in data}
    lambda_sim.reset()
    assert before.isdisjoint({i["id"] for i in instances(client)})


def test_instance_types_catalog_and_capacity_regions(client: httpx.Client) -> None:
    data = client.get(f"{API}/instance-types", headers=AUTH).json()["data"]
    assert list(data) == ["gpu_8x_a100", "gpu_1x_a100", "gpu_8x_h100", "gpu_1x_h100"]
    regions = {k: [r["name"] for r in v["regions_with_capacity_available"]] for k, v in data.items()}
    assert regions == {
        "gpu_8x_a100": ["us-west-1", "eu-west-1"],
        "gpu_1x_a100": ["us-west-1", "us-east-1", "eu-west-1"],
        "gpu_8x_h100": ["us-west-1", "us-east-1"],
        "gpu_1x_h100": ["us-west-1", "us-east-1", "eu-west-1"],
    }
    # exhaust eu-west-1 gpu_1x_h100 (2): the region disappears; reservations never count
    assert launch(client, region_name="eu-west-1", quantity=2).status_code == 200
    data = client.get(f"{API}/instance-types", headers=AUTH).json()["data"]
    assert [r["name"] for r in data["gpu_1x_h100"]["regions_with_capacity_available"]] == ["us-west-1", "us-east-1"]


# ---- counters ---------------------------------------------------------------------------------------
def test_launch_and_terminate_move_on_demand_counter(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    assert available(client, "us-west-1", "gpu_1x_h100") == 5
    r = launch(client, quantity=2, name="c")
    assert r.status_code == 200
    new = r.json()["data"]["instance_ids"]
    assert available(client, "us-west-1", "gpu_1x_h100") == 3 == lambda_sim.on_demand("us-west-1", "gpu_1x_h100")
    r = client.post(f"{API}/instance-operations/terminate", json={"instance_ids": new[:1]}, headers=AUTH)
    assert r.status_code == 200
    [t] = r.json()["data"]["terminated_instances"]
    assert t["status"] == "terminated" and t["id"] == new[0]
    assert available(client, "us-west-1", "gpu_1x_h100") == 4
    assert client.get(f"{API}/instances/{new[0]}", headers=AUTH).status_code == 404


def test_quantity_zero_and_negative(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    n = len(instances(client))
    r = launch(client, quantity=0)
    assert r.status_code == 200 and r.json() == {"data": {"instance_ids": []}}
    assert available(client, "us-west-1", "gpu_1x_h100") == 5
    r = launch(client, quantity=-3)
    assert r.status_code == 200 and r.json()["data"]["instance_ids"] == []
    assert available(client, "us-west-1", "gpu_1x_h100") == 8
    # negative into a reservation lowers `used`
    r = launch(client, instance_type_name="gpu_8x_h100", reservation_id="rsv-lambda-001", quantity=-2)
    assert r.status_code == 200
    used = client.get(f"{API}/reservations/rsv-lambda-001", headers=AUTH).json()["data"]["used"]
    assert used == -1 == lambda_sim.reservation_used("rsv-lambda-001")
    assert len(instances(client)) == n


def test_terminating_seeded_instances_inflates_counters(client: httpx.Client) -> None:
    assert available(client, "us-west-1", "gpu_8x_a100") == 3
    seeded = by_name(client, "training-node-1")
    r = client.post(f"{API}/instance-operations/terminate", json={"instance_ids": [seeded["id"]]}, headers=AUTH)
    assert r.status_code == 200
    assert available(client, "us-west-1", "gpu_8x_a100") == 4


def test_reservation_launch_rules(client: httpx.Client) -> None:
    rsv = {"instance_type_name": "gpu_8x_h100", "reservation_id": "rsv-lambda-001"}
    r = launch(client, region_name="us-east-1", **rsv)
    assert r.status_code == 400 and error_of(r) == {"code": "global/invalid-parameters",
                                                    "message": "Reservation is in us-west-1, not us-east-1."}
    r = launch(client, quantity=2, **rsv)
    assert r.status_code == 400 and error_of(r) == {
        "code": "instance-operations/launch/insufficient-capacity",
        "message": "Reservation has 1 slots, requested 2.", "suggestion": "Reduce quantity or use on-demand."}
    on_demand_before = available(client, "us-west-1", "gpu_8x_h100")
    r = launch(client, name="rsv-node", **rsv)
    assert r.status_code == 200
    inst = by_name(client, "rsv-node")
    assert inst["is_reserved"] is True and inst["reservation_id"] == "rsv-lambda-001"
    assert inst["actions"]["terminate"]["available"] is False
    assert available(client, "us-west-1", "gpu_8x_h100") == on_demand_before  # on-demand untouched
    assert client.get(f"{API}/reservations/rsv-lambda-001", headers=AUTH).json()["data"]["used"] == 2
    r = launch(client, **rsv)
    assert r.status_code == 400 and error_of(r)["message"] == "Reservation has 0 slots, requested 1."
    # "" behaves like absent: on-demand
    r = launch(client, instance_type_name="gpu_8x_h100", reservation_id="", name="od")
    assert r.status_code == 200 and by_name(client, "od")["is_reserved"] is False
    # no auto-placement: on-demand exhausted -> error even though rsv-lambda-002 has room
    r = launch(client, region_name="us-east-1", instance_type_name="gpu_1x_a100", quantity=6)
    assert r.status_code == 400 and error_of(r)["message"] == "Insufficient capacity. Requested 6, available 5."


def test_launch_check_order(client: httpx.Client) -> None:
    r = launch(client, instance_type_name="nope", region_name="mars", reservation_id="nope")
    assert error_of(r)["message"] == "Unknown instance type: nope"
    r = launch(client, region_name="mars", reservation_id="nope")
    assert error_of(r)["message"] == "Unknown region: mars"
    r = launch(client, reservation_id="nope", quantity=10**6)
    assert r.status_code == 404 and error_of(r)["message"] == "Reservation nope does not exist."


def test_all_or_nothing(client: httpx.Client) -> None:
    n = len(instances(client))
    assert launch(client, quantity=6).status_code == 400
    assert len(instances(client)) == n
    assert available(client, "us-west-1", "gpu_1x_h100") == 5


# ---- naming, rename, IPs -------------------------------------------------------------------------------
def test_naming_rules(client: httpx.Client) -> None:
    ids = launch(client, name="job", quantity=3, hostname="ignored").json()["data"]["instance_ids"]
    data = {i["id"]: i for i in instances(client)}
    assert [data[i]["name"] for i in ids] == ["job-0", "job-1", "job-2"]
    assert [data[i]["hostname"] for i in ids] == ["job-0", "job-1", "job-2"]
    assert [data[i]["ip"] for i in ids] == ["198.51.100.13", "198.51.100.14", "198.51.100.15"]
    [one] = launch(client, name="").json()["data"]["instance_ids"]
    [two] = launch(client).json()["data"]["instance_ids"]
    data = {i["id"]: i for i in instances(client)}
    assert data[one]["name"] == "gpu_1x_h100" and data[two]["name"] == "gpu_1x_h100"
    assert data[one]["ssh_key_names"] == ["k"] and data[one]["file_system_names"] == [] and data[one]["tags"] == []


def test_ip_reuse_after_terminate(client: httpx.Client) -> None:
    a, b = launch(client, name="p", quantity=2).json()["data"]["instance_ids"]  # .13, .14
    client.post(f"{API}/instance-operations/terminate", json={"instance_ids": [a]}, headers=AUTH)
    [c] = launch(client, name="q").json()["data"]["instance_ids"]  # 4 live -> .14 again
    data = {i["id"]: i for i in instances(client)}
    assert data[b]["ip"] == data[c]["ip"] == "198.51.100.14"
    assert data[c]["private_ip"] == "10.0.2.14"


def test_rename_any_json_value(client: httpx.Client) -> None:
    iid = by_name(client, "dev-box")["id"]
    for value in ("renamed", None, 42, ["x"], {"a": 1}):
        r = client.post(f"{API}/instances/{iid}", json={"name": value, "other": 1}, headers=AUTH)
        assert r.status_code == 200 and r.json()["data"]["name"] == value
        assert r.json()["data"]["hostname"] == "dev-box"
    r = client.post(f"{API}/instances/{iid}", json={}, headers=AUTH)
    assert r.status_code == 200 and r.json()["data"]["name"] == {"a": 1}
    r = client.post(f"{API}/instances/{iid}", json=["name"], headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "dict_type"
    r = client.post(f"{API}/instances/unknown", json={"name": "x"}, headers=AUTH)
    assert r.status_code == 404 and error_of(r)["message"] == "Specified instance does not exist."


# ---- terminate / restart ------------------------------------------------------------------------------
def test_partial_batch_terminate_has_no_rollback(client: httpx.Client) -> None:
    a, b = launch(client, name="t", quantity=2).json()["data"]["instance_ids"]
    reserved = by_name(client, "reserved-h100-node")["id"]
    r = client.post(f"{API}/instance-operations/terminate", json={"instance_ids": [a, reserved, b]}, headers=AUTH)
    assert r.status_code == 400
    assert error_of(r) == {"code": "instance-operations/terminate/reserved-instance",
                           "message": f"Instance {reserved} is a reserved instance and cannot be terminated via API.",
                           "suggestion": "Contact support to manage reserved instances."}
    live = {i["id"] for i in instances(client)}
    assert a not in live and b in live and reserved in live
    assert available(client, "us-west-1", "gpu_1x_h100") == 4
    # duplicate id: the second occurrence is unknown by then
    r = client.post(f"{API}/instance-operations/terminate", json={"instance_ids": [b, b]}, headers=AUTH)
    assert r.status_code == 404 and error_of(r)["message"] == f"Instance {b} does not exist."
    assert b not in {i["id"] for i in instances(client)}
    r = client.post(f"{API}/instance-operations/terminate", json={"instance_ids": []}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"data": {"terminated_instances": []}}


def test_restart_is_sequential_noop(client: httpx.Client) -> None:
    ids = [i["id"] for i in instances(client)]
    r = client.post(f"{API}/instance-operations/restart", json={"instance_ids": ids}, headers=AUTH)
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["data"]["restarted_instances"]] == ids
    assert all(i["status"] == "active" for i in r.json()["data"]["restarted_instances"])
    r = client.post(f"{API}/instance-operations/restart", json={"instance_ids": [ids[0], "zz"]}, headers=AUTH)
    assert r.status_code == 404 and error_of(r) == {"code": "global/object-does-not-exist",
                                                    "message": "Instance zz does not exist."}


# ---- auth and validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("header,status", [
    (f"Bearer {KEY}", 200),
    (f"Basic {KEY}", 200),
    (KEY, 200),
    ("lambda-test-key-002", 200),
    (f"Bearer Bearer Basic {KEY}", 200),
    (f"BasBearer ic {KEY}", 200),  # "Bearer " is removed first, then "Basic "
    (f"Basic Bearer {KEY}", 200),
    ("", 401),
    (f"bearer {KEY}", 401),
    ("Basic bGFtYmRhLXRlc3Qta2V5LTAwMTo=", 401),  # real HTTP Basic (base64 of "key:") does not work
    (f"Token {KEY}", 401),
])
def test_auth_variants(client: httpx.Client, header: str, status: int) -> None:
    r = client.get(f"{API}/instances", headers={"Authorization": header})
    assert r.status_code == status
    if status == 401:
        assert r.json() == {"detail": {"error": {
            "code": "global/invalid-api-key", "message": "API key was invalid, expired, or deleted.",
            "suggestion": "Check your API key or create a new one, then try again."}}}


def test_validation_comes_before_auth(client: httpx.Client) -> None:
    r = client.post(f"{API}/instance-operations/launch", json={"region_name": "us-west-1"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], list)
    r = client.post(f"{API}/instance-operations/terminate", headers={"Authorization": "wrong"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "missing"
    assert r.json()["detail"][0]["loc"] == ["body"]
    r = client.post(f"{API}/instance-operations/launch", json={"region_name": "us-west-1"},
                    headers={"Authorization": "wrong"})
    assert r.status_code == 422
    assert client.post(f"{API}/instance-operations/launch", json=launch_body()).status_code == 401


@pytest.mark.parametrize("body,kind", [
    ({"quantity": 2.5}, "int_from_float"),
    ({"quantity": None}, "int_type"),
    ({"ssh_key_names": "k"}, "list_type"),
    ({"region_name": 5}, "string_type"),
    ({"quantity": "two"}, "int_parsing"),
])
def test_schema_errors(client: httpx.Client, body: dict[str, Any], kind: str) -> None:
    r = client.post(f"{API}/instance-operations/launch", json=launch_body(**body), headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == kind


def test_lax_coercion_and_content_type(client: httpx.Client) -> None:
    r = launch(client, quantity="2")
    assert r.status_code == 200 and len(r.json()["data"]["instance_ids"]) == 2
    r = client.post(f"{API}/instance-operations/launch", content=json.dumps(launch_body()),
                    headers={**AUTH, "Content-Type": "text/plain"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "model_attributes_type"
    r = client.post(f"{API}/instance-operations/launch", content="{oops", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    # query cluster_id accepted and ignored
    assert client.get(f"{API}/instances", params={"cluster_id": "x"}, headers=AUTH).status_code == 200


def test_framework_level_behaviour(client: httpx.Client) -> None:
    r = client.get(f"{API}/nothing-here", headers=AUTH)
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = client.get(f"{API}/instance-operations/launch", headers=AUTH)
    assert r.status_code == 405 and r.json() == {"detail": "Method Not Allowed"} and r.headers["allow"] == "POST"
    assert client.head(f"{API}/instances", headers=AUTH).status_code == 405
    assert client.options(f"{API}/instances", headers=AUTH).status_code == 405
    r = client.get(f"{API}/instances/", headers=AUTH)
    assert r.status_code == 307 and r.headers["location"].endswith("/api/v1/instances")
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200
    info = client.get("/openapi.json").json()["info"]
    assert info["title"] == "Lambda Cloud API Mock" and info["version"] == "1.9.3"
    # an encoded ../ cannot reach another endpoint
    r = client.get(f"{API}/instances/..%2F..%2Freservations", headers=AUTH)
    assert r.status_code == 404 and "data" not in r.json()


# ---- faults and counters ------------------------------------------------------------------------------
def test_error_faults(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    lambda_sim.faults.add(Fault(endpoint="list_instances", kind="error", status=500, nth=(2,)))
    lambda_sim.faults.add(Fault(endpoint="list_reservations", kind="error", status=503, times=1))
    lambda_sim.faults.add(Fault(endpoint="get_reservation", kind="error", status=429, retry_after=3, times=1))
    assert client.get(f"{API}/instances", headers=AUTH).status_code == 200
    r = client.get(f"{API}/instances", headers=AUTH)
    assert r.status_code == 500 and error_of(r)["code"] == "global/internal-error"
    assert client.get(f"{API}/instances", headers=AUTH).status_code == 200
    r = client.get(f"{API}/reservations", headers=AUTH)
    assert r.status_code == 503 and error_of(r)["code"] == "global/service-unavailable"
    assert client.get(f"{API}/reservations", headers=AUTH).status_code == 200
    r = client.get(f"{API}/reservations/rsv-lambda-001", headers=AUTH)
    assert r.status_code == 429 and r.headers["retry-after"] == "3" and error_of(r)["code"] == "global/rate-limited"
    assert lambda_sim.requests.count("list_instances") == 3


def test_rate_limit_fault_scaled(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    lambda_sim.faults.add(Fault(endpoint="launch", kind="rate_limit", per_seconds=12))
    window = 12 * lambda_sim.time_scale
    assert launch(client, name="r1").status_code == 200
    r = launch(client, name="r2")
    assert r.status_code == 429 and error_of(r)["code"] == "global/rate-limited"
    assert float(r.headers["retry-after"]) >= window
    assert [i for i in instances(client) if i["name"] == "r2"] == []
    time.sleep(window + 0.05)
    assert launch(client, name="r3").status_code == 200


def test_latency_fault(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    lambda_sim.faults.add(Fault(endpoint="get_reservation", kind="latency", latency_s=0.3))
    t = time.monotonic()
    assert client.get(f"{API}/reservations/rsv-lambda-002", headers=AUTH).status_code == 200
    assert time.monotonic() - t >= 0.3


def test_lose_response_commits_the_launch(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    lambda_sim.faults.add(Fault(endpoint="launch", kind="lose_response", times=1))
    with pytest.raises(httpx.TransportError):
        launch(client, name="lost")
    assert by_name(client, "lost")["status"] == "active"
    assert available(client, "us-west-1", "gpu_1x_h100") == 4
    assert launch(client, name="kept").status_code == 200


def test_never_complete_is_ignored(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    lambda_sim.faults.add(Fault(endpoint="launch", kind="never_complete"))
    lambda_sim.faults.add(Fault(endpoint="launch", kind="fail_after_accept"))
    assert launch(client, name="sync").status_code == 200
    assert by_name(client, "sync")["status"] == "active"


def test_request_counters_and_reset(client: httpx.Client, lambda_sim: LambdaSim) -> None:
    instances(client)
    launch(client, name="x")
    client.get(f"{API}/instance-types", headers=AUTH)
    counts = lambda_sim.requests.counts()
    assert counts["list_instances"] == 1 and counts["launch"] == 1 and counts["list_instance_types"] == 1
    assert lambda_sim.requests.mutating_count() == 1
    lambda_sim.faults.add(Fault(endpoint="*", kind="error", status=500))
    old = {i for i in lambda_sim.instance_ids()}
    lambda_sim.reset()
    assert lambda_sim.requests.counts() == {}
    assert [i["name"] for i in instances(client)] == ["training-node-1", "dev-box", "reserved-h100-node"]
    assert old.isdisjoint(lambda_sim.instance_ids())
    assert lambda_sim.on_demand("us-west-1", "gpu_1x_h100") == 5


# ---- scenario knobs and scale --------------------------------------------------------------------------
def _started(scenario: dict[str, Any]) -> LambdaSim:
    sim = LambdaSim(SimOptions(time_scale=0.05, scenario=scenario, seed=7))
    sim.start(0)
    return sim


def test_scenario_overrides() -> None:
    sim = _started({
        "on_demand": {"eu-west-1": {"gpu_8x_h100": 4}, "us-west-1": {"gpu_1x_h100": 0}},
        "reservations": [{"id": "r-x", "instance_type": "gpu_1x_h100", "region": "eu-west-1", "quantity": 3}],
        "instances": [],
    })
    try:
        with httpx.Client(base_url=sim.address, trust_env=False) as c:
            assert instances(c) == []
            assert [r["id"] for r in c.get(f"{API}/reservations", headers=AUTH).json()["data"]] == ["r-x"]
            types = c.get(f"{API}/instance-types", headers=AUTH).json()["data"]
            assert [r["name"] for r in types["gpu_8x_h100"]["regions_with_capacity_available"]] == \
                ["us-west-1", "us-east-1", "eu-west-1"]
            assert [r["name"] for r in types["gpu_1x_h100"]["regions_with_capacity_available"]] == \
                ["us-east-1", "eu-west-1"]
            r = launch(c, region_name="eu-west-1", reservation_id="r-x", name="a")
            assert r.status_code == 200 and by_name(c, "a")["ip"] == "198.51.100.10"
    finally:
        sim.stop()
    with pytest.raises(ValueError):
        LambdaSim(SimOptions(scenario={"on_demand": {"mars-1": {"gpu_1x_h100": 1}}}))


def test_thousands_of_instances() -> None:
    sim = _started({"instances": [{"name": "bulk", "region": "us-west-1", "instance_type": "gpu_1x_a100",
                                   "count": 3000}],
                    "on_demand": {"us-east-1": {"gpu_1x_a100": 500}}})
    try:
        with httpx.Client(base_url=sim.address, trust_env=False, timeout=30) as c:
            t = time.monotonic()
            data = instances(c)
            assert len(data) == 3000 and data[-1]["name"] == "bulk-2999" and data[-1]["ip"] == "198.51.100.3009"
            r = launch(c, region_name="us-east-1", instance_type_name="gpu_1x_a100", quantity=500, name="more")
            assert r.status_code == 200 and len(r.json()["data"]["instance_ids"]) == 500
            ids = [i["id"] for i in data[:1000]]
            r = c.post(f"{API}/instance-operations/terminate", json={"instance_ids": ids}, headers=AUTH)
            assert r.status_code == 200 and len(r.json()["data"]["terminated_instances"]) == 1000
            assert len(instances(c)) == 2500
            assert time.monotonic() - t < 10
    finally:
        sim.stop()
