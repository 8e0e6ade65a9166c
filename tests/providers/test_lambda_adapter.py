"""The Lambda adapter against the Lambda simulator on loopback (no mocks)."""

from __future__ import annotations

import json

import socket
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from vmops.config import ProviderSettings, Secret
from vmops.errors import (
    AuthError,
    InsufficientCapacity,
    InvalidArgument,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    ReservedCannotTerminate,
    Unreachable,
    Unsupported,
    VmopsError,
)
from vmops.model import CreateRequest, GpuShape, ReservationPolicy, State
from vmops.providers.base import Timing
from vmops.providers.lambdalabs import STATE, LambdaProvider, map_error
from vmops.sim.common import Fault, SimOptions
from vmops.sim.lambdalabs import LambdaSim
from tests.wire import wire_file
from tests.conftest import DIALECTS
from tests.providers.dialects import WORLDS, World, make_provider
from vmops.providers.base import Provider
from vmops.providers.lambda_cloud import LambdaCloudProvider
from vmops.providers.lambda_cloud import map_error as map_cloud_error

KEY = "lambda-test-key-001"
TIMING = Timing(poll_interval=0.02, op_timeout=10, retry_base_delay=0.01)


def make(url: str, key: str = KEY, timing: Timing = TIMING) -> LambdaProvider:
    return LambdaProvider(ProviderSettings(name="lambda", url=url, api_key=Secret(key), ssh_key="ops"), timing)


@pytest.fixture
def lp(lambda_sim: LambdaSim) -> Iterator[LambdaProvider]:
    p = make(lambda_sim.address)
    yield p
    p.close()


@pytest.fixture
def scenario_sim(request: pytest.FixtureRequest) -> Iterator[LambdaSim]:
    sim = LambdaSim(SimOptions(time_scale=0.05, scenario=request.param))
    sim.start(0)
    yield sim
    sim.stop()


def names(p: LambdaProvider) -> list[str]:
    return [i.name for i in p.list_instances()]


def req(name: str, native: str = "gpu_1x_h100", **kw: Any) -> CreateRequest:
    return CreateRequest(name=name, native_type=native, **kw)


def unused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- reads and normalization ---------------------------------------------------------------------------
def test_capabilities() -> None:
    c = LambdaProvider.capabilities
    assert (c.stop_start, c.labels, c.terminate_reserved, c.idempotency_key) == (False, False, False, False)


def test_list_normalizes_seeds(lp: LambdaProvider) -> None:
    seeds = {i.name: i for i in lp.list_instances()}
    assert list(seeds) == ["training-node-1", "dev-box", "reserved-h100-node"]
    dev = seeds["dev-box"]
    assert dev.provider == "lambda" and len(dev.id) == 32
    assert dev.state is State.RUNNING and dev.native_state == "active"
    assert dev.native_type == "gpu_1x_h100" and dev.gpu == GpuShape("h100", 1)
    assert dev.region == "us-east-1" and dev.public_ip == "198.51.100.11" and dev.private_ip == "10.0.2.11"
    assert dev.price_per_hour == 3.46 and dev.price_source == "lambda api price"
    assert dev.reserved is False and dev.reservation_id is None and dev.can_terminate is True
    rsv = seeds["reserved-h100-node"]
    assert rsv.reserved and rsv.reservation_id == "rsv-lambda-001" and not rsv.can_terminate
    assert rsv.gpu == GpuShape("h100", 8) and rsv.price_per_hour == 27.68
    assert seeds["training-node-1"].price_per_hour == 11.84
    assert lp.get_instance(dev.id) == dev


def test_every_recorded_instance_object_parses(lp: LambdaProvider) -> None:
    wire = wire_file("lambda")
    seen = 0
    for line in wire.read_text().splitlines():
        body = json.loads(line)["response"]["body"]
        data = body.get("data") if isinstance(body, dict) else None
        objs: list[Any] = []
        if isinstance(data, list) and data and "hostname" in data[0]:
            objs = data
        elif isinstance(data, dict) and "hostname" in data:
            objs = [data]
        elif isinstance(data, dict):
            for key in ("terminated_instances", "restarted_instances"):
                objs += data.get(key, [])
        for o in objs:
            inst = lp._instance(o)
            assert inst.id == o["id"] and inst.name == o["name"] and inst.gpu is not None
            assert inst.state is (State.DELETED if o["status"] == "terminated" else State.RUNNING)
            seen += 1
    assert seen >= 20


