"""Decide: pure functions from an Observation to a Decision (no I/O, no clock, no provider calls).

The safety rules live here and nowhere else (docs/design.md, "Fleet lifecycle"):

* The record follows the providers: members whose VMs are gone are marked gone, lost create answers are
  resolved by name, VMs that are the fleet's by the ownership rule but unrecorded are adopted. None of
  that touches a VM.
* A reconcile never destroys a member that exists and is not already being destroyed. It finishes a
  destroy that was asked for (fleet ``destroying``, members ``destroying``) and cleans up creates that
  failed (a VM in ``error`` that never ran). Surplus members (more than the fleet's count, e.g. a VM found
  late by its name) are destroyed only with ``destroy_surplus``; otherwise they are held and shown.
* A fleet destroy destroys every member of the fleet, adopted ones included (they are the fleet's by the
  ownership rule), except members the provider can never destroy through its API (held and reported).
* Cost before and after: what the billing members cost per hour now, and what they will once done.
"""

from __future__ import annotations

from vmops import pricing
from vmops.fleet.decision import Action, ActionKind, Decision
from vmops.fleet.health import bills
from vmops.fleet.observe import Observation, status_for
from vmops.model import Instance, State
from vmops.state import LIVE, FleetState, MemberRecord, MemberStatus


def _known_price(m: MemberRecord, inst: Instance | None = None) -> float | None:
    """What a member bills per hour now: by the one price rule from the provider's view when listed; None when
    it bills and no rule knows its price."""
    state = inst.state if inst is not None else m.state
    if not bills(state):
        return 0.0
    if inst is not None:
        rule = pricing.member_price(inst).per_hour
        if rule is not None:
            return rule
    return m.price_per_hour


def _price(m: MemberRecord, inst: Instance | None = None) -> float:
    """``_known_price`` for the totals (an unknown price adds nothing; ``_note_unpriced`` says so)."""
    return _known_price(m, inst) or 0.0


def _note_unpriced(d: Decision, vms: list[tuple[Action | None, MemberRecord | None, Instance | None]]) -> None:
    """Say beside the totals how many billing VMs they leave out for want of a price (never count them $0)."""
    n = sum(1 for _, m, inst in vms if m is not None and (m.status is not MemberStatus.REQUESTED or m.instance_id)
            and _known_price(m, inst) is None)
    if n:
        d.notes.append(f"{n} billing VM(s) have no known price and are not in the hourly totals")


def sync_actions(obs: Observation, *, adopt: bool) -> list[Action]:
    """Record-only actions that bring the record in line with the providers.

    Without ``adopt`` (the fleet's lock is not ours) nothing is resolved by name or adopted: another
    process may be creating those VMs right now.
    """
    out: list[Action] = []
    recorded = {(m.provider, m.instance_id) for m in obs.members if m.instance_id}
    claimed: set[tuple[str, str]] = set()
    for m in obs.members:
        if not obs.listed(m.provider):
            continue
        if m.instance_id:
            inst = obs.instance(m)
            if inst is not None:
                if m.status not in LIVE:
                    out.append(Action(ActionKind.REFRESH, m.name, m.provider, m.instance_id,
                                      f"recorded {m.status.value} but still exists at {m.provider}", m.id,
                                      _price(m, inst)))
                else:
                    out.append(Action(ActionKind.REFRESH, m.name, m.provider, m.instance_id, "current state",
                                      m.id, _price(m, inst)))
            elif m.status in LIVE:
                why = ("destroyed" if m.status is MemberStatus.DESTROYING
                       else f"no longer exists at {m.provider} (deleted, not by a fleet command)")
                out.append(Action(ActionKind.MARK_GONE, m.name, m.provider, m.instance_id, why, m.id))
        elif m.status in LIVE and adopt:
            found = [i for i in obs.ours(m.provider) if i.name == m.name and (m.provider, i.id) not in recorded
                     and (m.provider, i.id) not in claimed and (m.provider, i.id) not in obs.recorded_elsewhere]
            if found:
                inst = found[0]
                claimed.add((m.provider, inst.id))
                out.append(Action(ActionKind.RESOLVE, m.name, m.provider, inst.id,
                                  f"create answer was lost; found it as {inst.id}", m.id, _price(m, inst)))
            else:
                out.append(Action(ActionKind.MARK_FAILED, m.name, m.provider, None,
                                  "the create never took effect (no VM with this name)", m.id))
    if adopt:
        for p in sorted(obs.listings):
            for inst in obs.ours(p):
                key = (p, inst.id)
                if key in recorded or key in claimed or key in obs.recorded_elsewhere:
                    continue
                price = (pricing.member_price(inst).per_hour or 0.0) if bills(inst.state) else 0.0
                out.append(Action(ActionKind.ADOPT, inst.name, p, inst.id,
                                  f"named and labelled for fleet {obs.fleet.name!r} but not recorded", None, price))
    return out


