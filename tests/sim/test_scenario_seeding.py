"""The scenario knob that pre-seeds many instances (``count`` on an ``instances`` entry), for scale tests and
the inventory benchmark; off by default (the seed data of the contract)."""

from __future__ import annotations

import httpx

from vmops.sim.common import SimOptions
from vmops.sim.crusoe import CrusoeSim

KEY = {"Authorization": "Bearer crusoe-test-key-001"}


def _names(sim: CrusoeSim) -> list[str]:
    r = httpx.get(f"{sim.address}/v1alpha5/projects/proj-001/compute/vms/instances", headers=KEY)
    assert r.status_code == 200
    return [i["name"] for i in r.json()["items"]]


def test_crusoe_count_seeds_many_named_instances() -> None:
    sim = CrusoeSim(SimOptions(scenario={"instances": [
        {"name": "seed", "type": "h100.1x", "location": "us-east1", "count": 1500},
        {"name": "solo", "type": "a100.1x", "location": "us-west1"}]}))
    sim.start(0)
    try:
        names = _names(sim)
        assert len(names) == 1501
        assert names[:3] == ["seed-0", "seed-1", "seed-2"] and names[1499] == "seed-1499" and names[-1] == "solo"
        r = httpx.get(f"{sim.address}/v1alpha5/projects/proj-001/compute/vms/instances", headers=KEY).json()
        assert len({i["id"] for i in r["items"]}) == 1501
        assert {i["state"] for i in r["items"]} == {"STATE_RUNNING"}
        sim.reset()  # reset re-seeds the same scenario with fresh ids
        assert len(_names(sim)) == 1501
    finally:
        sim.stop()


def test_crusoe_seeding_is_off_by_default() -> None:
    sim = CrusoeSim(SimOptions())
    sim.start(0)
    try:
        assert _names(sim) == ["gpu-worker-1"]
    finally:
        sim.stop()
