"""The idle-reaper policy: which VMs matching a selector and older than N hours are stopped (or destroyed)
now, and which matching VMs are left alone, with why (docs/design.md, section 10). Reads only.

Fleet members are told by the one ownership rule (``vmops.fleet.ownership``) and by the record: a VM a
fleet records, or one that is a fleet's by the rule, is left to the fleet commands unless
``include_fleet_members``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from vmops.cleanup.nightly import Noted
from vmops.cleanup.protect import ProtectList, age_hours, parse_time, utc_now
from vmops.fleet.ownership import claimed
from vmops.model import Instance, State
from vmops.session import Session
from vmops.state import Store, store_exists, store_for

ACTIONS = ("stop", "destroy")


@dataclass(frozen=True)
class IdleRule:
    names: tuple[str, ...]  # shell patterns on the VM name; empty = any name
    name_regex: str | None
    labels: Mapping[str, str]  # every key must match (value may be a shell pattern)
    older_than_hours: float
    action: str  # "stop" or "destroy"
    include_fleet_members: bool = False

    def validated(self) -> "IdleRule":
        if not (self.names or self.name_regex or self.labels):
            raise ValueError("idle-reaper needs a selector: give names, name_regex or labels (matching every VM "
                             "is never a default)")
        if self.name_regex:
            try:
                re.compile(self.name_regex)
            except re.error as e:
                raise ValueError(f"name_regex {self.name_regex!r} is not a valid regular expression ({e})") from None
        if self.older_than_hours < 0:
            raise ValueError("older_than_hours must be 0 or more")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        return self

    def matches(self, inst: Instance) -> bool:
        if self.names and not any(fnmatch.fnmatchcase(inst.name or "", p) for p in self.names):
            return False
        if self.name_regex and not re.search(self.name_regex, inst.name or ""):
            return False
        for k, v in self.labels.items():
            if k not in inst.labels or not fnmatch.fnmatchcase(str(inst.labels[k]), str(v)):
                return False
        return True


@dataclass
class IdlePlan:
    action: str
    act: list[Noted] = field(default_factory=list)  # VMs the run stops/destroys
    skipped: list[Noted] = field(default_factory=list)  # matching VMs left alone, with why
    listing_failures: dict[str, str] = field(default_factory=dict)

    def over_limit(self, max_actions: int) -> str | None:
        if len(self.act) <= max_actions:
            return None
        return (f"idle-reaper would {self.action} {len(self.act)} VM(s), more than max_actions={max_actions}; "
                "nothing was touched. Narrow the pattern, protect VMs, or raise max_actions")

    def to_dict(self) -> dict[str, Any]:
        return {"act": [a.to_dict() for a in self.act], "skipped": [s.to_dict() for s in self.skipped],
                "listing_failures": dict(self.listing_failures), "action": self.action}


def plan_idle(session: Session, rule: IdleRule, protect: ProtectList, *, providers: Iterable[str] | None = None,
              now: datetime | None = None) -> IdlePlan:
    """List the providers, then read the record, and pick what the rule acts on. Reads only."""
    rule = rule.validated()
    names = session.provider_names(list(providers) if providers else None)
    listed = session.instances(names)
    caps = {n: session.provider(n).capabilities for n in names}
    store = store_for(session.config) if store_exists(session.config) else None
    try:
        plan = classify_idle(listed.results, can_stop={n: c.stop_start for n, c in caps.items()},
                             labelled={n: c.labels for n, c in caps.items()}, store=store, rule=rule,
                             protect=protect, now=now)
    finally:
        if store is not None:
            store.close()
    plan.listing_failures = {p: e.render() for p, e in listed.failures.items()}
    return plan


def classify_idle(instances: Mapping[str, Sequence[Instance]], *, can_stop: Mapping[str, bool],
                  labelled: Mapping[str, bool], store: Store | None, rule: IdleRule, protect: ProtectList,
                  now: datetime | None = None) -> IdlePlan:
    now = now or utc_now()
    plan = IdlePlan(rule.action)
    store_id = store.identities if store else None
    for provider, insts in instances.items():
        for inst in insts:
            if inst.state.is_gone or not rule.matches(inst):
                continue
            member = store.member_by_instance(provider, inst.id) if store else None
            fleet = claimed(inst, labelled=labelled.get(provider, False), store_id=store_id).fleet
            created = inst.created_at or (parse_time(member.created_at) if member else None)
            age = age_hours(created, now)
            pat = protect.match(inst, fleet)
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
            elif rule.action == "destroy" and inst.state is State.DELETING:
                reason = "already being deleted"
            row = Noted(inst, reason, age_hours=age, action=rule.action)
            (plan.skipped if reason else plan.act).append(row)
    return plan


__all__ = ["ACTIONS", "IdlePlan", "IdleRule", "classify_idle", "plan_idle"]