def _after_sync(obs: Observation, sync: list[Action]) -> list[tuple[Action | None, MemberRecord | None, Instance | None]]:
    """The fleet's VMs as they will be recorded once ``sync`` is applied: (action, member, instance)."""
    by_member = {a.member_id: a for a in sync if a.member_id is not None}
    out: list[tuple[Action | None, MemberRecord | None, Instance | None]] = []
    listed = {(i.provider, i.id): i for p in obs.listings for i in obs.listings[p]}
    for m in obs.members:
        a = by_member.get(m.id)
        if a is not None and a.kind in (ActionKind.MARK_GONE, ActionKind.MARK_FAILED):
            continue
        if a is not None and a.kind is ActionKind.RESOLVE:
            out.append((a, m, listed.get((m.provider, a.instance_id or ""))))
        elif m.status in LIVE or (a is not None and a.kind is ActionKind.REFRESH):
            out.append((a, m, obs.instance(m)))
    for a in sync:
        if a.kind is ActionKind.ADOPT:
            out.append((a, None, listed.get((a.provider, a.instance_id or ""))))
    return out


def resume_counts(obs: Observation, sync: list[Action]) -> tuple[int, int]:
    """(made, starting): the fleet's VMs a resume keeps once ``sync`` is applied that are made (running, stopped
    or between) and that are still being created (the resume waits for those before it creates the rest).
    A member at a provider that could not be observed counts as recorded."""
    made = starting = 0
    for _a, m, inst in _after_sync(obs, sync):
        status = status_for(inst.state) if inst is not None else (m.status if m is not None else None)
        if status is MemberStatus.RUNNING:
            made += 1
        elif status in (MemberStatus.ACCEPTED, MemberStatus.REQUESTED):
            starting += 1
    return made, starting


def _cost(vms: list[tuple[Action | None, MemberRecord | None, Instance | None]]) -> float:
    total = 0.0
    for a, m, inst in vms:
        if m is None:
            total += a.price_per_hour if a is not None else 0.0
        elif m.status is not MemberStatus.REQUESTED or m.instance_id:
            total += _price(m, inst)
    return round(total, 4)


def _target(a: Action | None, m: MemberRecord | None, inst: Instance | None, reason: str) -> Action:
    name = m.name if m is not None else (a.name if a is not None else "?")
    provider = m.provider if m is not None else (a.provider if a is not None else "?")
    iid = (inst.id if inst is not None else None) or (m.instance_id if m is not None else None) or \
        (a.instance_id if a is not None else None)
    price = _price(m, inst) if m is not None else (a.price_per_hour if a is not None else 0.0)
    return Action(ActionKind.DESTROY, name, provider, iid, reason, m.id if m is not None else None, price)


def _undestroyable(m: MemberRecord | None, inst: Instance | None, terminate_reserved: dict[str, bool]) -> str | None:
    if m is not None and m.undestroyable:
        return m.last_error or "the provider cannot destroy it through its API"
    reserved = (inst.reserved and not inst.can_terminate) if inst is not None else False
    if m is not None and m.reserved and not terminate_reserved.get(m.provider, True):
        reserved = True
    if reserved:
        return "reserved instance: the provider cannot terminate it through the API"
    return None


