"""`vm create --reserved only` at Crusoe on both dialects: the reference dialect's project reservation of
h100.8x and the cloud dialect's organization reservation of H100 GPUs (../shared/cloud-apis.md §1.3) take the
VM, as the provider itself reports it."""

from __future__ import annotations

from vmops.session import Session

from tests.cli.helpers import vm
from tests.conftest import both_dialects

pytestmark = both_dialects


def test_create_reserved_only_goes_into_a_free_reservation(sims, vm_env) -> None:
    with Session(env=vm_env) as s:
        free = {r.id for r in s.provider("crusoe").reservations() if r.active and r.available_vms and r.gpu
                and str(r.gpu) == "h100:8"}
    assert free, "the simulator seeds a free 8 x H100 reservation"
    asked = vm(["create", "-p", "crusoe", "-g", "h100:8", "-n", "rsv-h100", "--reserved", "only", "--json"], vm_env)
    assert asked.code == 0, asked.err
    [a] = asked.json()
    with Session(env=vm_env) as s:
        at_crusoe = s.provider("crusoe").get_instance(a["id"])
    assert at_crusoe.reserved and at_crusoe.reservation_id in free
    assert vm(["destroy", a["id"], "-p", "crusoe", "-y"], vm_env).code == 0
