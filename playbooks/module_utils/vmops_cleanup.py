"""What the cleanup playbooks may touch, decided in one place (read-only: nothing here changes anything).

Ownership rules (docs/playbooks-design.md explains why they are safe):

* A VM *belongs to vmops fleet F* only if its name parses as a member name of F (``vmops-F-NNN``,
  vmops.fleet.naming) and, on providers whose VMs carry labels, its ``vmops-fleet`` label says F too.
* An *orphan* is a VM that belongs to fleet F by that rule while the state file has no live record of F
  (no fleet F at all, or fleet F already destroyed). Only orphans and the recorded members of stuck
  fleets are ever destroyed by nightly-cleanup; everything else is reported.
* The instance list is read BEFORE the state file. The fleet manager writes a fleet's row before any
  provider call (write-ahead), so a VM seen in the list already has its fleet row by the time we read the
  records: a fleet being created right now can never look like an orphan.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from ansible.module_utils.vmops_common import ProtectList, age_hours, brief, parse_time, utc_now

try:
    from vmops.fleet.naming import FLEET_LABEL, parse_member_name
    from vmops.model import Instance, State
    from vmops.state import FleetRecord, FleetState, MemberRecord, Store
    from vmops.state.records import LIVE
except ImportError:  # pragma: no cover - require_vmops reports it
    pass

#: Fleet states nightly-cleanup destroys once they have lasted longer than the threshold.
STUCK_STATES = ("failed", "creating")
#: Fleet states in which ``reconcile`` may destroy VMs (finishing a destroy, a rollback or a trim).
RECONCILE_MAY_DESTROY = ("destroying", "creating", "failed")


def fleet_of(inst: "Instance", has_labels: bool) -> str | None:
    """The fleet ``inst`` belongs to by name (and label, where the provider has labels), else None."""
    parsed = parse_member_name(inst.name)
    if parsed is None:
        return None
    fleet = parsed[0]
    if has_labels and inst.labels.get(FLEET_LABEL) != fleet:
        return None
    return fleet


def orphan_verdict(inst: "Instance", store: "Store", has_labels: bool) -> str | None:
    """None if ``inst`` is an orphan now (re-read from the state file); otherwise why it is not."""
    parsed = parse_member_name(inst.name)
    if parsed is None:
        return f"name {inst.name!r} is not a vmops fleet member name"
    fleet = fleet_of(inst, has_labels)
    if fleet is None:
        return f"its {FLEET_LABEL!r} label does not name fleet {parsed[0]!r}"
    rec = store.find_fleet(fleet)
    if rec is not None and rec.state is not FleetState.DESTROYED:
        return f"fleet {fleet!r} is recorded ({rec.state.value}); it is managed through the fleet, not as an orphan"
    return None


@dataclass
class StuckFleet:
    fleet: "FleetRecord"
    since: datetime | None
    members: list["MemberRecord"]  # recorded members vmops may still have at a provider
    present: list["Instance"]  # the fleet's VMs the providers list now (recorded or carrying its name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.fleet.name,
            "state": self.fleet.state.value,
            "since": self.since.isoformat() if self.since else None,
            "hours": round(age_hours(self.since) or 0.0, 2),
            "members": [m.to_dict() for m in self.members],
            "present": [brief(i) for i in self.present],
            "destroy_count": self.destroy_count,
        }

    @property
    def destroy_count(self) -> int:
        return len(self.present)


@dataclass
class CleanupPlan:
    reconcile: list[str] = field(default_factory=list)  # live fleets nightly-cleanup reconciles
    reconcile_may_destroy: dict[str, int] = field(default_factory=dict)  # fleet -> VMs reconcile may destroy
    stuck: list[StuckFleet] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    unmanaged: list[dict[str, Any]] = field(default_factory=list)
    reserved: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)  # would qualify, but protected/too young/busy
    listing_failures: dict[str, str] = field(default_factory=dict)

    @property
    def destroy_count(self) -> int:
        """Most VMs this run can destroy: orphans + stuck fleets' VMs + what reconcile may finish off."""
        return len(self.orphans) + sum(s.destroy_count for s in self.stuck) + sum(self.reconcile_may_destroy.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "reconcile": self.reconcile,
            "reconcile_may_destroy": self.reconcile_may_destroy,
            "stuck_fleets": [s.to_dict() for s in self.stuck],
            "stuck_fleet_names": [s.fleet.name for s in self.stuck],
            "orphans": self.orphans,
            "unmanaged": self.unmanaged,
            "reserved_unterminable": self.reserved,
            "kept": self.kept,
            "listing_failures": self.listing_failures,
            "destroy_count": self.destroy_count,
        }


def state_since(store: "Store", fleet: "FleetRecord") -> datetime | None:
    """When the fleet entered its current state (from the event log; reconcile does not reset it)."""
    since = None
    for ev in store.events(fleet.id):
        if ev.kind in ("fleet", "resume") and ev.to_state == fleet.state.value:
            since = ev.at
    return parse_time(since or fleet.created_at)


