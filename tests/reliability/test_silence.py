"""A provider that accepts calls and never answers costs one deadline per command, not a timeout per call,
retry and member (vmops.providers.silence). Through the real `vm` program against the simulators, and the
latch's own rules with a stepped clock. Counted in requests the hung simulator received, not in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmops.errors import Silent, VmopsError
from vmops.providers.silence import SILENT_FOR, Silence
from vmops.sim.common import Fault
from vmops.state import Store

from tests.fleet.conftest import at_providers
from tests.reliability.rig import vm


def test_fleet_destroy_with_a_hung_provider_asks_it_once_and_finishes_the_others(sims, vm_env, config) -> None:
    """Unasked (-y), each provider's part of the destroy runs on its own: the others' members are destroyed
    while the hung provider's list is still unanswered, not after its deadline (the event log's order)."""
    env = {**vm_env, "VMOPS_DEADLINE": "3", "VMOPS_BREAKER_SECONDS": "0"}
    made = vm(env, "fleet", "create", "--gpu", "h100", "--count", "6", "--name", "hung6", "--policy", "spread",
              "--json")
    assert made.code == 0, made.err
    at = {m["provider"] for m in made.json()["members"]}
    assert at == {"crusoe", "lambda", "nebius"}
    sims["nebius"].faults.add(Fault("*", "hang"))
    before = len(sims["nebius"].requests.records())
    r = vm(env, "fleet", "destroy", "hung6", "-y")
    asked = len(sims["nebius"].requests.records()) - before
    assert r.code == 14, r.err
    assert "not asked: it left calls unanswered" in r.out + r.err, r.err
    # one list went unanswered for the whole deadline; nothing else was sent to it (it used to be dozens)
    assert asked == 1, [x.endpoint for x in sims["nebius"].requests.records()[before:]]
    sims["nebius"].faults.clear()
    assert {v.provider for v in at_providers(config, "hung6")} == {"nebius"}  # the others went meanwhile
    store = Store(Path(config.state_path))
    try:
        fleet = store.find_fleet("hung6")
        assert fleet is not None
        provider_of = {m.id: m.provider for m in store.members(fleet.id)}
        events = [e for e in store.events(fleet.id) if e.member_id is not None]
    finally:
        store.close()
    gone = [i for i, e in enumerate(events) if e.to_state == "destroyed"]
    nebius_touched = [i for i, e in enumerate(events) if provider_of[e.member_id] == "nebius" and i > gone[0]]
    assert len(gone) == 4 and nebius_touched and max(gone) < min(nebius_touched), \
        [(provider_of[e.member_id], e.to_state) for e in events]
    again = vm(env, "fleet", "destroy", "hung6", "-y")
    assert again.code == 0, again.err
    assert at_providers(config, "hung6") == []


def test_fleet_destroy_with_a_hung_terminate_says_it_may_have_taken_effect(sims, vm_env, config) -> None:
    """Lambda's terminate (one call for the fleet's three VMs) is sent and never answered: the members stay
    recorded with that call's outcome ("may have taken effect"), not the later "not asked" of the retry the
    silent provider then refused; nothing else is sent to it; the next destroy finishes the job."""
    env = {**vm_env, "VMOPS_DEADLINE": "2", "VMOPS_BREAKER_SECONDS": "0", "VMOPS_PROVIDERS": "lambda"}
    made = vm(env, "fleet", "create", "--gpu", "h100", "--count", "3", "--name", "hungt", "--json")
    assert made.code == 0, made.err
    lam = sims["lambda"]
    lam.faults.add(Fault("terminate", "hang"))
    lam.requests.reset()
    r = vm(env, "fleet", "destroy", "hungt", "-y", "--json")
    assert r.code == 14, r.err
    assert lam.requests.count("terminate") == 1, [x.endpoint for x in lam.requests.records()]
    reasons = {u["why"] for u in r.json()["undestroyed"]} if r.out.strip() else set()
    store = Store(Path(config.state_path))
    try:
        fleet = store.find_fleet("hungt")
        assert fleet is not None
        errors = {m.last_error for m in store.members(fleet.id) if m.status.may_exist}
    finally:
        store.close()
    assert len(errors) == 1 and "may have taken effect" in errors.pop(), r.err
    assert not any("not asked" in w for w in reasons), reasons
    lam.faults.clear()
    again = vm(env, "fleet", "destroy", "hungt", "-y")
    assert again.code == 0, again.err
    assert at_providers(config, "hungt") == []


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_latch_trips_at_the_deadline_clears_on_an_answer_and_expires() -> None:
    clock = _Clock()
    s = Silence("nebius", 10.0, clock=clock)
    s.unanswered(6.0)
    s.check()  # under the deadline: still asked (a single slow answer changes nothing)
    s.unanswered(4.0)
    with pytest.raises(Silent):
        s.check()
    clock.now += SILENT_FOR
    s.check()  # expired: asked again
    s.unanswered(10.0)
    with pytest.raises(Silent):
        s.check()
    s.answered()
    s.check()


def test_around_counts_only_calls_that_got_no_answer() -> None:
    clock = _Clock()
    s = Silence("crusoe", 5.0, clock=clock)

    def slow_timeout() -> None:
        clock.now += 5.0
        raise TimeoutError

    with pytest.raises(TimeoutError):
        s.around(slow_timeout, lambda e: isinstance(e, TimeoutError))
    with pytest.raises(Silent):
        s.around(lambda: None, lambda e: True)
    clock.now += SILENT_FOR
    assert s.around(lambda: 42, lambda e: True) == 42  # asked again after the latch; the answer clears it
    with pytest.raises(ConnectionRefusedError):  # a refused connection says nothing either way
        s.around(lambda: (_ for _ in ()).throw(ConnectionRefusedError()), lambda e: None)
    s.check()


def test_fleet_plan_skips_a_hung_provider_and_the_next_plan_does_not_ask_it_again(sims, vm_env) -> None:
    """The plan asks for offers through the session's fan-out: the deadline bounds a hung provider, and the
    circuit breaker keeps the next command from asking it again (a script's next `vm fleet create`)."""
    env = {**vm_env, "VMOPS_DEADLINE": "1", "VMOPS_BREAKER_SECONDS": "60"}
    sims["lambda"].faults.add(Fault("*", "hang"))
    first = vm(env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "plan2", "--dry-run", "--json")
    assert first.code == 0, first.err
    asked = len(sims["lambda"].requests.records())
    assert asked >= 1
    skipped = {s["provider"]: s["reason"] for s in first.json()["skipped"]}
    assert "lambda" in skipped and skipped["lambda"].startswith("could not be read: no answer within 1 s"), skipped
    second = vm(env, "fleet", "create", "--gpu", "h100", "--count", "2", "--name", "plan2", "--dry-run", "--json")
    assert second.code == 0, second.err
    assert len(sims["lambda"].requests.records()) == asked  # the breaker: not asked again
    assert "skipped" in {s["provider"]: s["reason"] for s in second.json()["skipped"]}["lambda"]
    sims["lambda"].faults.clear()


def test_a_hung_create_is_looked_up_once_then_left_for_reconcile(sims, config, monkeypatch) -> None:
    """A launch accepted and never answered latches the provider for the command: the create's lookup by name
    is refused at once (nothing is sent) and is not tried again with pauses (three tries with back-off used to
    add ~3.5 s to the fleet). The member stays requested, its outcome unknown, for status/reconcile."""
    from tests.conftest import config_env
    from vmops.config import load_config
    from vmops.fleet.manager import FleetManager, FleetSpec, Limits
    from vmops.model import GpuShape
    from vmops.providers.base import Timing
    from vmops.providers.lambdalabs import LambdaProvider
    from vmops.session import Session

    cfg = load_config({**config_env(config), "VMOPS_PROVIDERS": "lambda"})
    looked: list[str] = []
    real = LambdaProvider.find_by_name

    def counting(self, name):  # type: ignore[no-untyped-def]
        looked.append(name)
        return real(self, name)

    monkeypatch.setattr(LambdaProvider, "find_by_name", counting)
    sims["lambda"].faults.add(Fault("launch", "hang"))
    timing = Timing(poll_interval=cfg.poll_interval, op_timeout=cfg.op_timeout, request_timeout=1.0, deadline=1.0)
    progress: list = []
    with FleetManager(Session(cfg, timing=timing), limits=Limits(retry_delay=0.5), progress=progress.append) as mgr:
        with pytest.raises(VmopsError) as raised:
            mgr.create(FleetSpec(GpuShape("h100", 1), 1, name="hungc"))
        members = mgr.store.members(mgr.store.get_fleet("hungc").id)
        trip = mgr.session.breaker.open_trip("lambda", cfg.settings("lambda").url)
    # rolled back, but the VM that may exist stays recorded (exit 14), not forgotten
    assert raised.value.exit_code == 14 and "stay recorded" in str(raised.value), raised.value
    # the adapter's own look after the lost answer, then the fleet's: each refused at once, neither repeated
    assert looked == ["vmops-hungc-001"] * 2, looked
    first, *others = sorted(members, key=lambda m: m.seq)
    assert (first.status.value, first.last_error) == (
        "requested", "create outcome unknown and the provider could not be listed")
    assert all(m.status.value == "failed" and "not asked" in (m.last_error or "") for m in others), others
    assert sims["lambda"].requests.count("launch") == 1
    # the progress counts it as unknown (it may exist and bill), never as failed; the attempt says why
    final = {p.provider: p for p in progress[-1]}["lambda"]
    assert (final.unknown, final.failed, final.pending) == (1, len(others), 0), final
    assert final.render().endswith(f"failed {len(others)}, unknown 1"), final.render()
    unknown = [a for a in getattr(raised.value, "attempts", []) if a.member == first.name]
    assert [a.outcome for a in unknown] == ["unknown"] and "could not be looked up, so it may exist" in unknown[0].reason
    # the breaker remembers what stays true for the next command, not this command's "not asked"
    assert trip is not None and "not asked" not in trip.reason and "already in this command" not in trip.reason, trip
