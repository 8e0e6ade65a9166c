"""Fail fast, through the real `vm` program against the simulators on loopback: a provider that hangs
(accepts and never answers: the ``hang`` fault) or refuses connections is reported and the others' results
are shown (exit 14); the circuit breaker in the state directory keeps the next command from asking it again,
and never makes a mutation skip a provider. Speed figures live in bench/; the time bounds here are only
generous guards against waiting through retry schedules again (the old cost was 156 s for a hung provider)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from vmops.sim.common import Fault

from tests.conftest import both_dialects
from tests.fleet.conftest import dead_url
from tests.reliability.rig import vm

#: every scenario against both dialects' simulators (the cloud dialect: the providers' real public APIs)
pytestmark = both_dialects

DEADLINE = 2.0
#: generous: the deadline plus start-up on a loaded machine, far below any retry schedule
GUARD_S = DEADLINE * 3 + 10


def _env(vm_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**vm_env, "VMOPS_DEADLINE": f"{DEADLINE:g}", **extra}


def _listed_without(r, missing: set[str]) -> bool:
    """``vm list --json`` showed the VMs of every provider but ``missing`` and reported exactly those missing.
    (The cloud dialect's Lambda and Nebius simulators start with no VMs, so a provider listed may show none.)"""
    others = {"crusoe", "lambda", "nebius"} - missing
    shown = {i["provider"] for i in r.json()}
    named = re.search(rf"{len(missing)} of 3 providers could not be listed \(([^)]*)\)", r.err)
    return ("crusoe" in shown and shown <= others  # the Crusoe simulators of both dialects start with a VM
            and named is not None and set(named.group(1).split(", ")) == missing)


def _timed(env: dict[str, str], *args: str):
    t = time.monotonic()
    r = vm(env, *args)
    return r, time.monotonic() - t


@pytest.mark.parametrize("provider", ["lambda", "nebius"])
def test_hung_provider_list_shows_the_others_and_exits_14(sims, vm_env, provider) -> None:
    sims[provider].faults.add(Fault("*", "hang"))
    r, took = _timed(_env(vm_env), "list", "--json")
    assert r.code == 14, r.err
    assert _listed_without(r, {provider}), (r.out, r.err)
    assert f"{provider} could not be listed" in r.err and "no answer" in r.err and "VMOPS_DEADLINE" in r.err
    assert f"listed: {provider}:" not in r.err, r.err  # the provider is named once, not again before its reason
    assert "Traceback" not in r.err
    assert sims[provider].requests.count("list_instances" if provider == "lambda" else "InstanceService/List") == 1
    assert took < GUARD_S, took


def test_hung_provider_cost_leaves_it_out_and_exits_14(sims, vm_env) -> None:
    sims["crusoe"].faults.add(Fault("*", "hang"))
    r, took = _timed(_env(vm_env), "cost", "--json")
    assert r.code == 14, r.err
    assert "crusoe" in r.json()["missing_providers"] and "no answer" in r.err
    assert took < GUARD_S, took


def test_refused_connection_is_reported_at_once_without_retries(sims, vm_env) -> None:
    env = _env(vm_env, VMOPS_NEBIUS_ENDPOINT=dead_url("grpc"), VMOPS_LAMBDA_URL=dead_url())
    r, took = _timed(env, "list", "--json")
    assert r.code == 14, r.err
    assert _listed_without(r, {"lambda", "nebius"}), (r.out, r.err)
    assert "cannot connect" in r.err and "nebius could not be listed" in r.err
    assert took < GUARD_S, took
    created = vm({**env, "VMOPS_PROVIDERS": "lambda"}, "create", "--provider", "lambda", "--gpu", "h100:1",
                 "--name", "nowhere")
    assert created.code == 12 and "cannot connect" in created.err, created.err
    assert created.out == "", created.out  # nothing was made: the error alone, no empty table


def test_breaker_skips_a_provider_that_just_failed_then_asks_again(sims, vm_env) -> None:
    lam = sims["lambda"]
    lam.faults.add(Fault("*", "hang"))
    env = _env(vm_env)
    first = vm(env, "list", "--json")
    assert first.code == 14 and lam.requests.count("list_instances") == 1
    assert (Path(env["VMOPS_HOME"]) / "breaker" / "lambda.json").exists()
    # the next command does not ask it at all, and says when it will and how to force it
    second = vm(env, "list", "--json")
    assert second.code == 14 and _listed_without(second, {"lambda"}), (second.out, second.err)
    assert "skipped" in second.err and "VMOPS_BREAKER_SECONDS=0" in second.err and "asks it again after" in second.err
    assert lam.requests.count("list_instances") == 1
    # forced: asked (and, now that it answers, the breaker is closed for the commands after)
    lam.faults.clear()
    forced = vm({**env, "VMOPS_BREAKER_SECONDS": "0"}, "list", "--json")
    assert forced.code == 0, forced.err
    assert lam.requests.count("list_instances") == 2
    again = vm(env, "list", "--json")
    assert again.code == 0 and lam.requests.count("list_instances") == 3


def test_breaker_never_makes_a_mutation_skip(sims, vm_env) -> None:
    lam = sims["lambda"]
    lam.faults.add(Fault("*", "hang"))
    env = _env(vm_env)
    assert vm(env, "list").code == 14  # the breaker is now open for lambda
    lam.faults.clear()
    made = vm({**env, "VMOPS_PROVIDERS": "lambda"}, "create", "--provider", "lambda", "--gpu", "h100:1",
              "--name", "despite-breaker", "--json")
    assert made.code == 0, made.err
    assert lam.requests.count("launch") == 1


LIST_OP = {"crusoe": "list_instances", "lambda": "list_instances", "nebius": "InstanceService/List"}


def _fleet_at_every_provider(env: dict[str, str], name: str) -> dict[str, list[str]]:
    """A running fleet spread over the three providers; {provider: its members' names}."""
    made = vm(env, "fleet", "create", "--gpu", "h100:1", "--count", "3", "--policy", "spread", "--name", name,
              "--json")
    assert made.code == 0, made.err
    where: dict[str, list[str]] = {}
    for m in made.json()["members"]:
        where.setdefault(m["provider"], []).append(m["name"])
    return where


def test_fleet_status_with_a_hung_provider_says_what_it_could_not_see_and_exits_14(sims, vm_env) -> None:
    env = _env(vm_env)
    where = _fleet_at_every_provider(env, "seen")
    hung = "nebius" if "nebius" in where else sorted(where)[0]
    sims[hung].faults.add(Fault("*", "hang"))
    before = sims[hung].requests.count(LIST_OP[hung])
    r = vm(env, "fleet", "status", "seen", "--json")
    assert r.code == 14, r.err
    view = r.json()
    assert set(view["unobserved"]) == {hung} and view["unobserved"][hung].startswith("no answer within")
    assert [w for w in view["warnings"] if w.startswith(f"{hung}: could not refresh (no answer within")], view
    # the members there keep their record (nothing marked gone, nothing destroyed), the others were observed
    assert {m["name"]: m["status"] for m in view["members"]} == {n: "running" for ns in where.values() for n in ns}
    assert f"could not observe {hung}; the members there are shown as last recorded" in r.err, r.err
    assert (Path(env["VMOPS_HOME"]) / "breaker" / f"{hung}.json").exists()
    # the next view does not ask the hung provider again (the breaker), says so, and marks its members' rows
    table = vm(env, "fleet", "status", "seen")
    assert table.code == 14, table.err
    rows = {line.split()[0]: line for line in table.out.splitlines() if line.startswith("vmops-seen-")}
    assert all(("running?" in rows[n] and "not observed: as last recorded" in rows[n]) == (p == hung)
               for p, ns in where.items() for n in ns), table.out
    assert "skipped" in table.err
    assert f", {len(where[hung])} as last recorded (min 3" in table.out.splitlines()[0], table.out
    listed = vm(env, "fleet", "list", "--refresh", "--json")
    assert listed.code == 14 and "could not observe" in listed.err, listed.err
    assert [set(f["unobserved"]) for f in listed.json() if f["name"] == "seen"] == [{hung}], listed.out
    assert sims[hung].requests.count(LIST_OP[hung]) == before + 1
    # once it answers (and the breaker is passed by), the view is whole again
    sims[hung].faults.clear()
    whole = vm({**env, "VMOPS_BREAKER_SECONDS": "0"}, "fleet", "status", "seen", "--json")
    assert whole.code == 0 and whole.json()["unobserved"] == {}, whole.err


def test_fleet_reconcile_with_a_provider_down_changes_nothing_there_and_opens_its_breaker(sims, vm_env) -> None:
    env = _env(vm_env)
    where = _fleet_at_every_provider(env, "downside")
    down = "lambda" if "lambda" in where else sorted(where)[0]
    var = {"crusoe": "VMOPS_CRUSOE_URL", "lambda": "VMOPS_LAMBDA_URL", "nebius": "VMOPS_NEBIUS_ENDPOINT"}[down]
    gone = {**env, var: dead_url("grpc" if down == "nebius" else "http")}
    r = vm(gone, "fleet", "reconcile", "downside", "--destroy-surplus", "-y", "--json")
    assert r.code == 14, r.err
    assert set(r.json()["unobserved"]) == {down}
    assert all(m["status"] == "running" for m in r.json()["members"]), r.out
    assert (Path(env["VMOPS_HOME"]) / "breaker" / f"{down}.json").exists()
    listed = vm(gone, "list", "--json")
    assert listed.code == 14 and "skipped" in listed.err, listed.err


def test_doctor_gives_a_hung_provider_the_command_deadline(sims, vm_env) -> None:
    sims["lambda"].faults.add(Fault("*", "hang"))
    r, took = _timed(_env(vm_env), "doctor", "--json")
    assert r.code == 12, r.err  # an outage, not a credential problem (it was 3 for any failed check)
    checks = {c["provider"]: c for c in r.json()["providers"]}
    assert checks["lambda"]["error_kind"] == "provider_unavailable", checks["lambda"]
    assert checks["lambda"]["ok"] is False and f"no answer within {DEADLINE:g} s" in checks["lambda"]["result"]
    assert checks["crusoe"]["ok"] is True and checks["nebius"]["ok"] is True
    assert took < GUARD_S, took


def test_state_check_with_a_provider_down_does_not_claim_full_agreement(sims, vm_env) -> None:
    env = _env(vm_env)
    assert vm(env, "fleet", "create", "--gpu", "h100:1", "--count", "1", "--name", "agreed", "-q").code == 0
    whole = vm(env, "state", "check")
    assert whole.code == 0 and "(the record and the providers agree: 1 fleet(s))" in whole.out, whole.out
    r = vm({**env, "VMOPS_LAMBDA_URL": dead_url()}, "state", "check")
    assert r.code == 14, r.err
    assert "(the record and the providers that answered (not lambda) agree: 1 fleet(s))" in r.out, r.out
    assert "lambda could not be asked" in r.err


def test_a_name_not_found_where_asked_says_which_provider_could_not_be_asked(sims, vm_env) -> None:
    env = {**_env(vm_env), "VMOPS_CRUSOE_URL": dead_url()}
    r = vm(env, "get", "no-such-vm")
    assert r.code == 12, r.err
    assert "no VM 'no-such-vm' at lambda or nebius; crusoe could not be read (cannot connect" in r.err, r.err
    none = vm({**env, "VMOPS_PROVIDERS": "crusoe"}, "destroy", "no-such-vm", "-y")
    assert none.code == 12 and "cannot look up VM 'no-such-vm'; crusoe could not be read" in none.err, none.err