def _owner_busy(store: "Store", fleet: "FleetRecord") -> str | None:
    from vmops.procs import pid_alive

    lock = store.fleet_lock(fleet.name)  # a file lock, or a PostgreSQL advisory lock shared by every host
    if not lock.try_acquire():
        return "another vm process holds the fleet's lock"
    lock.release()
    if fleet.state is FleetState.CREATING and fleet.owner_pid and pid_alive(fleet.owner_pid, fleet.owner_host):
        return f"it is being created by a live process (pid {fleet.owner_pid})"
    return None


def plan_cleanup(
    *,
    instances: Mapping[str, Sequence["Instance"]],
    labelled: Mapping[str, bool],
    store: "Store",
    home: Any,
    stuck_after_hours: float,
    orphan_min_age_hours: float,
    protect: ProtectList,
    now: datetime | None = None,
) -> CleanupPlan:
    """Classify every VM the providers listed and every recorded fleet. Reads only.

    ``instances`` must have been listed BEFORE this call reads the state file (see the module doc).
    """
    now = now or utc_now()
    plan = CleanupPlan()
    fleets = {f.name: f for f in store.list_fleets()}
    by_id = {f.id: f for f in fleets.values()}
    live = {n: f for n, f in fleets.items() if f.state is not FleetState.DESTROYED}
    members = {n: store.members(f.id) for n, f in live.items()}
    # VMs of each live fleet the providers list now: recorded members, plus VMs named for the fleet at a
    # provider where it has members (reconcile/destroy adopt exactly those).
    present: dict[str, list[Instance]] = {n: [] for n in live}

    for provider, insts in instances.items():
        for inst in insts:
            if inst.state.is_gone:
                continue
            member = store.member_by_instance(provider, inst.id)
            owner = by_id.get(member.fleet_id) if member is not None else None
            fleet = fleet_of(inst, labelled.get(provider, False))
            if owner is not None and owner.state is not FleetState.DESTROYED:
                if member.status in LIVE:
                    present[owner.name].append(inst)
                if inst.reserved and not inst.can_terminate:
                    plan.reserved.append(brief(inst, fleet=owner.name,
                                               reason="reserved member; the provider cannot terminate it via API"))
                continue
            if fleet is None:
                plan.unmanaged.append(brief(inst, reason=_why_unmanaged(inst, labelled.get(provider, False))))
                continue
            if fleet in live:
                if any(m.provider == provider for m in members[fleet]):
                    present[fleet].append(inst)  # reconcile/destroy of the fleet adopts it
                else:
                    plan.kept.append(brief(inst, fleet=fleet, reason=(
                        f"named for live fleet {fleet!r}, which never had a member at {provider}; "
                        "left for a human (see the fleet's record)")))
                continue
            # an orphan: fleet-named VM with no live record of its fleet
            row = brief(inst, fleet=fleet, fleet_record="destroyed" if fleet in fleets else "none")
            pat = protect.match(inst, fleet)
            age = age_hours(inst.created_at, now)
            if inst.reserved and not inst.can_terminate:
                plan.reserved.append({**row, "reason": "orphan on reserved capacity the provider cannot terminate"})
            elif pat:
                plan.kept.append({**row, "reason": f"protected by {pat!r}"})
            elif age is not None and age < orphan_min_age_hours:
                plan.kept.append({**row, "reason": f"younger than orphan_min_age_hours ({age:.2f} h)"})
            else:
                plan.orphans.append(row)

    for name, rec in sorted(live.items()):
        row = {"fleet": name, "state": rec.state.value}
        busy = _owner_busy(store, rec)
        if busy:
            plan.kept.append({**row, "reason": busy})
            continue
        vms = present[name]
        pat = protect.match_fleet(name) or next((protect.match(i, name) for i in vms if protect.match(i, name)), None)
        terminable = [i for i in vms if not (i.reserved and not i.can_terminate)]
        since = state_since(store, rec)
        hours = age_hours(since, now)
        stuck = rec.state.value in STUCK_STATES and hours is not None and hours >= stuck_after_hours
        may_destroy = rec.state.value in RECONCILE_MAY_DESTROY
        if pat and (stuck or may_destroy):
            plan.kept.append({**row, "reason": f"protected by {pat!r}"})
            continue
        if stuck:
            plan.stuck.append(StuckFleet(rec, since, [m for m in members[name] if m.status in LIVE], terminable))
            continue
        plan.reconcile.append(name)
        if may_destroy and terminable:
            plan.reconcile_may_destroy[name] = len(terminable)
    return plan


def _why_unmanaged(inst: "Instance", has_labels: bool) -> str:
    parsed = parse_member_name(inst.name)
    if parsed is not None and has_labels:
        return f"named like a member of fleet {parsed[0]!r} but without its {FLEET_LABEL!r} label; not vmops'"
    return "not created by a vmops fleet"


