"""Malformed provider answers (issue 7): every adapter, for list, get and create, against every variant of the
simulators' `malformed` fault (non-JSON, truncated, wrong types, missing fields, unknown enum values, empty).

An answer vmops cannot read must end in a typed error (``MalformedAnswer``, a ``ProviderUnavailable``, exit 12,
with a hint) or, for a value it does not know, in the ``unknown`` state - never a TypeError/KeyError, never a
silently empty or half-read result. A create whose answer is unreadable was still committed at the provider:
the adapter must find it by name (no duplicate) or, if it reports an error, leave nothing behind (no leak).
And `vm list` with one provider answering garbage exits non-zero with a clear line, listing the other two.
"""

from __future__ import annotations

import uuid

import pytest

from tests.cli.helpers import vm
from tests.reliability.summary import record
from vmops.errors import MalformedAnswer, ProviderUnavailable, VmopsError
from vmops.model import CreateRequest, Instance, State
from vmops.providers import get_provider
from vmops.providers.base import Timing
from vmops.sim.common import MALFORMED_VARIANTS, Fault

SCENARIO = "malformed provider responses"
PROVIDERS = ("crusoe", "lambda", "nebius")
ENDPOINT = {
    ("crusoe", "list"): "list_instances", ("crusoe", "get"): "get_instance", ("crusoe", "create"): "create_instance",
    ("lambda", "list"): "list_instances", ("lambda", "get"): "get_instance", ("lambda", "create"): "launch",
    ("nebius", "list"): "InstanceService/List", ("nebius", "get"): "InstanceService/Get",
    ("nebius", "create"): "InstanceService/Create",
    ("crusoe", "reservations"): "list_reservations", ("lambda", "reservations"): "list_reservations",
    ("nebius", "reservations"): "ReservationService/List",
    ("crusoe", "offers"): "get_capacity", ("lambda", "offers"): "list_instance_types",
    ("nebius", "offers"): "ReservationService/List",
}
NATIVE = {"crusoe": "h100.1x", "lambda": "gpu_1x_h100", "nebius": "gpu-h100-sxm/1gpu-16vcpu-200gb"}
FAST = Timing(poll_interval=0.02, op_timeout=20, retry_attempts=2, retry_base_delay=0.01, retry_max_delay=0.05,
              request_timeout=5)


def expected(provider: str, op: str, variant: str) -> str:
    """What a read must end in: "error" (MalformedAnswer), "unknown" (every state unknown) or "empty"."""
    if variant == "unknown_enum":
        return "unknown"
    if provider == "nebius" and op == "list" and variant == "empty":
        return "empty"  # an empty protobuf message IS an empty list: indistinguishable on the wire
    return "error"


def well_formed(inst: Instance) -> str | None:
    """A problem with a normalized instance (a half-read answer), or None."""
    if not isinstance(inst.id, str) or not inst.id:
        return f"instance without an id: {inst!r}"
    if not isinstance(inst.state, State) or not isinstance(inst.name, str) or not isinstance(inst.native_state, str):
        return f"badly typed instance: {inst!r}"
    for f in ("region", "public_ip", "private_ip", "reservation_id"):
        v = getattr(inst, f)
        if v is not None and not isinstance(v, str):
            return f"{f} is {type(v).__name__}: {inst!r}"
    return None


@pytest.fixture
def adapters(config, sims):
    made = {p: get_provider(p, config, FAST) for p in PROVIDERS}
    yield made
    for a in made.values():
        a.close()


def _fault(sim, provider: str, op: str, variant: str, times: int | None = None) -> None:
    sim.faults.add(Fault(ENDPOINT[(provider, op)], "malformed", variant=variant, times=times))


def _read_outcome(adapter, op: str, iid: str) -> tuple[str, object]:
    try:
        got = adapter.list_instances() if op == "list" else [adapter.get_instance(iid)]
    except MalformedAnswer as e:
        return "error", e
    except VmopsError as e:
        return f"other typed error {type(e).__name__}", e
    except Exception as e:  # noqa: BLE001 - a crash is what this test looks for
        return f"crash {type(e).__name__}", e
    if not got:
        return "empty", got
    problems = [p for p in (well_formed(i) for i in got) if p]
    if problems:
        return f"half-read: {problems[0]}", got
    if all(i.state is State.UNKNOWN for i in got):
        return "unknown", got
    return "parsed", got


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reads_against_every_variant(provider, adapters, sims):
    sim, adapter = sims[provider], adapters[provider]
    iid = adapter.list_instances()[0].id
    trials = passed = 0
    failures = []
    for op in ("list", "get"):
        for variant in MALFORMED_VARIANTS:
            sim.faults.clear()
            _fault(sim, provider, op, variant)
            outcome, detail = _read_outcome(adapter, op, iid)
            want = expected(provider, op, variant)
            trials += 1
            ok = outcome == want
            if ok and outcome == "error":
                err = detail
                assert isinstance(err, ProviderUnavailable) and err.exit_code == 12
                ok = bool(err.hint) and provider in str(err) and "\n" not in str(err)
            passed += ok
            if not ok:
                failures.append(f"{op}/{variant}: {outcome} ({detail!r:.300}), expected {want}")
    sim.faults.clear()
    record(SCENARIO, trials=trials, passed=passed, detail=failures[0] if failures else f"{provider} list/get")
    assert not failures, failures


