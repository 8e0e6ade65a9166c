"""Crusoe's destroy_many lists once for all ids instead of a GET before every DELETE; outcomes per id stay
exact (already gone = success after a lookup by id, invalid id refused without a request). On both dialects'
simulators."""

from __future__ import annotations

from vmops.errors import InvalidArgument
from vmops.model import CreateRequest, State

from tests.conftest import both_dialects
from tests.providers.dialects import WORLDS, make_provider

pytestmark = both_dialects


def test_crusoe_destroy_many_lists_once_and_deletes_each(sims, dialect, public_key_file, tmp_path) -> None:
    crusoe_sim, w = sims["crusoe"], WORLDS["crusoe", dialect]
    p = make_provider("crusoe", dialect, crusoe_sim, public_key_file, tmp_path)
    try:
        made = [p.create(CreateRequest(f"dm-{i}", w.small, region=w.region), wait=False) for i in range(3)]
        crusoe_sim.requests.reset()
        ids = [m.id for m in made] + ["00000000-0000-4000-8000-000000000000", "../x"]
        results = p.destroy_many(ids, wait=True)
        assert [r.id for r in results] == ids
        assert all(r.ok for r in results[:4])
        assert [r.instance.state for r in results[:3]] == [State.DELETED] * 3  # type: ignore[union-attr]
        assert results[3].instance is None  # unknown id: already gone (one lookup), nothing sent
        assert not results[4].ok and isinstance(results[4].error, InvalidArgument)
        assert crusoe_sim.requests.count("delete_instance") == 3
        assert crusoe_sim.requests.count("get_instance") == 1
        assert {i.name for i in p.list_instances()}.isdisjoint({"dm-0", "dm-1", "dm-2"})
    finally:
        p.close()

