"""The fleet lifecycle through the real `vm` program (issue 12): what a user types and reads."""

from __future__ import annotations

import json
from pathlib import Path

from vmops.sim.common import Fault

from tests.cli.helpers import vm
from tests.conftest import both_dialects

pytestmark = both_dialects


def test_min_zero_is_a_usage_error_and_sends_nothing(sims, vm_env) -> None:
    r = vm(["fleet", "create", "-g", "h100", "-c", "2", "-n", "z0", "--min", "0"], vm_env)
    assert r.code == 2 and "--min" in r.err
    assert sum(s.requests.mutating_count() for s in sims.values()) == 0
    assert not (Path(vm_env["VMOPS_HOME"]) / "state.db").exists() or "z0" not in vm(
        ["fleet", "list", "-o", "json"], vm_env).out


def test_failure_details_print_as_real_lines_whole(sims, vm_env) -> None:
    """A fleet that cannot be made prints its attempts table on stderr, one row per line, not as one
    escaped line cut short."""
    sims["crusoe"].faults.add(Fault("create_instance", "error", status=503))
    sims["nebius"].faults.add(Fault("InstanceService/Create", "error", grpc_code="UNAVAILABLE"))
    sims["lambda"].faults.add(Fault("launch", "error", status=503))
    r = vm(["fleet", "create", "-g", "h100", "-c", "2", "-n", "nope", "-q"], vm_env)
    assert r.code in (7, 12), r.err
    assert "\\x0a" not in r.err and "more characters" not in r.err
    lines = r.err.strip().splitlines()
    assert lines[0].startswith("error: ") and len(lines) > 2
    assert any(line.startswith("PROVIDER") for line in lines[1:])  # the table's heading, on its own line


def test_dry_run_destroy_on_a_fresh_home_writes_nothing(sims, vm_env) -> None:
    r = vm(["fleet", "destroy", "ghost", "--dry-run"], vm_env)
    assert r.code == 5 and "no fleets on record" in r.err
    assert not (Path(vm_env["VMOPS_HOME"]) / "state.db").exists()
    r = vm(["fleet", "create", "-g", "h100", "-c", "2", "-n", "plan-only", "--dry-run"], vm_env)
    assert r.code == 0 and not (Path(vm_env["VMOPS_HOME"]) / "state.db").exists()


def test_views_agree_and_scripts_are_not_asked(sims, vm_env) -> None:
    assert vm(["fleet", "create", "-g", "h100", "-c", "3", "-n", "agree", "-q"], vm_env).code == 0
    before = vm(["fleet", "destroy", "agree", "--dry-run", "-o", "json"], vm_env)
    d = json.loads(before.out)
    assert d["destroy_count"] == 3 and d["cost_after_per_hour"] == 0
    listed = json.loads(vm(["fleet", "list", "--refresh", "-o", "json"], vm_env).out)
    (row,) = [f for f in listed if f["name"] == "agree"]
    cost = json.loads(vm(["cost", "--by", "fleet", "-o", "json"], vm_env).out)["groups"]
    (c,) = [x for x in cost if x["fleet"] == "agree"]
    assert row["running"] == 3 and abs(row["price_per_hour"] - c["hourly"]) < 1e-6
    assert abs(d["cost_before_per_hour"] - c["hourly"]) < 1e-6  # the Decision prices what vm cost bills
    r = vm(["fleet", "destroy", "agree", "-o", "json"], vm_env)  # stdin is not a terminal: not asked
    assert r.code == 0 and json.loads(r.out)["state"] == "destroyed"
    # unasked, each provider's part goes as soon as it is seen: one summary line per provider, before it acts
    parts = [line for line in r.err.splitlines() if line.startswith("destroy agree at ")]
    assert len(parts) == 3 and all(": 1 destroy;" in line for line in parts)
    assert {line.split()[3].rstrip(":") for line in parts} == {"crusoe", "lambda", "nebius"}


def test_reconcile_dry_run_shows_held_surplus_and_changes_nothing(sims, vm_env) -> None:
    env = {**vm_env, "VMOPS_PROVIDERS": "crusoe"}
    assert vm(["fleet", "create", "-g", "h100", "-c", "1", "-n", "sp", "-q"], env).code == 0
    made = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "vmops-sp-002", "-o", "json"], env)  # by hand
    assert made.code == 0, made.err
    before = sims["crusoe"].requests.mutating_count()
    d = json.loads(vm(["fleet", "reconcile", "sp", "--dry-run", "-o", "json"], env).out)
    assert d["destroy_count"] == 0 and [h["name"] for h in d["held"]] == ["vmops-sp-002"]
    assert "--destroy-surplus" in d["held"][0]["reason"]
    assert sims["crusoe"].requests.mutating_count() == before  # a dry run sends nothing
    r = vm(["fleet", "reconcile", "sp", "-o", "json"], env)  # adopts it into the record; destroys nothing
    assert r.code == 0 and len([m for m in json.loads(r.out)["members"] if m["status"] == "running"]) == 2
    assert sims["crusoe"].requests.mutating_count() == before
    r = vm(["fleet", "reconcile", "sp", "--destroy-surplus", "-o", "json"], env)
    assert r.code == 0 and len([m for m in json.loads(r.out)["members"] if m["status"] == "running"]) == 1
