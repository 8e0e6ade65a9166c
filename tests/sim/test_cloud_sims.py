"""The cloud-dialect simulators answer like the real APIs (../shared/cloud-apis.md), checked on the wire."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import CRUSOE_CLOUD_KEY, LAMBDA_CLOUD_KEY, TEST_PUBLIC_KEY
from vmops.providers.crusoe_sign import CrusoeSigner
from vmops.sim.crusoe_cloud import TEST_PROJECT

SIGNER = CrusoeSigner(*CRUSOE_CLOUD_KEY)


def test_crusoe_cloud_create_answers_an_operation_only(crusoe_cloud_sim) -> None:
    base = f"{crusoe_cloud_sim.address}/projects/{TEST_PROJECT}/compute/vms/instances"
    with httpx.Client(auth=SIGNER) as c:
        r = c.post(base, json={"name": "w1", "type": "a100-80gb.1x", "location": "us-east1-a",
                               "ssh_public_key": TEST_PUBLIC_KEY})
        assert r.status_code == 200 and set(r.json()) == {"operation"}
        op = r.json()["operation"]
        assert op["state"] == "IN_PROGRESS" and set(op) >= {"operation_id", "metadata", "started_at", "completed_at"}
        vm_id = op["metadata"]["id"]
        deadline = time.monotonic() + 5
        while c.get(f"{base}/operations/{op['operation_id']}").json()["state"] == "IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        done = c.get(f"{base}/operations/{op['operation_id']}").json()
        assert done["state"] == "SUCCEEDED" and done["result"]["id"] == vm_id
        assert c.get(f"{base}/operations/00000000-0000-0000-0000-000000000000").status_code == 403
        partial = c.post(base, json={"name": "w2", "type": "a100-80gb.1x", "location": "us-east1-a",
                                     "ssh_public_key": TEST_PUBLIC_KEY, "network_interfaces": [{"subnet": "x"}]})
        assert partial.status_code == 400 and partial.json()["code"] == "bad_request"
        missing = c.post(base, json={"name": "w3"})
        assert missing.status_code == 400 and "ssh_public_key" in missing.json()["message"]
        none = c.post(base, json={"name": "w4", "type": "h100-80gb-sxm-ib.8x", "location": "eu-iceland1-a",
                                  "ssh_public_key": TEST_PUBLIC_KEY})
        assert none.status_code == 400 and none.json()["code"] == "out_of_stock"
        assert c.get(f"{base}/0f0f0f0f-0000-4000-8000-000000000000").status_code == 404
        assert c.patch(f"{base}/{vm_id}", json={"action": "REBOOT"}).status_code == 400
        page = c.get(base, params={"limit": "1"}).json()
        assert len(page["items"]) == 1 and page["next_page_token"]
        last = c.get(base, params={"limit": "1", "next_token": page["next_page_token"]}).json()
        assert len(last["items"]) == 1 and last["next_page_token"] == ""
    assert crusoe_cloud_sim.requests.count("create_instance") == 4


def test_lambda_cloud_envelopes_and_booting(lambda_cloud_sim) -> None:
    url = lambda_cloud_sim.address
    with httpx.Client(headers={"Authorization": f"Bearer {LAMBDA_CLOUD_KEY}"}) as c:
        r = c.post(url + "/instance-operations/launch", json={"region_name": "us-east-1",
                                                              "instance_type_name": "gpu_1x_a10",
                                                              "ssh_key_names": ["vmops"], "name": "b1"})
        [iid] = r.json()["data"]["instance_ids"]
        inst = c.get(f"{url}/instances/{iid}").json()["data"]
        assert inst["status"] == "booting" and "ip" not in inst
        time.sleep(0.1)
        missing = c.get(f"{url}/instances/{'0' * 32}")
        assert missing.status_code == 404 and missing.json() == {"error": {
            "code": "global/object-does-not-exist", "message": "Specified instance does not exist."}}
        early = c.post(url + "/instance-operations/launch", json={"region_name": "us-east-1",
                                                                  "instance_type_name": "gpu_1x_a10",
                                                                  "ssh_key_names": ["vmops"], "name": "b2"})
        assert early.status_code == 429 and early.headers["retry-after"] == "1"  # one launch per 12 s (scaled)
        assert not early.headers["content-type"].startswith("application/json")  # not Lambda JSON (§2.4)
        time.sleep(0.7)
        nokey = c.post(url + "/instance-operations/launch", json={"region_name": "us-east-1",
                                                                  "instance_type_name": "gpu_1x_a10",
                                                                  "ssh_key_names": ["nobody"]})
        assert nokey.status_code == 404
    bad = httpx.get(url + "/instances", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "global/invalid-api-key"


def test_sim_host_serves_the_cloud_dialect(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    proc = subprocess.Popen([sys.executable, "-m", "vmops.sim.host", "--state-file", str(state), "--crusoe-port", "0",
                             "--lambda-port", "0", "--nebius-port", "0", "--scale", "0.05", "--dialect", "cloud"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not state.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        data = json.loads(state.read_text())
        assert data["dialects"] == {"crusoe": "cloud", "lambda": "cloud", "nebius": "cloud"}
        env = data["client_env"]
        assert env["VMOPS_CRUSOE_URL"].endswith("/v1alpha5") and env["VMOPS_LAMBDA_LAUNCH_INTERVAL"] == "0.6"
        r = httpx.get(env["VMOPS_LAMBDA_URL"] + "/instance-types",
                      headers={"Authorization": f"Bearer {env['VMOPS_LAMBDA_API_KEY']}"})
        assert r.status_code == 200 and "gpu_8x_h100_sxm5" in r.json()["data"]
        # the printed variables are enough for vmops to reach the Nebius cloud simulator (token, project, TLS)
        from vmops.config import load_config
        from vmops.session import Session

        with Session(load_config({**env, "VMOPS_HOME": str(tmp_path / "home"), "VMOPS_PROVIDERS": "nebius"})) as s:
            out, adapter = s.instances(), type(s.provider("nebius")).__name__
        assert not out.failures and adapter == "NebiusCloudProvider"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
