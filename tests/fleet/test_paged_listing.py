"""A paged listing is not proof that a VM is gone.

The cloud dialects list in pages (Crusoe: ``next_token``, Nebius: ``page_token``). When a VM is removed between
two pages (by anyone: another vmops process, the console, an earlier destroy finishing), an offset-like token
skips one VM. A fleet that took "not in the listing" for "deleted" marked that member gone and left its VM
running, unrecorded: a leak the reliability suite found (transient faults, a fleet of 16, cloud dialect)."""

from __future__ import annotations

import threading

import pytest

from vmops.fleet.naming import belongs_to
from vmops.sim.common import Fault
from vmops.state import LIVE

from tests.reliability.fleetcheck import fleet_at_providers
from tests.reliability.rig import close, manager, spec, wait_until


@pytest.mark.parametrize("dialect", ["cloud"])
def test_a_member_skipped_by_a_paged_listing_is_not_marked_gone(crusoe_cloud_sim, config, dialect) -> None:
    sim = crusoe_cloud_sim  # pages of 5; its seed VM is listed first
    mgr = manager(config, env={"VMOPS_PROVIDERS": "crusoe"})
    try:
        made = mgr.create(spec("h100", 6, "paged"))
        assert len([m for m in made.members if m.status in LIVE]) == 6
        with sim.lock:
            bystander = next(v.id for v in sim.vms.values() if not belongs_to(v.name, "paged"))
        base = sim.requests.count("list_instances")
        # the reconcile's second page is served late; meanwhile a VM of the first page is deleted elsewhere
        sim.faults.add(Fault("list_instances", "latency", latency_s=0.3, nth=(base + 2,)))

        def delete_elsewhere() -> None:
            if wait_until(lambda: sim.requests.count("list_instances") >= base + 2, timeout=30):
                with sim.lock:
                    sim.vms.pop(bystander, None)

        t = threading.Thread(target=delete_elsewhere)
        t.start()
        mgr.reconcile("paged")
        t.join(30)
        sim.faults.clear()
        at = fleet_at_providers(config, "paged")
        mgr.destroy("paged")
    finally:
        close(mgr)
    assert len(at.running) == 6 and not at.orphans, at.summary()  # every running member still recorded live
    assert not fleet_at_providers(config, "paged").vms
