"""Crusoe's destroy_many lists once for all ids instead of a GET before every DELETE; outcomes per id stay
exact (already gone = success, invalid id refused without a request)."""

from __future__ import annotations

from vmops.config import ProviderSettings, Secret
from vmops.errors import InvalidArgument
from vmops.model import CreateRequest, State
from vmops.providers.base import Timing
from vmops.providers.crusoe import CrusoeProvider
from vmops.sim.crusoe import CrusoeSim


def test_crusoe_destroy_many_lists_once_and_deletes_each(crusoe_sim: CrusoeSim) -> None:
    p = CrusoeProvider(ProviderSettings("crusoe", crusoe_sim.address, Secret("crusoe-test-key-001"),
                                        scope="proj-001", ssh_key="ops"), Timing(poll_interval=0.02, op_timeout=10))
    try:
        made = [p.create(CreateRequest(f"dm-{i}", "h100.1x", region="us-east1"), wait=False) for i in range(3)]
        crusoe_sim.requests.reset()
        ids = [m.id for m in made] + ["00000000-0000-4000-8000-000000000000", "../x"]
        results = p.destroy_many(ids, wait=True)
        assert [r.id for r in results] == ids
        assert all(r.ok for r in results[:4])
        assert [r.instance.state for r in results[:3]] == [State.DELETED] * 3  # type: ignore[union-attr]
        assert results[3].instance is None  # unknown id: already gone, nothing sent
        assert not results[4].ok and isinstance(results[4].error, InvalidArgument)
        assert crusoe_sim.requests.count("delete_instance") == 3
        assert crusoe_sim.requests.count("get_instance") == 0
        assert {i.name for i in p.list_instances()}.isdisjoint({"dm-0", "dm-1", "dm-2"})
    finally:
        p.close()
