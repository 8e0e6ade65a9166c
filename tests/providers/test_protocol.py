"""The shared protocol (``vmops.providers.protocol``) and each ``Resend`` variant, driven with real wire calls
against the reference simulators on loopback: the order of sends, looks and pauses is recorded, and the
simulators count what reached them."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from vmops.config import ProviderSettings, Secret
from vmops.errors import FailedPrecondition, NotFound, OutcomeUnknown, ProviderUnavailable, Unreachable, VmopsError
from vmops.model import CreateRequest, Instance, State
from vmops.providers import protocol
from vmops.providers.base import Timing
from vmops.providers.lambdalabs import LambdaProvider
from vmops.providers.nebius import NebiusProvider
from vmops.sim.common import Fault
from vmops.sim.lambdalabs import LambdaSim
from vmops.sim.nebius import NebiusSim
from tests.providers.test_lambda_adapter import unused_port

TIMING = Timing(poll_interval=0.02, op_timeout=10, retry_attempts=3, retry_base_delay=0.01, retry_max_delay=0.05,
                request_timeout=2.0)
LAUNCH = "/instance-operations/launch"


class Trace:
    """What the protocol did, in order: ``send``, ``look`` and ``pause`` events."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.events.append("pause")

    def wrap(self, event: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            self.events.append(event)
            return fn()
        return call


def _lambda(url: str) -> LambdaProvider:
    return LambdaProvider(ProviderSettings(name="lambda", url=url, api_key=Secret("lambda-test-key-001"),
                                           ssh_key="ops"), TIMING)


@pytest.fixture
def lp(lambda_sim: LambdaSim) -> Iterator[LambdaProvider]:
    p = _lambda(lambda_sim.address)
    yield p
    p.close()


class Launch:
    """A Lambda launch of one VM called ``name``, as send and find_new functions on the real wire."""

    def __init__(self, p: LambdaProvider, name: str, trace: Trace) -> None:
        region, _ = p.placement(CreateRequest(name=name, native_type="gpu_1x_h100"))
        body = {"region_name": region, "instance_type_name": "gpu_1x_h100", "ssh_key_names": ["ops"], "name": name,
                "quantity": 1}
        before = {i.id for i in p.find_by_name(name)}
        self.send = trace.wrap("send", lambda: p._launched_ids(p._post(LAUNCH, body)))
        self.find_new = trace.wrap("look", lambda: [i for i in p.find_by_name(name) if i.id not in before])


def test_the_rule_looks_then_pauses_then_resends(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    trace = Trace()
    launch = Launch(lp, "p-rule", trace)
    lambda_sim.faults.add(Fault("launch", "error", status=503, nth=(1,)))
    done = protocol.create_resolving(launch.send, launch.find_new, TIMING, sleep=trace.sleep)
    assert done.adopted is None and done.answer and len(done.answer) == 1
    assert trace.events == ["send", "look", "pause", "send"]
    assert lambda_sim.requests.count("launch") == 2
    assert [i.id for i in lp.find_by_name("p-rule")] == done.answer


def test_pause_first_pauses_before_the_look(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    trace = Trace()
    launch = Launch(lp, "p-first", trace)
    lambda_sim.faults.add(Fault("launch", "error", status=503, nth=(1,)))
    done = protocol.create_resolving(launch.send, launch.find_new, TIMING, sleep=trace.sleep,
                                     resend=protocol.Resend(pause_first=True))
    assert done.answer and trace.events == ["send", "pause", "look", "send"]
    assert lambda_sim.requests.count("launch") == 2


def test_a_lost_answer_is_adopted_and_never_resent(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    trace = Trace()
    launch = Launch(lp, "p-lost", trace)
    lambda_sim.faults.add(Fault("launch", "lose_response", nth=(1,)))
    done = protocol.create_resolving(launch.send, launch.find_new, TIMING, sleep=trace.sleep)
    assert done.adopted is not None and done.adopted.name == "p-lost"
    assert trace.events == ["send", "look"]
    assert lambda_sim.requests.count("launch") == 1


def test_look_on_limits_the_looks_to_answers_that_may_have_been_lost(lp: LambdaProvider,
                                                                    lambda_sim: LambdaSim) -> None:
    only_lost = protocol.Resend(look_on=(OutcomeUnknown,))
    trace = Trace()
    launch = Launch(lp, "p-503", trace)
    lambda_sim.faults.add(Fault("launch", "error", status=503, nth=(1,)))
    assert protocol.create_resolving(launch.send, launch.find_new, TIMING, sleep=trace.sleep, resend=only_lost).answer
    assert trace.events == ["send", "pause", "send"]  # the server answered 503: nothing to look for
    trace2 = Trace()
    launch2 = Launch(lp, "p-gone", trace2)
    lambda_sim.faults.add(Fault("launch", "lose_response", nth=(3,)))
    done = protocol.create_resolving(launch2.send, launch2.find_new, TIMING, sleep=trace2.sleep, resend=only_lost)
    assert done.adopted is not None and trace2.events == ["send", "look"]
    assert lambda_sim.requests.count("launch") == 3


def test_unreachable_ends_stops_at_a_refused_connection() -> None:
    p = _lambda(f"http://127.0.0.1:{unused_port()}")
    try:
        trace = Trace()
        send = trace.wrap("send", lambda: p._post(LAUNCH, {"name": "x"}))
        look = trace.wrap("look", lambda: [])
        with pytest.raises(Unreachable):
            protocol.create_resolving(send, look, TIMING, sleep=trace.sleep,
                                      resend=protocol.Resend(unreachable_ends=True))
        assert trace.events == ["send"]
        trace.events.clear()
        with pytest.raises(Unreachable):  # the rule: look, pause and resend, up to retry_attempts sends
            protocol.create_resolving(send, look, TIMING, sleep=trace.sleep)
        assert trace.events == ["send", "look", "pause", "send", "look", "pause", "send", "look"]
    finally:
        p.close()


def test_lookup_failed_decides_what_a_failed_lookup_raises(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    def unknown(sent: ProviderUnavailable, lookup: ProviderUnavailable) -> VmopsError:
        return OutcomeUnknown(f"may have happened ({sent.message}); lookup failed", provider="lambda")

    for hook, name in ((None, "p-raw"), (unknown, "p-unknown")):
        lambda_sim.faults.clear()
        launch = Launch(lp, name, Trace())
        lambda_sim.faults.add(Fault("launch", "lose_response", nth=(lambda_sim.requests.count("launch") + 1,)))
        lambda_sim.faults.add(Fault("list_instances", "error", status=503))
        with pytest.raises(ProviderUnavailable) as e:
            protocol.create_resolving(launch.send, launch.find_new, TIMING, sleep=lambda s: None, lookup_failed=hook)
        assert (type(e.value) is OutcomeUnknown) is (hook is not None), e.value
    lambda_sim.faults.clear()
    assert lambda_sim.requests.count("launch") == 2  # never resent while the lookup could not tell


def test_look_after_last_false_raises_the_last_failure_without_a_look(lp: LambdaProvider,
                                                                     lambda_sim: LambdaSim) -> None:
    inst = lp.create(CreateRequest(name="p-term", native_type="gpu_1x_h100"))
    reads = lambda_sim.requests.count("get_instance")
    lambda_sim.faults.add(Fault("terminate", "error", status=503))
    for resend, events in (
        (protocol.Resend(pause_first=True, look_after_last=False),
         ["send", "pause", "look", "send", "pause", "look", "send"]),
        (protocol.Resend(pause_first=True),
         ["send", "pause", "look", "send", "pause", "look", "send", "pause", "look"]),
    ):
        trace = Trace()
        send = trace.wrap("send", lambda: lp._post("/instance-operations/terminate", {"instance_ids": [inst.id]}))
        confirm = trace.wrap("look", lambda: lp.get_instance(inst.id).state is State.DELETED)
        with pytest.raises(ProviderUnavailable):
            protocol.mutate_confirming(send, confirm, TIMING, sleep=trace.sleep, resend=resend)
        assert trace.events == events
    assert lambda_sim.requests.count("terminate") == 6
    assert lambda_sim.requests.count("get_instance") - reads == 2 + 3


@pytest.fixture
def neb(nebius_sim: NebiusSim) -> Iterator[NebiusProvider]:
    p = NebiusProvider(ProviderSettings(name="nebius", url=nebius_sim.address, api_key=Secret("nebius-test-key-001"),
                                        scope="project-e1a2b3c4"), TIMING)
    yield p
    p.close()


def _stop(neb: NebiusProvider, inst: Instance, trace: Trace) -> tuple[Callable[[], Any], Callable[[], bool]]:
    from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc

    send = trace.wrap("send", lambda: neb._call(neb._instances.Stop, svc.StopInstanceRequest(id=inst.id),
                                                what="stopping", mutating=True))
    confirm = trace.wrap("look", lambda: neb.get_instance(inst.id).state in (State.STOPPING, State.STOPPED))
    return send, confirm


def test_confirm_refusals_confirms_a_refused_resend(neb: NebiusProvider, nebius_sim: NebiusSim) -> None:
    no_look = protocol.Resend(look_on=(), unreachable_ends=True)
    first = neb.create(CreateRequest(name="p-stop-1", native_type="gpu-h100-sxm/1gpu-16vcpu-200gb"))
    second = neb.create(CreateRequest(name="p-stop-2", native_type="gpu-h100-sxm/1gpu-16vcpu-200gb"))
    nebius_sim.faults.add(Fault("InstanceService/Stop", "lose_response", nth=(1, 3)))
    trace = Trace()
    send, confirm = _stop(neb, first, trace)
    assert protocol.mutate_confirming(send, confirm, TIMING, sleep=trace.sleep, resend=no_look,
                                      confirm_refusals=(FailedPrecondition, NotFound)) is None
    assert trace.events == ["send", "pause", "send", "look"]  # resent without a look; the refusal confirmed
    trace2 = Trace()
    send2, confirm2 = _stop(neb, second, trace2)
    with pytest.raises(FailedPrecondition):  # without the variant the refused resend is the answer
        protocol.mutate_confirming(send2, confirm2, TIMING, sleep=trace2.sleep, resend=no_look)
    assert trace2.events == ["send", "pause", "send"]
    trace3 = Trace()
    send3, confirm3 = _stop(neb, first, trace3)
    with pytest.raises(FailedPrecondition):  # refused at the first send: no earlier send can have done it
        protocol.mutate_confirming(send3, confirm3, TIMING, sleep=trace3.sleep, resend=no_look,
                                   confirm_refusals=(FailedPrecondition, NotFound))
    assert trace3.events == ["send"]
    assert nebius_sim.requests.count("InstanceService/Stop") == 5


def test_reading_never_retries_a_refused_connection_and_retrying_does() -> None:
    p = _lambda(f"http://127.0.0.1:{unused_port()}")
    try:
        trace = Trace()
        call = trace.wrap("send", lambda: p._client.request("POST", "/api/v1/instances", idempotent=False))
        with pytest.raises(Unreachable):
            protocol.reading(call, TIMING, sleep=trace.sleep)
        assert trace.events == ["send"]
        trace.events.clear()
        with pytest.raises(Unreachable):
            protocol.retrying(call, TIMING, sleep=trace.sleep)
        assert trace.events == ["send", "pause", "send", "pause", "send"]
    finally:
        p.close()