@pytest.mark.parametrize("scenario_sim", [{"instances": [
    {"name": f"s-{st}", "region": "us-west-1", "instance_type": "gpu_1x_a100", "status": st}
    for st in ("active", "booting", "unhealthy", "terminating", "terminated", "preempted", "hibernating-v2")]}],
    indirect=True)
def test_every_native_state_maps(scenario_sim: LambdaSim) -> None:
    with make(scenario_sim.address) as p:
        got = {i.native_state: i.state for i in p.list_instances()}
    assert got == {"active": State.RUNNING, "booting": State.CREATING, "unhealthy": State.ERROR,
                   "terminating": State.DELETING, "terminated": State.DELETED, "preempted": State.ERROR,
                   "hibernating-v2": State.UNKNOWN}
    assert set(STATE) == {"active", "booting", "unhealthy", "terminating", "terminated", "preempted"}


@pytest.mark.parametrize("scenario_sim", [{"instances": [
    {"name": "slow-boot", "region": "us-west-1", "instance_type": "gpu_1x_a100", "status": "booting"}]}],
    indirect=True)
def test_operation_timeout_names_instance_and_state(scenario_sim: LambdaSim) -> None:
    with make(scenario_sim.address) as p:
        [inst] = p.list_instances()
        with pytest.raises(OperationTimeout) as ei:
            p.settle(inst, "create", timeout=0.2)
    assert ei.value.instance_id == inst.id and ei.value.stuck_state == "creating"
    assert inst.id in str(ei.value) and "slow-boot" in str(ei.value)
    assert scenario_sim.requests.count("list_instances") >= 3  # one list per tick


