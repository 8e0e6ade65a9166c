"""The nightly-cleanup policy: what an unattended run may touch, decided once, read-only (docs/design.md,
section 10).

It uses the fleet lifecycle and nothing else to decide about fleets: for each recorded fleet the manager's
own Decision (``preview_reconcile`` for a live fleet, ``preview_destroy`` for a stuck one) says exactly
which VMs the run's reconcile/destroy step would destroy, and the run counts exactly those. About VMs no
fleet records it asks the one ownership rule (``vmops.fleet.ownership``):

* ours, and its fleet has no live record (none, or ``destroyed``): an **orphan**, destroyed by the run;
* ours, and its fleet is live: the fleet's Decision adopts it (or, at a provider where the fleet never had
  a member, it is **kept** for a human);
* not ours (another name, a look-alike without the labels, another installation's): **unmanaged**,
  reported and never touched.

The providers are listed BEFORE the state file is read. The fleet manager writes a fleet's row before any
provider call (write-ahead), so any fleet-named VM the list shows already has its fleet row: a fleet being
created right now is never an orphan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from vmops.cleanup.protect import ProtectList, age_hours, parse_time, utc_now
from vmops.errors import VmopsError
from vmops.fleet.decision import Action, Decision
from vmops.fleet.manager import FleetManager
from vmops.fleet.ownership import claimed
from vmops.model import Instance
from vmops.procs import pid_alive
from vmops.state import FleetRecord, FleetState, Store, store_exists

#: Fleet states nightly-cleanup destroys once they have lasted longer than ``stuck_after_hours``.
STUCK_STATES = (FleetState.FAILED, FleetState.CREATING)


@dataclass(frozen=True)
class Noted:
    """One VM in a cleanup report, and why it is there."""

    inst: Instance
    reason: str | None = None
    fleet: str | None = None
    fleet_record: str | None = None  # orphans: "destroyed" or "none"
    age_hours: float | None = None
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        i = self.inst
        out: dict[str, Any] = {
            "provider": i.provider, "id": i.id, "name": i.name, "state": i.state.value,
            "gpu": str(i.gpu) if i.gpu else None, "region": i.region, "reserved": i.reserved,
            "can_terminate": i.can_terminate, "created_at": i.created_at.isoformat() if i.created_at else None,
            "price_per_hour": i.price_per_hour,
        }
        for k in ("reason", "fleet", "fleet_record", "action"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.age_hours is not None:
            out["age_hours"] = round(self.age_hours, 2)
        return out


@dataclass(frozen=True)
class FleetNote:
    """A fleet the run leaves alone this time, and why."""

    fleet: str
    state: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"fleet": self.fleet, "state": self.state, "reason": self.reason}


@dataclass(frozen=True)
class FleetStep:
    """A fleet the run reconciles or destroys, with the manager's Decision for it now."""

    fleet: FleetRecord
    decision: Decision
    since: datetime | None = None

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        return {"name": self.fleet.name, "state": self.fleet.state.value,
                "since": self.since.isoformat() if self.since else None,
                "hours": round(age_hours(self.since, now) or 0.0, 2),
                "destroy_count": len(self.decision.destroys), "decision": self.decision.to_dict()}


def _held_row(fleet: str, a: Action) -> dict[str, Any]:
    return {**a.to_dict(), "fleet": fleet}


