"""Poll wisely: one VM's create-to-running costs at most 10 requests at the reference timings.

The simulators run at ``TEST_SCALE`` (create 2.5-3 s -> 0.125-0.15 s) and the client's poll settings are
scaled the same way (a 1 s interval -> 0.05 s), so the number of requests is what a user gets at time
scale 1; each simulator's own request counter is the measure. Speed figures live in bench/."""

from __future__ import annotations

import pytest

from vmops.config import load_config
from vmops.model import CreateRequest, State
from vmops.providers import get_provider
from vmops.providers.base import Timing

from tests.conftest import TEST_SCALE, both_dialects

pytestmark = both_dialects

#: (provider, dialect) -> a 1 x H100 type and a region with on-demand capacity in that dialect's simulator
WHERE: dict[tuple[str, str], tuple[str, str | None]] = {
    ("crusoe", "reference"): ("h100.1x", "us-east1"), ("crusoe", "cloud"): ("h100-80gb-sxm.1x", "us-east1-a"),
    ("lambda", "reference"): ("gpu_1x_h100", "us-west-1"), ("lambda", "cloud"): ("gpu_1x_h100_sxm5", "us-west-1"),
    ("nebius", "reference"): ("gpu-h100-sxm/1gpu-16vcpu-200gb", None),
    ("nebius", "cloud"): ("gpu-h100-sxm/1gpu-16vcpu-200gb", None),
}
#: mutating calls one create sends: a Nebius cloud VM is a boot disk, then the instance (cloud-apis.md §3)
MUTATIONS = {("nebius", "cloud"): 2}


def warmed(p):
    """The adapter after its one-time reads (types, project, subnet, images): what every later VM does not pay."""
    p.resolved()
    p.offers()
    return p


@pytest.mark.parametrize("provider", ["crusoe", "lambda", "nebius"])
def test_one_vm_create_to_running_costs_at_most_10_requests(sims, vm_env, dialect, provider) -> None:
    scaled = Timing(poll_interval=1.0 * TEST_SCALE, poll_min=0.05 * TEST_SCALE, op_timeout=30)
    sim = sims[provider]
    native_type, region = WHERE[provider, dialect]
    with warmed(get_provider(provider, load_config(vm_env), scaled)) as p:
        sim.requests.reset()
        inst = p.create(CreateRequest(name=f"poll-{provider}", native_type=native_type, region=region))
    assert inst.state is State.RUNNING
    total = sum(sim.requests.counts().values())
    assert sim.requests.mutating_count() == MUTATIONS.get((provider, dialect), 1), sim.requests.counts()
    assert total <= 10, sim.requests.counts()


@pytest.mark.parametrize("provider", ["crusoe", "lambda", "nebius"])
def test_create_without_read_back_sends_only_the_create(sims, vm_env, dialect, provider) -> None:
    """``read_back=False`` (for a caller that waits on a list anyway, like a fleet): the create and no read of
    any instance once the name lookup is given (a one-time catalogue read may come along); the VM is then
    found by the wait's list."""
    sim = sims[provider]
    native_type, region = WHERE[provider, dialect]
    with get_provider(provider, load_config(vm_env)) as p:
        known = frozenset(i.id for i in p.list_instances() if i.name == f"rb-{provider}")
        sim.requests.reset()
        inst = p.create(CreateRequest(name=f"rb-{provider}", native_type=native_type, region=region,
                                      known_ids=known, read_back=False), wait=False)
        sent = dict(sim.requests.counts())
        settled = p.wait_for({inst.id: frozenset({State.RUNNING})}, timeout=30)[inst.id]
    assert inst.name == f"rb-{provider}" and inst.id
    if provider != "crusoe":  # Crusoe's create answer is the instance itself: no read-back to skip
        assert inst.state is State.CREATING
    instance_reads = {"get_instance", "list_instances", "InstanceService/Get", "InstanceService/List"}
    assert not instance_reads & set(sent) and sim.requests.mutating_count() == MUTATIONS.get((provider, dialect), 1), sent
    assert settled.state is State.RUNNING and settled.public_ip
