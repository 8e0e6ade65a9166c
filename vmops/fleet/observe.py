"""How what a provider reports about a VM is written onto its member record."""

from __future__ import annotations

from vmops.model import Instance, State
from vmops.state import MemberStatus


def status_for(state: State) -> MemberStatus:
    if state is State.RUNNING or state in (State.STOPPED, State.STOPPING, State.STARTING):
        return MemberStatus.RUNNING
    if state is State.DELETING:
        return MemberStatus.DESTROYING
    if state is State.DELETED:
        return MemberStatus.GONE
    return MemberStatus.ACCEPTED


def member_fields(inst: Instance) -> dict[str, object]:
    return {
        "state": inst.state,
        "region": inst.region,
        "reserved": inst.reserved,
        "reservation_id": inst.reservation_id,
        "public_ip": inst.public_ip,
    }
