"""`vm fleet create --dry-run` shows what the create then does: for a name the create would resume, only the
VMs still missing (not a plan for the whole fleet); for a name the create would refuse, the same refusal.
The preview records nothing and sends nothing that changes a provider."""

from __future__ import annotations

import json
import os
from collections import Counter
import subprocess
import sys

import pytest

from vmops.errors import InsufficientCapacity, ProviderUnavailable, StateError
from vmops.fleet.ownership import labels_for
from vmops.fleet.report import FleetCreateFailed
from vmops.model import CreateRequest
from vmops.state import FleetState, MemberStatus

from tests.conftest import both_dialects
from tests.fleet.conftest import at_providers, dead_url, spec


def _mutating(sims) -> int:
    return sum(s.requests.mutating_count() for s in sims.values())


def _half_made(mgr, name: str, count: int) -> None:
    """A fleet of ``count`` that a crash left half-made: 3 members made, one of them since deleted at its
    provider, and one VM named and labelled for the fleet that the record lacks (the crash lost its id)."""
    mgr.create(spec("h100", 3, name))
    f = mgr.store.get_fleet(name)
    members = mgr.store.members(f.id)
    lost = members[0]
    mgr.provider(lost.provider).destroy(lost.instance_id)
    keep = members[1]
    adapter = mgr.provider(keep.provider)
    labels = labels_for(name, mgr.store.identity) if adapter.capabilities.labels else {}
    adapter.create(CreateRequest(name=f"vmops-{name}-099", native_type=keep.native_type, region=keep.region,
                                 labels=labels))
    with mgr.store.write() as db:
        db.execute("UPDATE fleet SET state='partial', count=?, min_count=2, owner_pid=NULL WHERE id=?",
                   (count, f.id))


@both_dialects
def test_the_preview_of_a_resume_is_what_the_resume_makes(sims, config, make_manager) -> None:
    mgr = make_manager()
    _half_made(mgr, "prev5", 5)
    sent = _mutating(sims)
    preview = mgr.preview_create(spec("h100", 5, "prev5"))
    assert _mutating(sims) == sent  # asked the providers, changed nothing
    f = mgr.store.get_fleet("prev5")
    assert f.state is FleetState.PARTIAL and len(mgr.store.members(f.id)) == 3  # nothing recorded or adopted
    assert preview.resuming is not None and preview.resuming.name == "prev5"
    assert (preview.made, preview.starting) == (3, 0)  # 2 recorded survivors + the unrecorded VM
    assert preview.plan.count == 2 and preview.plan.planned == 2
    assert preview.min_count == 2 and preview.terms == ["as recorded: min 2, policy spread, reserved never"]
    assert preview.error() is None
    assert preview.to_dict()["resume"] == {"fleet": "prev5", "was": "partial", "terms": preview.terms, "made": 3,
                                           "starting": 0, "create": 2, "unobserved": {}}

    before = {v.id: v.provider for v in at_providers(config, "prev5")}
    result = mgr.create(spec("h100", 5, "prev5"))
    assert result.resumed and result.fleet.state is FleetState.ACTIVE
    made = Counter(v.provider for v in at_providers(config, "prev5") if v.id not in before)
    assert made == Counter({p.offer.provider: p.count for p in preview.plan.placements})  # what it showed, where
    mgr.destroy("prev5")


@both_dialects
def test_a_resume_that_needs_nothing_more_plans_nothing(sims, config, make_manager) -> None:
    mgr = make_manager()
    mgr.create(spec("h100", 2, "prev2"))
    f = mgr.store.get_fleet("prev2")
    with mgr.store.write() as db:
        db.execute("UPDATE fleet SET state='creating', owner_pid=NULL WHERE id=?", (f.id,))
    asked = sum(sum(s.requests.counts().values()) for s in sims.values())
    preview = mgr.preview_create(spec("h100", 2, "prev2"))
    assert (preview.made, preview.plan.count, preview.plan.planned) == (2, 0, 0) and preview.error() is None
    # only the fleet's own providers were listed: no offers asked for, since nothing is to be placed
    assert sum(sum(s.requests.counts().values()) for s in sims.values()) - asked <= len(config.enabled)
    mgr.destroy("prev2")


def test_the_preview_refuses_a_name_as_the_create_does(sims, config, make_manager) -> None:
    mgr = make_manager()
    mgr.create(spec("h100", 2, "taken"))
    for wanted in (spec("h100", 2, "taken"), spec("h100", 3, "taken")):  # active: refused whatever the size
        with pytest.raises(StateError) as shown:
            mgr.preview_create(wanted)
        with pytest.raises(StateError) as done:
            mgr.create(wanted)
        assert str(shown.value) == str(done.value) and "already exists (state active)" in str(done.value)
    f = mgr.store.get_fleet("taken")
    with mgr.store.write() as db:
        db.execute("UPDATE fleet SET state='partial', owner_pid=NULL WHERE id=?", (f.id,))
    with pytest.raises(StateError) as shown:
        mgr.preview_create(spec("h100", 3, "taken"))
    with pytest.raises(StateError) as done:
        mgr.create(spec("h100", 3, "taken"))
    assert str(shown.value) == str(done.value) and "needs the same --gpu and --count" in str(done.value)
    assert mgr.store.get_fleet("taken").state is FleetState.PARTIAL
    assert mgr.create(spec("h100", 2, "taken")).resumed  # the preview left no lock behind
    mgr.destroy("taken")
    fresh = mgr.preview_create(spec("h100", 2, "taken"))  # a destroyed fleet's name is free again
    assert fresh.resuming is None and fresh.plan.count == 2


