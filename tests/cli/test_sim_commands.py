"""`vm sim up|status|reset|down` start and stop the real background simulator host."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from tests.cli.helpers import vm

PORTS = ["--crusoe-port", "0", "--lambda-port", "0", "--nebius-port", "0"]


@pytest.fixture
def home_env(tmp_path):
    env = {"VMOPS_HOME": str(tmp_path / "home")}
    yield env
    vm(["sim", "down"], env)


def test_up_status_down_idempotent(home_env, tmp_path):
    r = vm(["sim", "up", "--scale", "0.05", "--json", *PORTS], home_env)
    assert r.code == 0, r.err
    info = r.json()
    addrs = {s["provider"]: s["address"] for s in info["simulators"]}
    assert set(addrs) == {"crusoe", "lambda", "nebius"}
    assert all(s["answers"] for s in info["simulators"])
    assert all("127.0.0.1:" in a for a in addrs.values())

    # a second `up` does not start a second host
    again = vm(["sim", "up", "--json", *PORTS], home_env)
    assert again.code == 0 and "already up" in again.err
    assert again.json()["pid"] == info["pid"]

    # the Crusoe simulator answers like the reference server
    req = urllib.request.Request(addrs["crusoe"] + "/v1alpha5/projects/proj-001/reservations",
                                 headers={"Authorization": "Bearer crusoe-test-key-001"})
    body = json.loads(urllib.request.urlopen(req, timeout=5).read())
    assert [r["id"] for r in body["items"]] == ["rsv-001", "rsv-002", "rsv-003"]

    st = vm(["sim", "status", "--json"], home_env)
    assert st.code == 0
    counts = {s["provider"]: s["requests"] for s in st.json()["simulators"]}
    assert counts["crusoe"] >= 1

    reset = vm(["sim", "reset"], home_env)
    assert reset.code == 0
    st = vm(["sim", "status", "--json"], home_env)
    assert {s["provider"]: s["requests"] for s in st.json()["simulators"]}["crusoe"] == 0

    down = vm(["sim", "down"], home_env)
    assert down.code == 0 and "stopped" in down.err
    assert vm(["sim", "down"], home_env).err.strip() == "simulators are not running"
    gone = vm(["sim", "status"], home_env)
    assert gone.code == 3 and "not running" in gone.out


def test_port_taken_is_a_clear_error(home_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = vm(["sim", "up", "--crusoe-port", str(port), "--lambda-port", "0", "--nebius-port", "0"], home_env)
    assert r.code == 2
    assert f"crusoe port {port} already in use" in r.err
    assert "Traceback" not in r.err
    assert vm(["sim", "status"], home_env).code == 3  # nothing was left running


def test_scenario_file_sets_capacity_and_faults(home_env, tmp_path):
    scenario = tmp_path / "big.yaml"
    scenario.write_text(
        "time_scale: 0.05\n"
        "crusoe:\n"
        "  on_demand: {us-east1: {h100.8x: 5000}}\n"
        "faults:\n"
        "  - {provider: lambda, endpoint: list_instances, kind: error, status: 503}\n"
    )
    r = vm(["sim", "up", "--json", "--scenario", str(scenario), *PORTS], home_env)
    assert r.code == 0, r.err
    addrs = {s["provider"]: s["address"] for s in r.json()["simulators"]}
    env = {**home_env, "VMOPS_CRUSOE_URL": addrs["crusoe"], "VMOPS_LAMBDA_URL": addrs["lambda"],
           "VMOPS_NEBIUS_ENDPOINT": addrs["nebius"]}
    cap = vm(["capacity", "--provider", "crusoe", "--gpu", "h100:8", "--json"], env)
    assert cap.code == 0, cap.err
    east = [o for o in cap.json() if o["region"] == "us-east1" and not o["reserved"]]
    assert east[0]["available"] == 5000
    listing = vm(["list", "--provider", "lambda"], env)
    assert listing.code == 12  # the injected 503 survives the retries: provider unavailable


def test_up_on_other_ports_prints_the_variables_that_point_vmops_at_them(home_env):
    """`vm sim up --crusoe-port 0 ...` binds free ports, where vmops' defaults do not point: it prints the
    `export` lines, and a command run with them talks to these simulators."""
    r = vm(["sim", "up", "--scale", "0.05", *PORTS], home_env)
    assert r.code == 0, r.err
    exports = dict(line[len("export "):].split("=", 1) for line in r.out.splitlines() if line.startswith("export "))
    assert set(exports) == {"VMOPS_CRUSOE_URL", "VMOPS_LAMBDA_URL", "VMOPS_NEBIUS_ENDPOINT"}
    shown = {line.split()[0]: line.split()[1] for line in r.out.splitlines()[1:4]}  # the table's addresses
    assert exports["VMOPS_CRUSOE_URL"] == shown["crusoe"] and exports["VMOPS_NEBIUS_ENDPOINT"] == shown["nebius"]
    listed = vm(["list", "--json"], {**home_env, **exports})
    assert listed.code == 0, listed.err
    assert {x["provider"] for x in listed.json()} == {"crusoe", "lambda", "nebius"}
    again = vm(["sim", "up", *PORTS], home_env)  # already up: the same lines again
    assert again.code == 0 and "export VMOPS_LAMBDA_URL=" + exports["VMOPS_LAMBDA_URL"] in again.out
    as_json = vm(["sim", "up", "--json", *PORTS], home_env)  # and for a script, in the JSON
    assert as_json.code == 0 and as_json.json()["env"] == exports
