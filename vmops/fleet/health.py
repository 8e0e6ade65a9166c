"""A fleet's health counted from its members' real (last observed) states: one rule for every view (the CLI's
`fleet list` and `status`, the manager, notebooks, the dashboard).

Kept apart from vmops.fleet.observe so a view of the record alone (`vm fleet list`) loads no more than the
records: it is read on every start-up of those commands (docs/design.md section 13).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from vmops.model import BILLED_STATES, State
from vmops.state.records import LIVE, FleetRecord, FleetState, MemberRecord, MemberStatus


def bills(state: State) -> bool:
    return state in BILLED_STATES


@dataclass(frozen=True)
class Counts:
    """A fleet's members counted by their real (last observed) states."""

    running: int = 0
    stopped: int = 0  # stopped or stopping
    starting: int = 0  # creating or starting
    other: int = 0  # error or unknown
    destroying: int = 0
    unknown_outcome: int = 0  # create sent, answer lost, not resolved yet (may exist and bill)
    billing: int = 0  # members that may exist and bill now
    price_per_hour: float = 0.0  # what the billing members with a known price cost per hour
    unpriced: int = 0  # billing members whose price no rule knows (not counted as $0: said beside the total)

    @property
    def exist(self) -> int:
        """Members that exist as made VMs (running or stopped): what counts against count/min."""
        return self.running + self.stopped


def count(members: Iterable[MemberRecord]) -> Counts:
    running = stopped = starting = other = destroying = unknown = billing = unpriced = 0
    price = 0.0
    for m in members:
        if m.status not in LIVE:
            continue
        if m.status is MemberStatus.REQUESTED and not m.instance_id:
            unknown += 1
            continue
        if m.status is MemberStatus.DESTROYING or m.state is State.DELETING:
            destroying += 1
        elif m.state is State.RUNNING:
            running += 1
        elif m.state in (State.STOPPED, State.STOPPING):
            stopped += 1
        elif m.state in (State.CREATING, State.STARTING):
            starting += 1
        else:
            other += 1
        if bills(m.state):
            billing += 1
            if m.price_per_hour is None:
                unpriced += 1
            else:
                price += m.price_per_hour
    return Counts(running, stopped, starting, other, destroying, unknown, billing, round(price, 4), unpriced)


def health(fleet: FleetRecord, counts: Counts) -> FleetState:
    """The state a settled fleet is in by its members: active, partial or degraded (others are kept)."""
    if fleet.state not in (FleetState.ACTIVE, FleetState.PARTIAL, FleetState.DEGRADED):
        return fleet.state
    if counts.exist >= fleet.count:
        return FleetState.ACTIVE
    if counts.exist >= fleet.min_count:
        return FleetState.PARTIAL
    return FleetState.DEGRADED
