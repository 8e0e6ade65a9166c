"""What the providers hold for a fleet, judged against vmops' record.

Every check reads the providers' own instance lists (through the adapters, with the simulators' faults
cleared first), never only vmops' state file: a leak is a VM that bills at a provider, whatever the record
says. Used by the reliability scenarios (test_faults.py, test_crashes.py).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from vmops.config import Config
from vmops.fleet.naming import belongs_to
from vmops.model import Instance, State
from vmops.session import Session
from vmops.sim.base import Simulator
from vmops.state import LIVE, MemberStatus, Store

#: (provider, instance id) -> (name, canonical state): what a snapshot compares.
Snapshot = dict[tuple[str, str], tuple[str, str]]


def seed_faults(sims: Mapping[str, Simulator], seed: int) -> None:
    """Make the simulators' fault draws a function of ``seed``.

    A ``FaultSet`` draws its ``rate`` decisions from the simulator's ``rng`` (vmops/sim/base.py hands
    ``self.rng`` to it), which is seeded once when the session-scoped simulator is built; reseeding it per
    trial gives every trial its own reproducible fault sequence (for the same order of requests).
    """
    for i, name in enumerate(sorted(sims)):
        sims[name].rng.seed(seed * 1009 + i)


def clear_faults(sims: Mapping[str, Simulator]) -> None:
    for s in sims.values():
        s.faults.clear()


def instances(config: Config) -> list[Instance]:
    """Every VM every enabled provider lists now (all providers must answer: the judge asks even a provider
    whose circuit breaker a `vm` command just opened)."""
    from dataclasses import replace

    with Session(replace(config, breaker_seconds=0)) as s:
        out = s.instances()
    assert not out.failures, {n: e.render() for n, e in out.failures.items()}
    return [i for i in out.flat() if i.state is not State.DELETED]


def others(vms: Iterable[Instance], fleets: Iterable[str]) -> Snapshot:
    """The VMs that belong to none of ``fleets`` (seed VMs, other fleets): these must never change."""
    fl = list(fleets)
    return {(v.provider, v.id): (v.name, v.state.value) for v in vms if not any(belongs_to(v.name, f) for f in fl)}


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable differences between two snapshots of VMs outside the fleet under test."""
    out = [f"gone: {k} {v}" for k, v in before.items() if k not in after]
    out += [f"new: {k} {v}" for k, v in after.items() if k not in before]
    out += [f"changed: {k} {before[k]} -> {after[k]}" for k in before if k in after and before[k] != after[k]]
    return out


def destroyed_unasked(before: Snapshot, after: Snapshot) -> int:
    """VMs outside the fleet under test that were there before and are gone (or going) now: destroyed
    without anybody asking (the figure the suite reports, and must keep at 0)."""
    return sum(1 for k, v in before.items() if k not in after or after[k][1] in ("deleting", "deleted"))


def boot_disks_left(sims: Mapping[str, Simulator], fleet: str) -> list[str]:
    """Boot disks named for ``fleet``'s members (``<VM name>-boot``) that a provider still holds: a disk bills
    like a VM. Only the Nebius cloud dialect makes disks (its simulator lists them); elsewhere none."""
    found: list[str] = []
    for sim in sims.values():
        names = getattr(sim, "disk_names", None)
        if names is not None:
            found += [d for d in names() if d.endswith("-boot") and belongs_to(d.removesuffix("-boot"), fleet)]
    return found


@dataclass
class FleetAtProviders:
    """One fleet as the providers hold it, and how that compares with the record."""

    fleet: str
    vms: list[Instance]
    recorded_live: dict[tuple[str, str], MemberStatus] = field(default_factory=dict)  # (provider, id) -> status
    unresolved: int = 0  # live members without an instance id (create outcome not yet known)

    @property
    def running(self) -> list[Instance]:
        return [v for v in self.vms if v.state is State.RUNNING]

    @property
    def duplicates(self) -> int:
        """VMs beyond the first for one member name (a member made twice)."""
        return sum(n - 1 for n in Counter(v.name for v in self.vms).values() if n > 1)

    @property
    def orphans(self) -> list[Instance]:
        """VMs named for the fleet that no live member of the record holds."""
        return [v for v in self.vms if (v.provider, v.id) not in self.recorded_live]

    def summary(self) -> str:
        by = Counter(v.provider for v in self.vms)
        return (f"{len(self.vms)} VM(s) at the providers ({dict(by)}), {len(self.running)} running, "
                f"{self.duplicates} duplicate(s), {len(self.orphans)} orphan(s), {self.unresolved} unresolved")


def fleet_at_providers(config: Config, fleet: str, vms: list[Instance] | None = None) -> FleetAtProviders:
    """The providers' VMs carrying ``fleet``'s name, with the record's live members (if a record exists)."""
    vms = instances(config) if vms is None else vms
    mine = [v for v in vms if belongs_to(v.name, fleet)]
    out = FleetAtProviders(fleet, mine)
    path = Path(config.state_path)
    if path.exists():
        store = Store(path)
        try:
            f = store.find_fleet(fleet)
            if f is not None:
                for m in store.members(f.id):
                    if m.status in LIVE and m.instance_id:
                        out.recorded_live[(m.provider, m.instance_id)] = m.status
                    elif m.status in LIVE:
                        out.unresolved += 1
        finally:
            store.close()
    return out


def rng_for(seed: int) -> random.Random:
    """The test's own RNG for a trial (kill moments, fault mixes): seeded, so a failure names its seed."""
    return random.Random(seed)


def dialect_tag(dialect: str) -> str:
    """The scoreboard suffix of a scenario run on the cloud dialect (the reference rows keep their names)."""
    return "" if dialect == "reference" else f" ({dialect})"