# ---- idle reaper -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdleRule:
    names: tuple[str, ...]  # shell patterns on the VM name; empty = any name
    name_regex: str | None
    labels: Mapping[str, str]  # every key must match (value may be a shell pattern)
    older_than_hours: float
    action: str  # "stop" or "destroy"
    include_fleet_members: bool = False

    def matches(self, inst: "Instance") -> bool:
        if self.names and not any(fnmatch.fnmatchcase(inst.name or "", p) for p in self.names):
            return False
        if self.name_regex and not re.search(self.name_regex, inst.name or ""):
            return False
        for k, v in self.labels.items():
            if k not in inst.labels or not fnmatch.fnmatchcase(str(inst.labels[k]), str(v)):
                return False
        return True


def plan_idle(
    *,
    instances: Mapping[str, Sequence["Instance"]],
    can_stop: Mapping[str, bool],
    store: "Store",
    rule: IdleRule,
    protect: ProtectList,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(act, skipped)``: VMs the rule stops/destroys now, and matching VMs it leaves alone (with why)."""
    now = now or utc_now()
    act: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for provider, insts in instances.items():
        for inst in insts:
            if inst.state.is_gone or not rule.matches(inst):
                continue
            member = store.member_by_instance(provider, inst.id)
            fleet = parse_member_name(inst.name)
            created = inst.created_at or (parse_time(member.created_at) if member else None)
            age = age_hours(created, now)
            row = brief(inst, age_hours=None if age is None else round(age, 2), action=rule.action)
            pat = protect.match(inst, fleet[0] if fleet else None)
            reason = None
            if pat:
                reason = f"protected by {pat!r}"
            elif inst.reserved:
                reason = "reserved instance"
            elif (member is not None or fleet is not None) and not rule.include_fleet_members:
                reason = "member of a vmops fleet (use fleet-down, or set include_fleet_members)"
            elif age is None:
                reason = "age unknown (the provider reports no creation time and vmops did not create it)"
            elif age < rule.older_than_hours:
                continue  # not idle long enough: not a match worth reporting
            elif rule.action == "stop" and not can_stop.get(provider, False):
                reason = f"{provider} VMs cannot be stopped (action is stop, never escalated to destroy)"
            elif rule.action == "stop" and inst.state is not State.RUNNING:
                reason = f"not running ({inst.state.value})"
            elif rule.action == "destroy" and inst.state in (State.DELETING,):
                reason = "already being deleted"
            if reason:
                skipped.append({**row, "reason": reason})
            else:
                act.append(row)
    return act, skipped


def hours_ago(hours: float, now: datetime | None = None) -> datetime:
    return (now or utc_now()) - timedelta(hours=hours)


# ---- reconcile preview (check mode) -------------------------------------------------------------


def preview_reconcile(session: Any, store: "Store", fleet: "FleetRecord") -> list[str]:
    """What ``FleetManager.reconcile`` would change, computed with reads only (for check mode)."""
    members = store.members(fleet.id)
    providers = sorted({m.provider for m in members})
    out = session.instances(providers) if providers else None
    changes: list[str] = []
    if out is not None:
        for p, err in out.failures.items():
            changes.append(f"{p}: could not list instances ({err}); reconcile would skip it")
    live_after: list[str] = []
    for p in providers:
        if out is None or p not in out.results:
            continue
        listing = [i for i in out.results[p] if not i.state.is_gone]
        by_id = {i.id: i for i in listing}
        recorded = {m.instance_id for m in members if m.instance_id}
        for m in (m for m in members if m.provider == p):
            if m.instance_id:
                alive = m.instance_id in by_id
                if alive and m.status not in LIVE:
                    changes.append(f"{m.name} ({m.instance_id}) still exists at {p}")
                elif not alive and m.status in LIVE:
                    changes.append(f"{m.name} ({m.instance_id}) at {p}: would be marked gone")
                if alive:
                    live_after.append(m.name)
            elif m.status in LIVE:
                if any(i.name == m.name and i.id not in recorded for i in listing):
                    changes.append(f"{m.name}: would be found at {p} by name")
                    live_after.append(m.name)
                else:
                    changes.append(f"{m.name}: no VM with this name at {p}; would be marked failed")
        for i in listing:
            if i.id not in recorded and parse_member_name(i.name) and parse_member_name(i.name)[0] == fleet.name \
                    and store.member_by_instance(p, i.id) is None:
                changes.append(f"would adopt {i.name} ({i.id}) at {p}")
                live_after.append(i.name)
    st = fleet.state
    if st is FleetState.DESTROYING or (st is FleetState.DESTROYED and live_after):
        changes.append(f"would finish the interrupted destroy ({len(live_after)} VM(s) left)")
    elif st is FleetState.CREATING:
        changes.append(f"would finish the interrupted create ({len(live_after)} VM(s) exist; rolled back if "
                       f"fewer than min {fleet.min_count} run)")
    elif st is FleetState.FAILED and live_after:
        changes.append(f"would destroy {len(live_after)} member(s) left by an interrupted rollback")
    return changes
