"""A paged listing (Crusoe's public API: 5 VMs a page in the simulator) skips a VM when another is removed
between two pages, so absence from one listing proves nothing. Every decision taken from a listing that a
VM is gone is checked here against that skip, produced on purpose (tests/providers/dialects.py)."""

from __future__ import annotations

from typing import Any

from vmops.model import CreateRequest, State
from vmops.providers.base import Provider

from tests.providers.dialects import WORLDS, make_provider, remove_during_page_2


def _eight_vms(p: Provider) -> list[str]:
    """Seven new VMs (creating) after the seed VM: ids in listing order, over two pages."""
    w = WORLDS["crusoe", "cloud"]
    for i in range(7):
        p.create(CreateRequest(f"skip-{i}", w.small, region=w.region), wait=False)
    order = [i.id for i in p.list_instances()]
    assert len(order) == 8
    return order


def test_crusoe_destroy_many_a_vm_the_paged_list_skipped_is_still_deleted(crusoe_cloud_sim: Any, public_key_file: str,
                                                                           tmp_path: Any) -> None:
    """Crusoe's public API lists in pages (5 VMs a page in the simulator). When a VM on page 1 is removed while
    page 2 is being fetched, the VM that moved up onto page 1 is in no page: it must still be deleted, not
    counted as already gone (a fleet destroy that did so reported the member destroyed and left it running)."""
    sim = crusoe_cloud_sim
    p = make_provider("crusoe", "cloud", sim, public_key_file, tmp_path)
    try:
        order = _eight_vms(p)
        t = remove_during_page_2(sim, order[1])
        target = order[5]  # page 2's first VM, which moves onto page 1
        [result] = p.destroy_many([target], wait=False)
        t.join()
        assert result.ok and result.instance is not None and result.instance.state is State.DELETING
        assert sim.requests.count("delete_instance") == 1
        assert target not in {i.id for i in p.list_instances() if i.state is State.RUNNING}
    finally:
        p.close()


def test_a_create_wait_does_not_take_a_skipped_vm_for_gone(crusoe_cloud_sim: Any, public_key_file: str,
                                                          tmp_path: Any) -> None:
    """A fleet's wait accepts RUNNING, ERROR or DELETED (a VM that vanished failed and is replaced). A creating VM
    the listing skipped must not count as vanished: that replaced a live member and left its VM unrecorded."""
    sim = crusoe_cloud_sim
    p = make_provider("crusoe", "cloud", sim, public_key_file, tmp_path)
    try:
        order = _eight_vms(p)
        t = remove_during_page_2(sim, order[1])
        target = order[5]
        gets = sim.requests.count("get_instance")
        settled = frozenset({State.RUNNING, State.ERROR, State.DELETED})
        seen = p.wait_for({target: settled}, expected=0.0)
        t.join()
        assert seen[target].state is State.RUNNING
        assert sim.requests.count("get_instance") >= gets + 1  # the skip was looked up by id
    finally:
        p.close()
