"""`vm state check`: compare the record with the providers for every fleet, changing nothing.

It reports what `vm fleet reconcile` would change (the lifecycle's own Decisions, ``preview_reconcile``),
without adopting, destroying or writing anything, and every VM that is a fleet's by the ownership rule while
its fleet is not on record; each difference is named by fleet and VM. Exit status 0 when the record and the providers agree, 14 when they do not (or when a provider
could not be listed, so agreement cannot be confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from typing import TYPE_CHECKING

from vmops.fleet.decision import ActionKind
from vmops.fleet.ownership import claimed
from vmops.model import State
from vmops.state import FleetState

if TYPE_CHECKING:
    from vmops.fleet.manager import FleetManager

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


#: How each record-only action of a reconcile Decision reads as a difference.
_SAYS = {
    ActionKind.MARK_GONE: "recorded as running but no longer exists at the provider",
    ActionKind.MARK_FAILED: "recorded as requested but the create never took effect (no VM of this name)",
    ActionKind.RESOLVE: "create answer was lost: exists at the provider",
    ActionKind.ADOPT: "exists at the provider but not on record (reconcile adopts it)",
}


def check_state(mgr: "FleetManager") -> CheckReport:
    """What `vm fleet reconcile` would do to every fleet on record (its Decisions, made by the one lifecycle:
    vmops.fleet.lifecycle), plus VMs that are a fleet's by the ownership rule while no live fleet of that
    name is on record. Reads only."""
    report = CheckReport()
    listing = mgr.session.instances()  # first the providers, once for every fleet; then the record
    failures = listing.reasons()
    fleets = mgr.store.list_fleets()
    report.fleets = len(fleets)
    live = {f.name for f in fleets if f.state is not FleetState.DESTROYED}
    for f in fleets:
        if f.state is FleetState.DESTROYED:
            continue
        with mgr.previews_from(listing.results, failures):
            d = mgr.preview_reconcile(f.name)
        report.unreachable.update(d.unreachable)
        for a in d.actions:
            if a.kind is ActionKind.REFRESH:
                if a.reason != "current state":
                    report.differences.append(Difference(f.name, a.name, a.provider, a.instance_id, a.reason))
                continue
            what = _SAYS.get(a.kind, f"reconcile would {a.kind.value.replace('_', ' ')} it: {a.reason}")
            report.differences.append(Difference(f.name, a.name, a.provider, a.instance_id, what))
        for h in d.held:
            report.differences.append(Difference(f.name, h.name, h.provider, h.instance_id, f"held: {h.reason}"))
    report.unreachable.update(failures)
    identities = mgr.store.identities
    for provider, insts in sorted(listing.results.items()):
        labelled = mgr.provider(provider).capabilities.labels
        for inst in sorted(insts, key=lambda i: i.name):
            if inst.state is State.DELETED or mgr.store.member_by_instance(provider, inst.id) is not None:
                continue
            fleet = claimed(inst, labelled=labelled, store_id=identities).fleet
            if fleet is not None and fleet not in live:
                report.differences.append(Difference(fleet, inst.name, provider, inst.id,
                                                     "exists at the provider; its fleet is not on record"))
    return report