def decide_destroy(obs: Observation, sync: list[Action], terminate_reserved: dict[str, bool], *,
                   include_unrecorded: bool = False) -> Decision:
    """``vm fleet destroy F``: every member of the fleet goes, except what the provider can never destroy.

    VMs that are the fleet's by the ownership rule but not on record (a duplicate left by a lost answer, a
    hand-made look-alike on a provider without labels) were never named by the user: they are held, and
    destroyed only with ``include_unrecorded`` (or once a reconcile, which shows them, adopts them)."""
    unrecorded = [a for a in sync if a.kind is ActionKind.ADOPT]
    if not include_unrecorded:
        sync = [a for a in sync if a.kind is not ActionKind.ADOPT]
    vms = _after_sync(obs, sync)
    d = Decision(obs.fleet.name, "destroy", list(sync), unreachable=dict(obs.failures))
    d.cost_before = _cost(vms) + (0.0 if include_unrecorded else sum(a.price_per_hour for a in unrecorded))
    _note_unpriced(d, vms)
    kept = 0.0
    if not include_unrecorded:
        for a in unrecorded:
            d.held.append(Action(ActionKind.DESTROY, a.name, a.provider, a.instance_id,
                                 "named for this fleet but not on record (kept: --include-unrecorded destroys it; "
                                 "`vm fleet reconcile` adopts it)", None, a.price_per_hour))
            kept += a.price_per_hour
    for a, m, inst in vms:
        if m is not None and m.status is MemberStatus.REQUESTED and not m.instance_id and not (
                a is not None and a.kind is ActionKind.RESOLVE):
            # Outcome unknown and its provider could not be listed: nothing to send a destroy to yet.
            d.held.append(Action(ActionKind.DESTROY, m.name, m.provider, None,
                                 f"create outcome unknown and {m.provider} cannot be listed now; "
                                 "run destroy again once it answers", m.id))
            continue
        why = _undestroyable(m, inst, terminate_reserved)
        if why is not None:
            target = _target(a, m, inst, why)
            d.held.append(target)
            kept += target.price_per_hour
            continue
        d.actions.append(_target(a, m, inst, "fleet destroy"))
    for p in obs.failures:  # why: ``unreachable``
        d.notes.append(f"{p} could not be listed; its members are destroyed by id where known")
    d.cost_after = round(kept, 4)
    d.next_state = _after_destroy(d)
    return d


def join_destroys(fleet: str, parts: list[Decision]) -> Decision:
    """The destroy Decision of a whole fleet from the parts its lanes decided (one provider each)."""
    d = Decision.joined(fleet, "destroy", parts)
    d.next_state = _after_destroy(d)
    return d


def _after_destroy(d: Decision) -> str:
    return FleetState.DESTROYED.value if not d.held else FleetState.DESTROYING.value


