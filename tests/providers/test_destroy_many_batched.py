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



def log_before_first(sim, endpoint: str) -> list[str]:
    log = [r.endpoint for r in sim.requests.records()]
    return log[: log.index(endpoint)]


def test_destroy_many_uses_a_fresh_listing_it_is_given(sims, dialect, public_key_file, tmp_path) -> None:
    """``listed`` with every id: no list before the deletes. An id it lacks: the adapter lists as before (and
    an id gone meanwhile is still found gone by the delete's own answer)."""
    crusoe_sim, w = sims["crusoe"], WORLDS["crusoe", dialect]
    p = make_provider("crusoe", dialect, crusoe_sim, public_key_file, tmp_path)
    try:
        made = [p.create(CreateRequest(f"dl-{i}", w.small, region=w.region), wait=False) for i in range(3)]
        listed = {i.id: i for i in p.list_instances()}
        crusoe_sim.requests.reset()
        results = p.destroy_many([m.id for m in made[:2]], wait=True, listed=listed)
        assert all(r.ok for r in results)
        assert crusoe_sim.requests.count("delete_instance") == 2
        assert log_before_first(crusoe_sim, "delete_instance").count("list_instances") == 0
        stale = p.destroy_many([made[0].id], wait=True, listed=listed)  # gone since that listing: still success
        assert stale[0].ok
        crusoe_sim.requests.reset()
        partial = {made[2].id: listed[made[2].id]}
        unknown = "00000000-0000-4000-8000-000000000000"
        results = p.destroy_many([made[2].id, unknown], wait=False, listed=partial)
        assert [r.ok for r in results] == [True, True] and results[1].instance is None
        assert crusoe_sim.requests.count("list_instances") == 1  # the unknown id: listed (and looked up)
        assert crusoe_sim.requests.count("delete_instance") == 1
    finally:
        p.close()


def test_lambda_destroy_many_uses_a_fresh_listing_it_is_given(sims, dialect, public_key_file, tmp_path) -> None:
    lambda_sim, w = sims["lambda"], WORLDS["lambda", dialect]
    p = make_provider("lambda", dialect, lambda_sim, public_key_file, tmp_path)
    try:
        made = p.create(CreateRequest("dl-l", w.small, region=w.region), wait=True)
        listed = {i.id: i for i in p.list_instances()}
        lambda_sim.requests.reset()
        [result] = p.destroy_many([made.id], wait=False, listed=listed)
        assert result.ok
        log = [r.endpoint for r in lambda_sim.requests.records()]
        assert log[0] != "list_instances"  # no list before the terminate; one after it verifies
        assert lambda_sim.requests.count("list_instances") == 1
        # a listing gone stale (the user took a while to confirm): the VM went meanwhile, which is success
        [again] = p.destroy_many([made.id], wait=True, listed=listed)
        assert again.ok and (again.instance is None or again.instance.state is State.DELETED)
    finally:
        p.close()


def test_lambda_destroy_many_sends_one_terminate_per_batch(sims, dialect, public_key_file, tmp_path) -> None:
    """With ``terminate_batch`` set (the cloud dialect's default is 1), three VMs go in one terminate call."""
    lambda_sim, w = sims["lambda"], WORLDS["lambda", dialect]
    p = make_provider("lambda", dialect, lambda_sim, public_key_file, tmp_path, VMOPS_LAMBDA_TERMINATE_BATCH="10")
    try:
        made = [p.create(CreateRequest(f"db-{i}", w.small, region=w.region), wait=False) for i in range(3)]
        lambda_sim.requests.reset()
        results = p.destroy_many([m.id for m in made], wait=True)
        assert all(r.ok for r in results)
        assert lambda_sim.requests.count("terminate") == 1
        assert {i.id for i in p.list_instances()}.isdisjoint({m.id for m in made})
    finally:
        p.close()
