"""`vm list --output csv`, `vm cost` and `inv vm.cost` read from the inventory functions."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import vm
from vmops import inventory as inv
from vmops.sim.common import Fault

from tests.conftest import both_dialects

pytestmark = both_dialects

ROOT = Path(__file__).resolve().parents[2]


#: the variable of each provider's secret, per dialect (what a wrong key is put in)
SECRET_VARS = {"reference": ("VMOPS_CRUSOE_API_KEY", "VMOPS_LAMBDA_API_KEY", "VMOPS_NEBIUS_API_KEY"),
               "cloud": ("VMOPS_CRUSOE_SECRET_KEY", "VMOPS_LAMBDA_API_KEY", "VMOPS_NEBIUS_IAM_TOKEN")}
#: the price origins the crashed fleet and the seed show: Crusoe's cloud 1 x H100 product is the simulator's own
#: name (../shared/cloud-apis.md §6.6), which no catalogue prices
PRICE_ORIGINS = {"reference": {"provider", "catalogue", "reservation"},
                 "cloud": {"provider", "catalogue", "reservation", "unknown"}}


def test_list_csv_is_the_instances_frame(sims, vm_env, session, seeded, crashed, dialect):
    r = vm(["list", "--output", "csv"], vm_env)
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert list(rows[0]) == list(inv.INSTANCE_COLUMNS)
    frame = inv.instances(session)
    assert {(x["provider"], x["id"]) for x in rows} == set(zip(frame["provider"], frame["id"]))
    by_name = {x["name"]: x for x in rows}
    assert by_name[crashed.recorded.name]["fleet"] == crashed.name
    assert by_name[crashed.unrecorded.name]["orphan"] == "True"
    assert by_name[crashed.unrecorded.name]["claimed_fleet"] == crashed.name
    assert {"provider", "reservation"} <= {x["price_origin"] for x in rows} <= PRICE_ORIGINS[dialect]
    assert all(float(x["price_per_hour"]) == 0 and x["prepaid"] == "True" for x in rows if x["reserved"] == "True")


def test_cost_json_table_and_errors(sims, vm_env, session, seeded, dialect):
    r = vm(["cost", "--json"], vm_env)
    assert r.code == 0, r.err
    data = r.json()
    frame = inv.instances(session)
    expected = frame.loc[frame["billed"], "price_per_hour"].sum()
    assert data["total"]["hourly"] == pytest.approx(expected)
    assert data["total"]["daily"] == pytest.approx(24 * expected, abs=0.01)
    assert {g["provider"] for g in data["groups"]} == {"crusoe", "lambda", "nebius"}
    assert set(data["groups"][0]) >= {"provider", "gpu", "fleet", "billing", "hourly", "daily", "monthly",
                                      "price_origins"}

    t = vm(["cost", "--by", "provider"], vm_env)
    assert t.code == 0, t.err
    lines = t.out.strip().splitlines()
    assert lines[0].split()[:3] == ["PROVIDER", "VMS", "GPUS"]
    assert lines[-1].startswith("TOTAL") and f"{expected:,.2f}" in lines[-1]

    bad = vm(["cost", "--by", "colour"], vm_env)
    assert bad.code == 2 and "colour" in bad.err and "Traceback" not in bad.err

    sims["lambda"].faults.add(Fault(endpoint="*", kind="error", status=503))
    part = vm(["cost", "--by", "provider", "--json"], {**vm_env, "VMOPS_OP_TIMEOUT": "5"}, timeout=180)
    assert part.code == 14 and "lambda" in part.err and "Traceback" not in part.err
    body = part.json()
    assert body["missing_providers"] == ["lambda"]
    assert {g["provider"] for g in body["groups"]} == {"crusoe", "nebius"}

    # every provider refusing the key the same way: the auth error's own exit code, like `vm list`
    sims["lambda"].faults.clear()
    wrong = {**vm_env, **{var: "wrong-key" for var in SECRET_VARS[dialect]}}
    auth = vm(["cost"], wrong)
    listing = vm(["list"], wrong)
    assert auth.code == listing.code == 3, (auth.err, listing.err)
    assert "Traceback" not in auth.err


def test_inv_vm_cost_task(sims, vm_env, seeded):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("VMOPS_")}
    env.update(vm_env)
    p = subprocess.run([sys.executable, "-m", "invoke", "vm.cost", "--by", "billing", "--output", "csv"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    by = {r["billing"]: r for r in rows}
    assert set(by) == {"reserved", "on-demand"}
    assert float(by["on-demand"]["hourly"]) > 0
    # reserved VMs are prepaid: $0 per hour; the reservations' own price (Crusoe's is known) apart
    assert float(by["reserved"]["hourly"]) == 0 and int(by["reserved"]["prepaid_vms"]) == len(seeded)
    assert float(by["reserved"]["commitment_hourly"]) == pytest.approx(sum(c for c in seeded.values() if c))