def decide_reconcile(obs: Observation, sync: list[Action], terminate_reserved: dict[str, bool], *,
                     destroy_surplus: bool = False) -> Decision:
    """``vm fleet reconcile F`` on a settled observation (accepted creates already waited for)."""
    fleet = obs.fleet
    if fleet.state is FleetState.DESTROYING or (fleet.state is FleetState.DESTROYED and any(
            m is not None for _, m, _ in _after_sync(obs, sync))) or (
            fleet.state is FleetState.DESTROYED and any(a.kind is ActionKind.ADOPT for a in sync)):
        d = decide_destroy(obs, sync, terminate_reserved, include_unrecorded=True)  # reconcile adopts them
        d.command = "reconcile"
        d.notes.insert(0, "finishing a destroy that was asked for earlier")
        return d
    vms = _after_sync(obs, sync)
    d = Decision(fleet.name, "reconcile", list(sync), unreachable=dict(obs.failures))
    d.cost_before = _cost(vms)
    _note_unpriced(d, vms)
    removed = 0.0
    exist: list[tuple[Action | None, MemberRecord | None, Instance | None]] = []
    for a, m, inst in vms:
        state = inst.state if inst is not None else (m.state if m is not None else State.UNKNOWN)
        if m is not None and m.status is MemberStatus.DESTROYING and inst is not None:
            if _undestroyable(m, inst, terminate_reserved) is None:
                t = _target(a, m, inst, "finishing a destroy that was started earlier")
                d.actions.append(t)
                removed += t.price_per_hour
            continue
        if m is not None and m.status is MemberStatus.ACCEPTED and state is State.ERROR:
            t = _target(a, m, inst, "its create failed (error) and it never ran: cleaning up")
            d.actions.append(t)
            removed += t.price_per_hour
            continue
        if m is not None and m.status is MemberStatus.REQUESTED and not m.instance_id and not (
                a is not None and a.kind is ActionKind.RESOLVE):
            d.notes.append(f"{m.name}: create outcome unknown ({m.provider} cannot be listed now)")
            continue
        if m is not None and m.status is MemberStatus.DESTROY_FAILED and m.undestroyable:
            continue  # reported by the views; never retried
        if state in (State.RUNNING, State.STOPPED, State.STOPPING, State.STARTING) or (
                a is not None and a.kind is ActionKind.ADOPT):
            exist.append((a, m, inst))
    surplus = sorted(exist, key=lambda t: (t[1].seq if t[1] is not None else 10 ** 9))[fleet.count:]
    for a, m, inst in reversed(surplus):
        t = _target(a, m, inst, f"beyond the fleet's count of {fleet.count}")
        if destroy_surplus and _undestroyable(m, inst, terminate_reserved) is None:
            d.actions.append(t)
            removed += t.price_per_hour
        else:
            d.held.append(Action(ActionKind.DESTROY, t.name, t.provider, t.instance_id,
                                 t.reason + " (kept: --destroy-surplus, or destroy_surplus in Ansible, removes it)", t.member_id, t.price_per_hour))
    n = len(exist) - (len(surplus) if destroy_surplus else 0)
    if fleet.state is FleetState.CREATING:
        d.notes.append(f"the create that owned this fleet is gone: finishing it with the {n} VM(s) that exist")
        if n >= fleet.count:
            d.next_state = FleetState.ACTIVE.value
        elif n >= fleet.min_count:
            d.next_state = FleetState.PARTIAL.value
        else:
            d.next_state = FleetState.FAILED.value
            d.notes.append(f"only {n} of min {fleet.min_count} exist: they are kept (`vm fleet destroy "
                           f"{fleet.name}` removes them; `vm fleet create --name {fleet.name} ...` resumes)")
    elif fleet.state in (FleetState.ACTIVE, FleetState.PARTIAL, FleetState.DEGRADED):
        if n >= fleet.count:
            d.next_state = FleetState.ACTIVE.value
        elif n >= fleet.min_count:
            d.next_state = FleetState.PARTIAL.value
        else:
            d.next_state = FleetState.DEGRADED.value
    else:
        d.next_state = fleet.state.value
        if fleet.state is FleetState.FAILED and exist:
            d.notes.append(f"{len(exist)} VM(s) of this failed fleet still exist and are kept "
                           f"(`vm fleet destroy {fleet.name}` removes them)")
    d.cost_after = round(d.cost_before - removed, 4)
    return d


def decide_power(obs: Observation, sync: list[Action], *, start: bool, can_stop: dict[str, bool]) -> Decision:
    """``vm fleet stop F`` / ``vm fleet start F``: every member that exists and is not already there."""
    vms = _after_sync(obs, sync)
    d = Decision(obs.fleet.name, "start" if start else "stop", list(sync), unreachable=dict(obs.failures))
    d.cost_before = _cost(vms)
    _note_unpriced(d, vms)
    delta = 0.0
    want, kind = (State.STOPPED, ActionKind.START) if start else (State.RUNNING, ActionKind.STOP)
    for a, m, inst in vms:
        if m is None or inst is None or inst.state is not want:
            continue
        price = m.price_per_hour or 0.0
        act = Action(kind, m.name, m.provider, inst.id, "fleet " + kind.value, m.id, 0.0 if start else price)
        if not can_stop.get(m.provider, False):
            d.held.append(Action(kind, m.name, m.provider, inst.id,
                                 f"{m.provider} cannot stop or start VMs", m.id, price))
            continue
        d.actions.append(act)
        delta += price if start else -price
    for p in obs.failures:  # why: ``unreachable``
        d.notes.append(f"{p} could not be listed; its members are left as they are")
    d.cost_after = round(d.cost_before + delta, 4)
    d.next_state = obs.fleet.state.value
    return d


def settle_needed(obs: Observation, sync: list[Action]) -> bool:
    """Are there accepted creates to wait for before deciding (an interrupted create)?"""
    resolved = {a.member_id for a in sync if a.kind is ActionKind.RESOLVE}
    return any(m.status is MemberStatus.ACCEPTED or m.id in resolved for m in obs.members if m.status in LIVE)


__all__ = ["decide_destroy", "decide_power", "decide_reconcile", "settle_needed", "status_for", "sync_actions"]
