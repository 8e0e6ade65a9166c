"""`vm fleet create --reserved` at Crusoe on both dialects: the reference dialect's project reservations and the
cloud dialect's organization reservations (../shared/cloud-apis.md §1.3) are used only when asked, and the
providers' own reservation counters say so."""

from __future__ import annotations

from vmops.model import GpuShape
from vmops.session import Session

from tests.conftest import both_dialects
from tests.fleet.conftest import at_providers, spec

pytestmark = both_dialects
H100_8 = GpuShape("h100", 8)


def _use(config) -> dict[str, int]:
    """Used VMs of Crusoe's active 8 x H100 reservations, as Crusoe reports them."""
    with Session(config) as s:
        return {r.id: r.used_vms for r in s.provider("crusoe").reservations() if r.active and r.gpu == H100_8}


def test_crusoe_fleet_takes_reservations_only_when_asked(dialect, sims, config, make_manager) -> None:
    mgr = make_manager({"VMOPS_PROVIDERS": "crusoe"})
    before = _use(config)
    assert before, "the simulator seeds an 8 x H100 reservation"
    od = mgr.create(spec("h100:8", 1, "od1"))
    assert len(od.running) == 1 and not any(v.reserved for v in at_providers(config, "od1"))
    assert _use(config) == before
    made = mgr.create(spec("h100:8", 2, "rsv2", reserved_mode="only"))
    assert len(made.running) == 2
    vms = at_providers(config, "rsv2")
    assert len(vms) == 2 and all(v.reserved and v.reservation_id in before for v in vms)
    assert sum(_use(config).values()) == sum(before.values()) + 2
    mgr.destroy("rsv2")
    assert at_providers(config, "rsv2") == []
    assert _use(config) == before