def _catalogue_outcome(adapter, op: str) -> tuple[str, object]:
    try:
        got = adapter.reservations() if op == "reservations" else adapter.offers()
    except MalformedAnswer as e:
        return "error", e
    except VmopsError as e:
        return f"other typed error {type(e).__name__}", e
    except Exception as e:  # noqa: BLE001
        return f"crash {type(e).__name__}", e
    for x in got:
        if not isinstance(getattr(x, "provider", None), str) or (op == "reservations" and not x.id):
            return f"half-read: {x!r}", got
        if op == "offers" and x.price_per_hour is not None and not isinstance(x.price_per_hour, float):
            return f"half-read price: {x!r}", got
    return "parsed", got


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reservations_and_offers_against_every_variant(provider, adapters, sims):
    """The other reads the planner depends on: an unreadable capacity answer is an error, not "no capacity"."""
    sim, adapter = sims[provider], adapters[provider]
    trials = passed = 0
    failures = []
    for op in ("reservations", "offers"):
        for variant in MALFORMED_VARIANTS:
            sim.faults.clear()
            _fault(sim, provider, op, variant)
            outcome, detail = _catalogue_outcome(adapter, op)
            lenient = variant == "unknown_enum" or (provider == "nebius" and variant == "empty")
            want = "parsed" if lenient else "error"
            trials += 1
            ok = outcome == want
            passed += ok
            if not ok:
                failures.append(f"{op}/{variant}: {outcome} ({detail!r:.300}), expected {want}")
    sim.faults.clear()
    record(SCENARIO, trials=trials, passed=passed,
           detail=failures[0] if failures else f"{provider} reservations/offers")
    assert not failures, failures


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_with_an_unreadable_answer_neither_duplicates_nor_leaks(provider, adapters, sims):
    sim, adapter = sims[provider], adapters[provider]
    trials = passed = leaked = duplicates = 0
    failures = []
    for variant in MALFORMED_VARIANTS:
        name = f"malformed-{variant.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
        sim.faults.clear()
        _fault(sim, provider, "create", variant, times=1)  # only the create's own answer is spoiled
        outcome = "ok"
        try:
            inst = adapter.create(CreateRequest(name=name, native_type=NATIVE[provider]), wait=True)
            if inst.state is not State.RUNNING or inst.name != name:
                outcome = f"returned {inst.state.value} {inst.name!r}"
        except VmopsError as e:
            outcome = f"error {type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001
            outcome = f"crash {type(e).__name__}: {e}"
        sim.faults.clear()
        there = adapter.find_by_name(name)
        trials += 1
        dup = max(0, len(there) - 1)
        leak = len(there) if outcome != "ok" else 0
        duplicates += dup
        leaked += leak
        ok = outcome == "ok" and len(there) == 1
        passed += ok
        if not ok:
            failures.append(f"{variant}: {outcome}; {len(there)} VM(s) named {name}")
        for i in there:
            adapter.destroy(i.id, wait=True)
    record(SCENARIO, trials=trials, passed=passed, leaked=leaked, duplicates=duplicates,
           detail=failures[0] if failures else f"{provider} create")
    assert not failures, failures
    assert leaked == 0 and duplicates == 0


@pytest.mark.parametrize("provider,variant", [("crusoe", "non_json"), ("lambda", "wrong_types"),
                                              ("nebius", "truncated"), ("crusoe", "missing_fields")])
def test_vm_list_reports_the_broken_provider_and_lists_the_others(provider, variant, vm_env, sims):
    _fault(sims[provider], provider, "list", variant)
    r = vm(["list", "--json"], vm_env, timeout=120)
    rows = r.json()
    ok = (r.code == 14 and "Traceback" not in r.err and provider in r.err
          and any(s in r.err for s in ("malformed answer", "not valid JSON", "not a valid protobuf")))
    others = {row["provider"] for row in rows}
    record(SCENARIO, trials=1, passed=ok and others == set(PROVIDERS) - {provider},
           detail=f"vm list with {provider} {variant}: exit {r.code}")
    assert r.code == 14, (r.code, r.err)  # partial failure: the other providers were listed
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    line = next(ln for ln in r.err.splitlines() if ln.startswith(f"warning: {provider}"))
    assert any(s in line for s in ("malformed answer", "not valid JSON", "not a valid protobuf")), line
    assert "report it if it persists" in line  # the hint
    assert others == set(PROVIDERS) - {provider}, rows


def test_vm_get_with_an_unknown_state_shows_unknown(vm_env, sims):
    """An enum value vmops does not know is not an error: the instance shows as `unknown`."""
    from vmops.sim.common import UNKNOWN_ENUM_VALUE

    listed = vm(["list", "--provider", "lambda", "--json"], vm_env).json()
    _fault(sims["lambda"], "lambda", "get", "unknown_enum")
    r = vm(["get", listed[0]["id"], "--provider", "lambda", "--json"], vm_env)
    record(SCENARIO, trials=1, passed=r.code == 0 and r.json()["state"] == "unknown", detail="vm get unknown enum")
    assert r.code == 0, r.err
    assert r.json()["state"] == "unknown" and r.json()["native_state"] == UNKNOWN_ENUM_VALUE