@dataclass
class CleanupPlan:
    """Everything one nightly-cleanup run does, and everything it reports without touching."""

    reconcile: list[FleetStep] = field(default_factory=list)  # live fleets the run reconciles
    stuck: list[FleetStep] = field(default_factory=list)  # fleets the run destroys
    orphans: list[Noted] = field(default_factory=list)  # VMs the run destroys
    unmanaged: list[Noted] = field(default_factory=list)
    reserved: list[Noted] = field(default_factory=list)  # VMs the provider cannot terminate through its API
    kept: list[Noted] = field(default_factory=list)  # would qualify, but protected/too young/not adoptable
    kept_fleets: list[FleetNote] = field(default_factory=list)  # busy or protected fleets
    deferred: list[FleetNote] = field(default_factory=list)  # would destroy at a provider that cannot be listed
    failed: list[FleetNote] = field(default_factory=list)  # could not even be looked at
    listing_failures: dict[str, str] = field(default_factory=dict)
    now: datetime | None = None

    @property
    def steps(self) -> list[FleetStep]:
        return self.reconcile + self.stuck

    @property
    def destroys(self) -> list[dict[str, Any]]:
        """Exactly the VMs this run destroys: the fleets' Decisions' destroys, then the orphans."""
        out = [{"provider": a.provider, "id": a.instance_id, "name": a.name, "fleet": s.decision.fleet,
                "why": a.reason} for s in self.steps for a in s.decision.destroys]
        out += [{"provider": o.inst.provider, "id": o.inst.id, "name": o.inst.name, "fleet": o.fleet,
                 "why": "orphan"} for o in self.orphans]
        return out

    @property
    def destroy_count(self) -> int:
        return len(self.orphans) + sum(len(s.decision.destroys) for s in self.steps)

    @property
    def held(self) -> list[dict[str, Any]]:
        """What the fleets' Decisions hold back (surplus without ``destroy_surplus``, undestroyable members)."""
        return [_held_row(s.decision.fleet, a) for s in self.steps for a in s.decision.held]

    @property
    def incomplete(self) -> list[str]:
        """Why this run cannot clean up everything (the run reports it and exits non-zero at the end)."""
        out = [f"{p}: could not be listed ({why})" for p, why in self.listing_failures.items()]
        out += [f"fleet {n.fleet}: {n.reason}" for n in self.deferred + self.failed]
        return out

    def over_limit(self, max_destroy: int) -> str | None:
        """Why the run must stop before touching anything (more destroys than ``max_destroy``), or None."""
        if self.destroy_count <= max_destroy:
            return None
        in_stuck = sum(len(s.decision.destroys) for s in self.stuck)
        by_reconcile = sum(len(s.decision.destroys) for s in self.reconcile)
        return (f"this run would destroy {self.destroy_count} VM(s) ({len(self.orphans)} orphan(s), {in_stuck} in "
                f"stuck fleet(s), {by_reconcile} by reconcile), more than max_destroy={max_destroy}; nothing was "
                "touched. Review the plan (run with --check) and raise max_destroy or add to the protect list")

    def to_dict(self) -> dict[str, Any]:
        return {
            "reconcile": [s.fleet.name for s in self.reconcile],
            "reconcile_fleets": [s.to_dict(self.now) for s in self.reconcile],
            "stuck_fleets": [s.to_dict(self.now) for s in self.stuck],
            "stuck_fleet_names": [s.fleet.name for s in self.stuck],
            "fleet_destroys": {s.fleet.name: len(s.decision.destroys) for s in self.steps},
            "orphans": [o.to_dict() for o in self.orphans],
            "unmanaged": [u.to_dict() for u in self.unmanaged],
            "reserved_unterminable": [r.to_dict() for r in self.reserved],
            "held": self.held,
            "kept": [k.to_dict() for k in self.kept] + [k.to_dict() for k in self.kept_fleets],
            "deferred": [d.to_dict() for d in self.deferred],
            "failed": [f.to_dict() for f in self.failed],
            "listing_failures": dict(self.listing_failures),
            "destroys": self.destroys,
            "destroy_count": self.destroy_count,
            "incomplete": self.incomplete,
        }


def state_since(store: Store, fleet: FleetRecord) -> datetime | None:
    """When the fleet entered its current state (from the event log; reconcile does not reset it)."""
    since = None
    for ev in store.events(fleet.id):
        if ev.kind in ("fleet", "resume") and ev.to_state == fleet.state.value:
            since = ev.at
    return parse_time(since or fleet.created_at)


def owner_busy(mgr: FleetManager, fleet: FleetRecord) -> str | None:
    """Why a live vm process owns the fleet now (the run must not touch it), or None."""
    lock = mgr.lock(fleet.name)  # a file lock, or a PostgreSQL advisory lock shared by every host
    if not lock.try_acquire():
        return "another vm process holds the fleet's lock"
    lock.release()
    if fleet.state is FleetState.CREATING and fleet.owner_pid and pid_alive(fleet.owner_pid, fleet.owner_host):
        return f"it is being created by a live process (pid {fleet.owner_pid})"
    return None


def _unterminable(inst: Instance) -> bool:
    return inst.reserved and not inst.can_terminate


def plan_cleanup(mgr: FleetManager, *, providers: Iterable[str] | None = None, stuck_after_hours: float,
                 orphan_min_age_hours: float, protect: ProtectList, destroy_surplus: bool = False,
                 now: datetime | None = None) -> CleanupPlan:
    """List every provider, THEN read the state file, and decide the run. Reads only."""
    s = mgr.session
    names = s.provider_names(list(providers) if providers else None)
    listed = s.instances(names)  # FIRST the providers, THEN the state file (write-ahead rule)
    labelled = {n: s.provider(n).capabilities.labels for n in names}
    return classify(mgr, listed.results, labelled, failures=listed.reasons(), stuck_after_hours=stuck_after_hours,
                    orphan_min_age_hours=orphan_min_age_hours, protect=protect, destroy_surplus=destroy_surplus,
                    now=now)