def test_a_taken_name_is_refused_before_any_provider_is_asked(sims, config, make_manager) -> None:
    mgr = make_manager()
    mgr.create(spec("h100", 1, "busy"))
    asked = sum(sum(s.requests.counts().values()) for s in sims.values())
    for attempt in (mgr.create, mgr.preview_create):
        with pytest.raises(StateError, match="already exists"):
            attempt(spec("h100", 1, "busy"))
    assert sum(sum(s.requests.counts().values()) for s in sims.values()) == asked  # no plan was made first
    mgr.destroy("busy")


def test_with_every_provider_down_the_preview_fails_as_the_create_does(make_manager) -> None:
    """Not a capacity refusal (exit 7): the providers' own error (exit 12), the same for the plan and the create."""
    mgr = make_manager({"VMOPS_CRUSOE_URL": dead_url(), "VMOPS_LAMBDA_URL": dead_url(),
                        "VMOPS_NEBIUS_ENDPOINT": dead_url("grpc"), "VMOPS_BREAKER_SECONDS": "0"})
    err = mgr.preview_create(spec("h100", 2, "down")).error()
    with pytest.raises(ProviderUnavailable) as done:
        mgr.create(spec("h100", 2, "down"))
    assert isinstance(err, ProviderUnavailable) and err.exit_code == done.value.exit_code == 12
    assert err.message == done.value.message == "no provider could be asked for h100:1 capacity; nothing was created"


@both_dialects
def test_the_preview_of_a_resume_below_its_minimum_says_so(sims, config, make_manager) -> None:
    """At Crusoe, whose capacity figures are exact, the plan itself shows the minimum is out of reach."""
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    mgr.create(spec("h100", 40, "short", min_count=1))
    made = len([m for m in mgr.store.members(mgr.store.get_fleet("short").id) if m.status is MemberStatus.RUNNING])
    preview = mgr.preview_create(spec("h100", 40, "short", min_count=40))
    assert preview.terms == ["min 1 -> 40", "as recorded: policy spread, reserved never"]
    err = preview.error()
    assert isinstance(err, InsufficientCapacity) and 1 <= preview.made == made < 40 and preview.min_count == 40
    assert f"resuming fleet 'short' would reach only {preview.reachable} of its minimum 40" in str(err)
    with pytest.raises(FleetCreateFailed, match="as it was"):  # and the create indeed gives up
        mgr.create(spec("h100", 40, "short", min_count=40))
    mgr.destroy("short")


def _vm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmops.cli.main", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_cli_dry_run_of_an_unfinished_fleet_shows_the_resume(sims, vm_env) -> None:
    from vmops.config import load_config
    from vmops.state import store_for

    made = _vm(vm_env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "cli3", "--json")
    assert made.returncode == 0, made.stderr
    refused = _vm(vm_env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "cli3", "--dry-run")
    real = _vm(vm_env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "cli3")
    assert refused.returncode == real.returncode == 13 and refused.stderr == real.stderr
    assert refused.stdout == ""  # no plan shown for a create that would be refused
    with store_for(load_config({**os.environ, **vm_env})) as store:
        f = store.get_fleet("cli3")
        with store.write() as db:
            db.execute("UPDATE fleet SET state='partial', count=3, owner_pid=NULL WHERE id=?", (f.id,))
    before = sum(s.requests.mutating_count() for s in sims.values())
    r = _vm(vm_env, "fleet", "create", "--gpu", "h100", "--count", "3", "--name", "cli3", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Resume of fleet cli3 (was partial): keeps 2 of its 3 VM(s); creates 1 more\n"
                               "Terms: as recorded: min 2, policy spread, reserved never\nPlan: 1 x h100:1")
    r = _vm(vm_env, "fleet", "create", "--gpu", "h100", "--count", "3", "--name", "cli3", "--dry-run", "--json")
    out = json.loads(r.stdout)
    assert out["resume"]["made"] == 2 and out["resume"]["create"] == 1 and out["planned"] == 1
    assert sum(s.requests.mutating_count() for s in sims.values()) == before
    assert _vm(vm_env, "fleet", "destroy", "cli3", "-y").returncode == 0


def test_where_a_create_can_land_is_in_its_plan_failover_included(sims, vm_env) -> None:
    """Lambda says only whether a region has capacity, not how much: a plan of 2 VMs in one Lambda region can
    find room for 1, and the create then moves on to its other options. The dry run lists those options (after
    the chosen ones), so every VM the create makes lands at an option the dry run showed."""
    from tests.cli.helpers import vm

    args = ["fleet", "create", "-g", "h100:8", "-c", "5", "-n", "edge", "--min", "2"]
    dry = vm([*args, "--dry-run", "--json"], vm_env)
    assert dry.code == 0, dry.err
    plan = dry.json()
    shown = {(r["provider"], r["region"]) for r in plan["placements"]}
    fallbacks = {(o["provider"], o["region"] or "-") for o in plan["failover_options"]} - shown
    assert fallbacks, plan  # the seeds leave more usable options than the plan chooses
    text = vm([*args, "--dry-run"], vm_env)
    assert "If a chosen option refuses, its VMs go to the others above, then to these:" in text.out, text.out
    made = vm([*args, "--json"], vm_env)
    assert made.code == 0, made.err
    landed = {(m["provider"], m["region"] or "-") for m in made.json()["members"] if m["status"] == "running"}
    assert landed <= shown | fallbacks, (landed, shown, fallbacks)
    assert vm(["fleet", "destroy", "edge", "-y", "-q"], vm_env).code == 0
