"""`vm state check`: compare the record with the providers for every fleet, changing nothing.

It reports what ``FleetManager.sync`` (and so `vm fleet reconcile`) would change, without adopting,
destroying or writing anything: each provider is listed once, and every difference is named by fleet
and VM. Exit status 0 when the record and the providers agree, 14 when they do not (or when a provider
could not be listed, so agreement cannot be confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmops.fleet.naming import parse_member_name
from vmops.fleet.observe import status_for
from vmops.model import Instance, State
from vmops.session import Session
from vmops.state import LIVE, MemberStatus, Store

AGREE, DIFFER = 0, 14


@dataclass(frozen=True)
class Difference:
    fleet: str
    vm: str
    provider: str
    instance_id: str | None
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"fleet": self.fleet, "vm": self.vm, "provider": self.provider, "id": self.instance_id,
                "difference": self.what}


@dataclass
class CheckReport:
    differences: list[Difference] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # provider -> why it could not be listed
    fleets: int = 0

    @property
    def exit_code(self) -> int:
        return AGREE if not self.differences and not self.unreachable else DIFFER

    def to_dict(self) -> dict[str, Any]:
        return {"fleets": self.fleets, "agree": self.exit_code == AGREE,
                "differences": [d.to_dict() for d in self.differences], "unreachable": dict(self.unreachable)}


def check_state(store: Store, session: Session) -> CheckReport:
    report = CheckReport()
    listing = session.instances()
    for name, err in listing.failures.items():
        report.unreachable[name] = err.render()
    at: dict[str, dict[str, Instance]] = {p: {i.id: i for i in insts if i.state is not State.DELETED}
                                          for p, insts in listing.results.items()}
    fleets = store.list_fleets()
    members = store.members_by_fleet()
    report.fleets = len(fleets)
    recorded: set[tuple[str, str]] = set()
    by_name: dict[str, str] = {}  # fleet name (as in VM names) -> fleet name on record
    for f in fleets:
        by_name[f.name] = f.name
        for m in members.get(f.id, []):
            if m.instance_id:
                recorded.add((m.provider, m.instance_id))
            if m.provider not in at:
                if m.status in LIVE and m.provider not in report.unreachable:
                    report.unreachable[m.provider] = "not enabled in this configuration"
                continue
            seen = at[m.provider]

            def diff(what: str, iid: str | None = m.instance_id) -> None:
                report.differences.append(Difference(f.name, m.name, m.provider, iid, what))

            if m.instance_id:
                inst = seen.get(m.instance_id)
                if inst is None:
                    if m.status in LIVE:
                        diff(f"recorded as {m.status.value} but no longer exists at the provider")
                elif m.status in (MemberStatus.REQUESTED, MemberStatus.ACCEPTED):
                    if status_for(inst.state) is not m.status:
                        diff(f"recorded as {m.status.value}, {inst.state.value} at the provider")
                elif m.status in (MemberStatus.DESTROYED, MemberStatus.GONE, MemberStatus.FAILED):
                    diff(f"recorded as {m.status.value} but still exists at the provider ({inst.state.value})")
            elif m.status in LIVE:
                found = [i for i in seen.values() if i.name == m.name]
                if found:
                    diff(f"create answer was lost: exists at the provider as {found[0].id}", found[0].id)
                else:
                    diff(f"recorded as {m.status.value} but the create never took effect (no VM of this name)")
    for provider, insts in sorted(at.items()):
        for inst in sorted(insts.values(), key=lambda i: i.name):
            parsed = parse_member_name(inst.name)
            if parsed is None or (provider, inst.id) in recorded:
                continue
            fleet = parsed[0]
            if fleet in by_name:
                if not any(m.name == inst.name and not m.instance_id and m.status in LIVE
                           for f in fleets if f.name == fleet for m in members.get(f.id, [])):
                    report.differences.append(Difference(fleet, inst.name, provider, inst.id,
                                                         "exists at the provider but not on record (reconcile adopts it)"))
            else:
                report.differences.append(Difference(fleet, inst.name, provider, inst.id,
                                                     "exists at the provider; its fleet is not on record"))
    return report
