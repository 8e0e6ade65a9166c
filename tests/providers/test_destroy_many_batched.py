"""Crusoe's destroy_many lists once for all ids instead of a GET before every DELETE; outcomes per id stay
exact (already gone = success after a lookup by id, invalid id refused without a request). On both dialects'
simulators."""

from __future__ import annotations

import threading
import time

from vmops.errors import InvalidArgument
from vmops.model import CreateRequest, State
from vmops.sim.common import Fault

from tests.conftest import both_dialects
from tests.providers.dialects import WORLDS, make_provider

@both_dialects
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


def test_crusoe_destroy_many_a_vm_the_paged_list_skipped_is_still_deleted(crusoe_cloud_sim, public_key_file,
                                                                           tmp_path) -> None:
    """Crusoe's public API lists in pages (5 VMs a page in the simulator). When a VM on page 1 is removed while
    page 2 is being fetched, the VM that moved up onto page 1 is in no page: it must still be deleted, not
    counted as already gone (a fleet destroy that did so reported the member destroyed and left it running)."""
    sim, w = crusoe_cloud_sim, WORLDS["crusoe", "cloud"]
    p = make_provider("crusoe", "cloud", sim, public_key_file, tmp_path)
    try:
        for i in range(7):
            p.create(CreateRequest(f"skip-{i}", w.small, region=w.region), wait=False)
        order = [i.id for i in p.list_instances()]
        assert len(order) >= 8
        early, target = order[1], order[5]  # page 1's second VM; the first VM of page 2
        lists = sim.requests.count("list_instances")
        sim.faults.add(Fault("list_instances", "latency", latency_s=1.0, nth=(lists + 2,)))

        def remove_early_vm_during_page_2() -> None:
            until = time.monotonic() + 10
            while sim.requests.count("list_instances") < lists + 2 and time.monotonic() < until:
                time.sleep(0.005)
            with sim.lock:
                del sim.vms[early]

        t = threading.Thread(target=remove_early_vm_during_page_2)
        t.start()
        [result] = p.destroy_many([target], wait=False)
        t.join()
        assert result.ok and result.instance is not None and result.instance.state is State.DELETING
        assert sim.requests.count("delete_instance") == 1
        assert target not in {i.id for i in p.list_instances() if i.state is State.RUNNING}
    finally:
        p.close()