def classify(mgr: FleetManager, instances: Mapping[str, Sequence[Instance]], labelled: Mapping[str, bool], *,
             failures: Mapping[str, str], stuck_after_hours: float, orphan_min_age_hours: float,
             protect: ProtectList, destroy_surplus: bool = False, now: datetime | None = None) -> CleanupPlan:
    """Classify every listed VM and every recorded fleet (``instances`` listed before this reads the record)."""
    now = now or utc_now()
    plan = CleanupPlan(listing_failures=dict(failures), now=now)
    store = mgr.store if store_exists(mgr.config) else None
    fleets = {f.name: f for f in store.list_fleets()} if store else {}
    by_id = {f.id: f for f in fleets.values()}
    live = {n: f for n, f in fleets.items() if f.state is not FleetState.DESTROYED}
    store_id = store.identities if store else None
    adoptable: dict[tuple[str, str], tuple[Instance, str]] = {}

    for provider, insts in instances.items():
        for inst in insts:
            if inst.state.is_gone:
                continue
            member = store.member_by_instance(provider, inst.id) if store else None
            owner = by_id.get(member.fleet_id) if member is not None else None
            if owner is not None and owner.state is not FleetState.DESTROYED:
                if _unterminable(inst):
                    plan.reserved.append(Noted(inst, "reserved member; the provider cannot terminate it through "
                                                     "its API", fleet=owner.name))
                continue  # its fleet's Decision covers it
            c = claimed(inst, labelled=labelled.get(provider, False), store_id=store_id)
            if not c.ours:
                plan.unmanaged.append(Noted(inst, c.why_not))
                continue
            assert c.fleet is not None
            if c.fleet in live:
                adoptable[(provider, inst.id)] = (inst, c.fleet)
                continue
            record = "destroyed" if c.fleet in fleets else "none"
            age = age_hours(inst.created_at, now)
            pat = protect.match(inst, c.fleet)
            if _unterminable(inst):
                plan.reserved.append(Noted(inst, "orphan on reserved capacity the provider cannot terminate",
                                           fleet=c.fleet, fleet_record=record))
            elif pat:
                plan.kept.append(Noted(inst, f"protected by {pat!r}", fleet=c.fleet, fleet_record=record))
            elif age is not None and age < orphan_min_age_hours:
                plan.kept.append(Noted(inst, f"younger than orphan_min_age_hours ({age:.2f} h)", fleet=c.fleet,
                                       fleet_record=record, age_hours=age))
            else:
                plan.orphans.append(Noted(inst, fleet=c.fleet, fleet_record=record, age_hours=age))

    adopted: set[tuple[str, str]] = set()  # VMs a fleet's Decision is about (resolved, adopted, destroyed...)
    for name, rec in sorted(live.items()):
        busy = owner_busy(mgr, rec)
        if busy:
            plan.kept_fleets.append(FleetNote(name, rec.state.value, busy))
            continue
        assert store is not None
        since = state_since(store, rec)
        hours = age_hours(since, now)
        stuck = rec.state in STUCK_STATES and hours is not None and hours >= stuck_after_hours
        try:
            with mgr.previews_from(instances, failures):  # the lists taken before the record was read
                d = (mgr.preview_destroy(name) if stuck
                     else mgr.preview_reconcile(name, destroy_surplus=destroy_surplus))
        except VmopsError as e:
            plan.failed.append(FleetNote(name, rec.state.value, e.render()))
            continue
        adopted |= {(a.provider, a.instance_id) for a in d.actions + d.held if a.instance_id}
        pat = protect.match_decision(d)
        if pat and d.destroys:
            plan.kept_fleets.append(FleetNote(name, rec.state.value, f"protected by {pat!r}"))
            continue
        blind = sorted({a.provider for a in d.destroys if a.provider in d.unreachable})
        if blind:
            plan.deferred.append(FleetNote(name, rec.state.value, "would destroy VMs at " + ", ".join(blind)
                                           + ", which could not be listed; left for a later run"))
            continue
        (plan.stuck if stuck else plan.reconcile).append(FleetStep(rec, d, since))

    for key, (inst, fleet) in sorted(adoptable.items()):
        if key not in adopted:
            plan.kept.append(Noted(inst, f"named and labelled for live fleet {fleet!r} but not one of its VMs by its "
                                         "record (no member at this provider, or the fleet is busy); left for a "
                                         "human", fleet=fleet))
    return plan




def orphan_verdict(mgr: FleetManager, inst: Instance) -> str | None:
    """None if ``inst`` is an orphan now (re-read from the state file just before it is destroyed);
    otherwise why it is not one."""
    store = mgr.store if store_exists(mgr.config) else None
    c = claimed(inst, labelled=mgr.provider(inst.provider).capabilities.labels,
                store_id=store.identities if store else None)
    if not c.ours:
        return c.why_not
    rec = store.find_fleet(c.fleet) if store and c.fleet else None
    if rec is not None and rec.state is not FleetState.DESTROYED:
        return f"fleet {c.fleet!r} is recorded ({rec.state.value}); it is managed through the fleet, not as an orphan"
    return None


__all__ = ["STUCK_STATES", "CleanupPlan", "FleetNote", "FleetStep", "Noted", "classify", "orphan_verdict", "owner_busy",
           "plan_cleanup", "state_since"]