def test_renamed_non_string_names_parse(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    dev = next(i for i in lp.list_instances() if i.name == "dev-box")
    with httpx.Client(base_url=lambda_sim.address, trust_env=False) as c:
        c.post(f"/api/v1/instances/{dev.id}", json={"name": 42}, headers={"Authorization": KEY})
        assert lp.get_instance(dev.id).name == "42"
        c.post(f"/api/v1/instances/{dev.id}", json={"name": None}, headers={"Authorization": KEY})
        assert lp.get_instance(dev.id).name == ""


def test_reservations(lp: LambdaProvider) -> None:
    rs = {r.id: r for r in lp.reservations()}
    assert list(rs) == ["rsv-lambda-001", "rsv-lambda-002"]
    r1 = rs["rsv-lambda-001"]
    assert (r1.native_type, r1.gpu, r1.region, r1.total_vms, r1.used_vms, r1.available_vms) == \
        ("gpu_8x_h100", GpuShape("h100", 8), "us-west-1", 2, 1, 1)
    assert r1.start == "2026-01-15" and r1.end == "2026-12-31"
    assert rs["rsv-lambda-002"].available_vms == 4


def test_offers(lp: LambdaProvider) -> None:
    offers = lp.offers(GpuShape("h100", 8))
    on_demand = {o.region: o for o in offers if not o.reserved}
    assert {r: o.has_capacity for r, o in on_demand.items()} == \
        {"us-west-1": True, "us-east-1": True, "eu-west-1": False}
    assert all(o.available is None and o.price_per_hour == 27.68 and o.price_source == "lambda api price"
               for o in on_demand.values())
    [rsv] = [o for o in offers if o.reserved]
    assert (rsv.reservation_id, rsv.region, rsv.available, rsv.has_capacity) == ("rsv-lambda-001", "us-west-1", 1, True)
    everything = lp.offers()
    assert len([o for o in everything if not o.reserved]) == 12 and len([o for o in everything if o.reserved]) == 2


# ---- create ----------------------------------------------------------------------------------------
def test_create_picks_first_region_with_capacity(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    made = [lp.create(req(f"a{i}", "gpu_8x_a100")) for i in range(4)]
    assert [m.region for m in made] == ["us-west-1"] * 3 + ["eu-west-1"]
    assert all(m.state is State.RUNNING and m.native_type == "gpu_8x_a100" for m in made)
    assert [m.name for m in made] == ["a0", "a1", "a2", "a3"]
    assert lambda_sim.requests.count("launch") == 4
    with pytest.raises(InsufficientCapacity):
        lp.create(req("a4", "gpu_8x_a100"))
    assert lambda_sim.requests.count("launch") == 4  # no region left: nothing sent


def test_create_in_region_and_errors(lp: LambdaProvider) -> None:
    inst = lp.create(req("east", region="us-east-1"))
    assert inst.region == "us-east-1" and inst.name == "east" and not inst.reserved
    with pytest.raises(InsufficientCapacity) as ei:
        lp.create(req("none", "gpu_8x_h100", region="eu-west-1"))
    assert "available 0" in str(ei.value)
    with pytest.raises(InvalidArgument) as ei2:
        lp.create(req("bad", region="mars-1"))
    assert "Unknown region: mars-1" in str(ei2.value)
    with pytest.raises(InvalidArgument):
        lp.create(req("bad", "gpu_8x_b200"))
    with pytest.raises(InvalidArgument):
        lp.create(req("", region="us-east-1"))
    assert names(lp).count("east") == 1


def test_reservation_policies(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    # AUTO / FORBID never land on reserved capacity, even when a matching reservation is named
    auto = lp.create(req("auto", "gpu_1x_a100", region="us-east-1", reservation_ids=("rsv-lambda-002",)))
    forbid = lp.create(req("forbid", "gpu_1x_a100", reservation_policy=ReservationPolicy.FORBID))
    assert not auto.reserved and not forbid.reserved
    assert lambda_sim.reservation_used("rsv-lambda-002") == 0
    strict = lp.create(req("strict", "gpu_1x_a100", reservation_policy=ReservationPolicy.STRICT,
                           reservation_ids=("rsv-lambda-001", "rsv-lambda-002")))
    assert strict.reserved and strict.reservation_id == "rsv-lambda-002" and strict.region == "us-east-1"
    assert not strict.can_terminate and lambda_sim.reservation_used("rsv-lambda-002") == 1
    s8 = lp.create(req("s8", "gpu_8x_h100", reservation_policy=ReservationPolicy.STRICT,
                       reservation_ids=("rsv-lambda-001",)))
    assert s8.reservation_id == "rsv-lambda-001"
    with pytest.raises(InsufficientCapacity) as ei:
        lp.create(req("s8b", "gpu_8x_h100", reservation_policy=ReservationPolicy.STRICT,
                      reservation_ids=("rsv-lambda-001", "nope")))
    assert "full" in str(ei.value) and "nope does not exist" in str(ei.value)
    with pytest.raises(InvalidArgument):
        lp.create(req("s", reservation_policy=ReservationPolicy.STRICT))


# ---- lifecycle ------------------------------------------------------------------------------------------
def test_destroy(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    inst = lp.create(req("doomed"))
    gone = lp.destroy(inst.id)
    assert gone.state is State.DELETED and gone.id == inst.id and gone.name == "doomed"
    assert "doomed" not in names(lp)
    with pytest.raises(NotFound):
        lp.destroy(inst.id)
    assert lambda_sim.requests.count("terminate") == 1
    assert lambda_sim.on_demand("us-west-1", "gpu_1x_h100") == 5


def test_destroy_without_wait(lp: LambdaProvider) -> None:
    inst = lp.create(req("quick"), wait=False)
    assert inst.state is State.RUNNING
    assert lp.destroy(inst.id, wait=False).state is State.DELETED
    assert "quick" not in names(lp)


def test_destroy_reserved_is_refused_before_any_terminate(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    rsv = next(i for i in lp.list_instances() if i.reserved)
    with pytest.raises(ReservedCannotTerminate) as ei:
        lp.destroy(rsv.id)
    assert rsv.id in str(ei.value)
    assert lambda_sim.requests.count("terminate") == 0


@pytest.mark.parametrize("batch, lost, terminates", [
    (None, 1, 3),  # the default (50 per call): one call for both; its answer lost -> each id alone (404 = gone)
    (1, 2, 2),  # one id per call: the second's answer lost -> looked up, found gone
])
def test_destroy_many_reports_each_id(lambda_sim: LambdaSim, batch: int | None, lost: int, terminates: int) -> None:
    lp = LambdaProvider(ProviderSettings(name="lambda", url=lambda_sim.address, api_key=Secret(KEY), ssh_key="ops",
                                         terminate_batch=batch), TIMING)
    a = lp.create(req("m-a"))
    b = lp.create(req("m-b"))
    rsv = next(i for i in lp.list_instances() if i.reserved)
    lambda_sim.faults.add(Fault(endpoint="terminate", kind="lose_response", nth=(lost,)))
    results = lp.destroy_many([a.id, rsv.id, b.id, "f" * 32, a.id])
    by_id = {r.id: r for r in results}
    assert [r.id for r in results] == [a.id, rsv.id, b.id, "f" * 32]
    assert by_id[a.id].ok and by_id[b.id].ok and by_id["f" * 32].ok
    assert by_id[a.id].instance is not None and by_id[a.id].instance.state is State.DELETED
    assert not by_id[rsv.id].ok and isinstance(by_id[rsv.id].error, ReservedCannotTerminate)
    live = {i.id for i in lp.list_instances()}
    assert a.id not in live and b.id not in live and rsv.id in live
    assert lambda_sim.requests.count("terminate") == terminates  # the reserved id is never sent
    lp.close()


def test_destroy_many_batches_and_recovers_from_a_batch_that_fails_midway(lambda_sim: LambdaSim) -> None:
    """A batch carries at most ``terminate_batch`` ids. One that errs midway (§2.3.4: an id gone since the
    listing -> 404, the ids before it already terminated, the ones after not) is sent again id by id."""
    lp = LambdaProvider(ProviderSettings(name="lambda", url=lambda_sim.address, api_key=Secret(KEY), ssh_key="ops",
                                         terminate_batch=3), TIMING)
    made = [lp.create(req(f"bt-{i}")) for i in range(5)]
    listed = {i.id: i for i in lp.list_instances()}
    with httpx.Client(base_url=lambda_sim.address, trust_env=False) as c:  # another client takes bt-1 meanwhile
        assert c.post("/api/v1/instance-operations/terminate", json={"instance_ids": [made[1].id]},
                      headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    lambda_sim.requests.reset()
    results = lp.destroy_many([m.id for m in made], wait=False, listed=listed)
    assert [r.ok for r in results] == [True] * 5
    assert all(r.instance is not None and r.instance.state is State.DELETED for r in results)
    assert not {m.id for m in made} & {i.id for i in lp.list_instances()}
    # [bt-0, bt-1, bt-2] fails at bt-1 (bt-0 gone, bt-2 not): 3 alone (404, 404, 200); [bt-3, bt-4]: one call
    assert lambda_sim.requests.count("terminate") == 1 + 3 + 1
    lp.close()


def test_destroy_many_batch_that_cannot_be_sent_changes_nothing(lambda_sim: LambdaSim) -> None:
    lp = make(lambda_sim.address)
    made = [lp.create(req(f"bu-{i}")) for i in range(2)]
    listed = {i.id: i for i in lp.list_instances()}
    lp.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    with make(dead) as down:
        results = down.destroy_many([m.id for m in made], wait=False, listed=listed)
    assert [r.ok for r in results] == [False, False]
    assert all(isinstance(r.error, ProviderUnavailable) and "connect" in r.error.message for r in results)
    with make(lambda_sim.address) as up:
        assert {m.id for m in made} <= {i.id for i in up.list_instances()}


def test_destroy_many_does_not_resend_alone_what_a_batch_could_not_send(lambda_sim: LambdaSim) -> None:
    """A batch that was never sent (a refused or timed-out connection: ``Unreachable``) is not tried id by id:
    at a 1 s connect timeout, 50 ids would wait 50 s to learn the same thing. Here the batch call fails that
    way while the simulator would answer the single terminates, so any resend would show in its log."""
    class Refusing(LambdaProvider):
        def _terminate_many(self, chunk: list[Any]) -> dict[str, Any]:
            raise Unreachable("cannot connect (test: the batch's connection was refused)", provider=self.name)

    lp = Refusing(ProviderSettings(name="lambda", url=lambda_sim.address, api_key=Secret(KEY), ssh_key="ops"), TIMING)
    made = [lp.create(req(f"bn-{i}")) for i in range(3)]
    lambda_sim.requests.reset()
    results = lp.destroy_many([m.id for m in made], wait=False)
    assert [r.ok for r in results] == [False] * 3 and all(isinstance(r.error, Unreachable) for r in results)
    assert lambda_sim.requests.count("terminate") == 0
    assert {m.id for m in made} <= {i.id for i in lp.list_instances()}
    lp.close()


def test_restart(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    dev = next(i for i in lp.list_instances() if i.name == "dev-box")
    assert lp.restart(dev.id).state is State.RUNNING
    rsv = next(i for i in lp.list_instances() if i.reserved)
    assert lp.restart(rsv.id).id == rsv.id
    with pytest.raises(NotFound):
        lp.restart("f" * 32)
    assert lambda_sim.requests.count("restart") == 3


def test_bad_key_is_auth_error_without_the_key(lambda_sim: LambdaSim) -> None:
    secret = "sk-very-secret-value-123"
    with make(lambda_sim.address, key=secret) as p:
        for call in (p.list_instances, p.reservations, lambda: p.create(req("x", region="us-west-1"))):
            with pytest.raises(AuthError) as ei:
                call()
            assert secret not in str(ei.value) and secret not in repr(ei.value.args)
            assert "invalid" in str(ei.value).lower()


def test_map_error_table_on_real_answers(lambda_sim: LambdaSim) -> None:
    h = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=lambda_sim.address, trust_env=False) as c:
        rsv_id = next(i["id"] for i in c.get("/api/v1/instances", headers=h).json()["data"] if i["is_reserved"])
        cases = [
            (c.get("/api/v1/instances", headers={"Authorization": "nope"}), AuthError),
            (c.get("/api/v1/reservations/nope", headers=h), NotFound),
            (c.post("/api/v1/instance-operations/launch", headers=h,
                    json={"region_name": "x", "instance_type_name": "gpu_1x_h100", "ssh_key_names": []}), InvalidArgument),
            (c.post("/api/v1/instance-operations/launch", headers=h, json={"region_name": "us-east-1"}), InvalidArgument),
            (c.post("/api/v1/instance-operations/launch", headers=h,
                    json={"region_name": "us-east-1", "instance_type_name": "gpu_8x_a100", "ssh_key_names": []}),
             InsufficientCapacity),
            (c.post("/api/v1/instance-operations/terminate", headers=h, json={"instance_ids": [rsv_id]}),
             ReservedCannotTerminate),
            (c.post("/api/v1/instance-operations/stop", headers=h, json={}), NotFound),
            (c.get("/api/v1/instance-operations/launch", headers=h), Unsupported),
        ]
    for resp, cls in cases:
        err = map_error(resp, KEY)
        assert type(err) is cls, (resp.status_code, resp.text)
        assert KEY not in str(err) and str(err).startswith("lambda: ")


def test_reads_retry_5xx_and_429(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    lambda_sim.faults.add(Fault(endpoint="list_instances", kind="error", status=500, nth=(1, 2)))
    assert len(lp.list_instances()) == 3
    assert lambda_sim.requests.count("list_instances") == 3
    lambda_sim.faults.add(Fault(endpoint="list_reservations", kind="error", status=429, retry_after=0, times=2))
    assert len(lp.reservations()) == 2
    assert lambda_sim.requests.count("list_reservations") == 3


def test_reads_give_up_as_provider_unavailable(lambda_sim: LambdaSim) -> None:
    lambda_sim.faults.add(Fault(endpoint="list_instances", kind="error", status=503))
    with make(lambda_sim.address, timing=Timing(retry_attempts=3, retry_base_delay=0.01)) as p:
        with pytest.raises(ProviderUnavailable):
            p.list_instances()
    assert lambda_sim.requests.count("list_instances") == 3


def test_provider_down() -> None:
    with make(f"http://127.0.0.1:{unused_port()}", timing=Timing(retry_attempts=2, retry_base_delay=0.01)) as p:
        with pytest.raises(ProviderUnavailable) as ei:
            p.list_instances()
        assert KEY not in str(ei.value)
        with pytest.raises(ProviderUnavailable):
            p.create(req("down", region="us-west-1"))
        with pytest.raises(ProviderUnavailable):
            p.destroy("f" * 32)


def test_path_traversal_ids(lp: LambdaProvider, lambda_sim: LambdaSim) -> None:
    for bad in ("..%2F..%2Freservations",):  # encoded again by the adapter: an unknown id, not a route
        with pytest.raises(NotFound):
            lp.get_instance(bad)
        with pytest.raises(NotFound):
            lp.destroy(bad)
    for bad in ("../../reservations", "../reservations/rsv-lambda-001", "a/b", "..", ".", "", "x\ny"):
        with pytest.raises(InvalidArgument):
            lp.get_instance(bad)
    counts = lambda_sim.requests.counts()
    assert counts.get("get_reservation", 0) == 0 and counts.get("list_reservations", 0) == 0
    assert counts.get("terminate", 0) == 0
    assert len(lp.list_instances()) == 3


def test_built_through_the_registry(lambda_sim: LambdaSim, tmp_path: Path) -> None:
    from vmops.config import load_config
    from vmops.providers import get_provider

    cfg = load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_LAMBDA_URL": lambda_sim.address, "VMOPS_PROVIDERS": "lambda"})
    with get_provider("lambda", cfg, TIMING) as p:
        assert isinstance(p, LambdaProvider)
        assert [i.name for i in p.list_instances()][:2] == ["training-node-1", "dev-box"]


def test_base_url_may_include_api_prefix(lambda_sim: LambdaSim) -> None:
    with make(lambda_sim.address + "/api/v1") as p:
        assert len(p.list_instances()) == 3


def test_all_errors_are_typed(lp: LambdaProvider) -> None:
    with pytest.raises(VmopsError):
        lp.get_instance("nope")


# ---- both dialects (reference and cloud) ----------------------------------------------------------------
@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def any_lambda(dialect: str, request: pytest.FixtureRequest, public_key_file: str,
               tmp_path: Path) -> Iterator[tuple[Provider, Any, World]]:
    sim = request.getfixturevalue("lambda_sim" if dialect == "reference" else "lambda_cloud_sim")
    p = make_provider("lambda", dialect, sim, public_key_file, tmp_path, VMOPS_LAMBDA_SSH_KEY="vmops")
    yield p, sim, WORLDS[("lambda", dialect)]
    p.close()


def test_dialect_adapter_and_lifecycle(any_lambda: tuple[Provider, Any, World], dialect: str) -> None:
    p, sim, w = any_lambda
    assert isinstance(p, LambdaCloudProvider) == (dialect == "cloud")
    assert w.seed_name in [i.name for i in p.list_instances()]
    offers = p.offers(GpuShape("a100", 1))
    assert any(o.native_type == w.small and o.region == w.region and o.has_capacity for o in offers)
    inst = p.create(req("life", w.small, region=w.region))
    assert (inst.state, inst.region, inst.native_type) == (State.RUNNING, w.region, w.small) and inst.public_ip
    assert p.restart(inst.id).state is State.RUNNING
    gone = p.destroy(inst.id)
    assert gone.state is State.DELETED and gone.id == inst.id
    assert "life" not in [i.name for i in p.list_instances()]
    with pytest.raises(NotFound):
        p.destroy(inst.id)
    assert sim.requests.count("terminate") == 1


def test_create_retries_after_5xx_without_duplicate(any_lambda: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_lambda
    sim.faults.add(Fault(endpoint="launch", kind="error", status=503, nth=(1, 2)))
    inst = p.create(req("flaky", w.small))
    assert inst.state is State.RUNNING
    assert [i.name for i in p.list_instances()].count("flaky") == 1
    assert sim.requests.count("launch") == 3


def test_lost_launch_answer_is_adopted(any_lambda: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_lambda
    sim.faults.add(Fault(endpoint="launch", kind="lose_response", times=1))
    inst = p.create(req("lost-one", w.small))
    assert inst.name == "lost-one" and inst.state is State.RUNNING
    assert [i.id for i in p.find_by_name("lost-one")] == [inst.id]
    assert sim.requests.count("launch") == 1


def test_lost_answer_does_not_adopt_an_older_namesake(any_lambda: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_lambda
    old = p.create(req("twin", w.small))
    sim.faults.add(Fault(endpoint="launch", kind="lose_response", times=1))
    new = p.create(req("twin", w.small))
    assert new.id != old.id
    assert sorted(i.id for i in p.find_by_name("twin")) == sorted([old.id, new.id])


def test_create_honours_rate_limit(any_lambda: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_lambda
    sim.faults.add(Fault(endpoint="launch", kind="rate_limit", per_seconds=12))  # 0.6 s at scale 0.05
    p.create(req("rl-1", w.small))
    t = time.monotonic()
    p.create(req("rl-2", w.small))
    assert time.monotonic() - t >= 0.6  # waited for Retry-After
    assert sim.requests.count("launch") == 3  # one 429 in between
    names_now = [i.name for i in p.list_instances()]
    assert names_now.count("rl-1") == 1 and names_now.count("rl-2") == 1


def test_insufficient_capacity_and_bad_region(any_lambda: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_lambda
    with pytest.raises(InsufficientCapacity):
        p.create(req("none", w.big, region="europe-central-1" if "_sxm5" in w.big else "eu-west-1"))
    with pytest.raises(InvalidArgument):
        p.create(req("bad", w.small, region="mars-1"))
    assert "none" not in [i.name for i in p.list_instances()]


def test_destroy_survives_lost_terminate_answer(any_lambda: tuple[Provider, Any, World]) -> None:
    p, sim, w = any_lambda
    inst = p.create(req("lost-term", w.small))
    sim.faults.add(Fault(endpoint="terminate", kind="lose_response", times=1))
    assert p.destroy(inst.id).state is State.DELETED
    assert "lost-term" not in [i.name for i in p.list_instances()]
    assert sim.requests.count("terminate") == 1


def test_unsupported_verbs_make_no_call(any_lambda: tuple[Provider, Any, World]) -> None:
    p, sim, _ = any_lambda
    for verb in (p.stop, p.start, p.reboot, p.reset):
        with pytest.raises(Unsupported) as ei:
            verb("whatever")
        assert ei.value.exit_code == Unsupported.exit_code
    with pytest.raises(Unsupported) as ei:
        p.stop("x")
    assert "destroy" in str(ei.value)
    assert sim.requests.counts() == {}


def test_bad_key_never_in_error(any_lambda: tuple[Provider, Any, World], dialect: str, public_key_file: str,
                                tmp_path: Path) -> None:
    _, sim, _ = any_lambda
    secret = "secret-lambda-key-that-is-wrong-123"
    bad = make_provider("lambda", dialect, sim, public_key_file, tmp_path, VMOPS_LAMBDA_API_KEY=secret)
    with pytest.raises(AuthError) as ei:
        bad.list_instances()
    assert secret not in str(ei.value) and secret not in repr(ei.value)


# ---- cloud dialect only (../shared/cloud-apis.md §2) ----------------------------------------------------
def _cloud(sim: Any, public_key: str, home: Path, **env: str) -> LambdaCloudProvider:
    p = make_provider("lambda", "cloud", sim, public_key, home, **env)
    assert isinstance(p, LambdaCloudProvider)
    return p


def test_cloud_launches_are_paced_across_threads(lambda_cloud_sim: Any, public_key_file: str,
                                                 tmp_path: Path) -> None:
    """Eight threads, two adapter objects, one key: launches leave one per launch interval (the exact slots
    are checked on a fake clock in tests/unit/test_pacing.py)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import CLOUD_PACING

    adapters = [_cloud(lambda_cloud_sim, public_key_file, tmp_path) for _ in range(2)]
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: adapters[i % 2].create(
            req(f"paced-{i}", "gpu_1x_h100_sxm5", region=("us-east-1", "us-south-1")[i % 2]), wait=False),
                             range(8)))
    assert sorted(m.name for m in made) == [f"paced-{i}" for i in range(8)]
    times = lambda_cloud_sim.launch_times()
    assert len(times) == 8 and sorted(lambda_cloud_sim.instance_names()).count("paced-0") == 1
    # the pacer releases one launch per interval, whatever the threads; arrival times at the server jitter a
    # little, so the check is on the whole span (7 intervals), not on each gap
    assert times[-1] - times[0] >= 7 * CLOUD_PACING["lambda"][1] * 0.9


def test_cloud_unpaced_client_meets_429_html_and_recovers(lambda_cloud_sim: Any, public_key_file: str,
                                                          tmp_path: Path) -> None:
    p = _cloud(lambda_cloud_sim, public_key_file, tmp_path, VMOPS_LAMBDA_REQUEST_INTERVAL="0",
               VMOPS_LAMBDA_LAUNCH_INTERVAL="0")
    for _ in range(4):  # more than the burst: some reads are refused with Cloudflare's HTML page, then retried
        assert p.list_instances()
    assert [r for r in lambda_cloud_sim.requests.records() if r.outcome == "rate_limited"]
    a = p.create(req("burst-a", "gpu_1x_h100_sxm5"), wait=False)
    b = p.create(req("burst-b", "gpu_1x_h100_sxm5"), wait=False)  # refused once (launch window), then admitted
    assert {a.name, b.name} == {"burst-a", "burst-b"}
    assert sorted(lambda_cloud_sim.instance_names()).count("burst-b") == 1


def test_cloud_wire_rules(lambda_cloud_sim: Any, public_key_file: str, tmp_path: Path) -> None:
    from tests.conftest import LAMBDA_CLOUD_KEY

    url = lambda_cloud_sim.address
    with httpx.Client() as c:
        basic = httpx.BasicAuth(LAMBDA_CLOUD_KEY, "")
        assert c.get(url + "/instances", auth=basic).status_code == 200
        assert c.get(url + "/instances", headers={"Authorization": f"Basic {LAMBDA_CLOUD_KEY}"}).status_code == 200
        time.sleep(0.2)
        many = c.post(url + "/instance-operations/launch", headers={"Authorization": f"Bearer {LAMBDA_CLOUD_KEY}"},
                      json={"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10",
                            "ssh_key_names": ["vmops"], "quantity": 2})
    assert many.status_code == 400 and many.json()["error"]["code"] == "global/invalid-parameters"
    err = map_cloud_error(many)
    assert isinstance(err, InvalidArgument) and "too many" in str(err)
    p = _cloud(lambda_cloud_sim, public_key_file, tmp_path)
    booting = p.create(req("boot", "gpu_1x_a10"), wait=False)
    assert booting.state is State.CREATING and booting.public_ip is None
    with pytest.raises(Unsupported):
        p.create(req("strict", "gpu_1x_a10", reservation_policy=ReservationPolicy.STRICT, reservation_ids=("r",)))
    assert p.reservations() == []
    assert p.settle(booting, "create").public_ip
    nokey = _cloud(lambda_cloud_sim, public_key_file, tmp_path, VMOPS_LAMBDA_SSH_KEY="someone-elses")
    with pytest.raises(InvalidArgument, match="no SSH key named 'someone-elses'") as ei:
        nokey.create(req("nokey", "gpu_1x_a10"))
    assert "VMOPS_LAMBDA_SSH_KEY" in (ei.value.hint or "")
    assert "nokey" not in lambda_cloud_sim.instance_names()


def test_terminate_batch_setting(tmp_path: Path) -> None:
    from vmops.config import load_config

    base = {"VMOPS_HOME": str(tmp_path)}
    assert load_config(base).settings("lambda").terminate_batch is None
    cfg = load_config({**base, "VMOPS_LAMBDA_TERMINATE_BATCH": "7"})
    assert cfg.settings("lambda").terminate_batch == 7
    assert cfg.settings("lambda").describe()["terminate_batch"] == 7
    assert LambdaProvider(cfg.settings("lambda"), TIMING).destroy_batch == 7
    assert make("http://127.0.0.1:9").destroy_batch == 50  # the reference dialect's default
    cloud = ProviderSettings(name="lambda", url="http://127.0.0.1:9", api_key=Secret(KEY), dialect="cloud")
    assert LambdaCloudProvider(cloud, TIMING).destroy_batch == 1  # unconfirmed partial failure: one id per call
    for bad in ("0", "many"):
        with pytest.raises(ValueError, match="TERMINATE_BATCH"):
            load_config({**base, "VMOPS_LAMBDA_TERMINATE_BATCH": bad})
    (tmp_path / "config.toml").write_text("[lambda]\nterminate_batch = 3\n")
    assert load_config(base).settings("lambda").terminate_batch == 3
