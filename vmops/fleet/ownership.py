"""The one ownership rule: which VMs belong to which vmops fleet (docs/design.md, "Ownership").

A VM belongs to fleet F of *this* vmops installation only if

* its name is exactly what vmops makes for a member of F (``vmops-F-NNN``, :mod:`vmops.fleet.naming`), and
* where the provider has labels, its labels agree: ``vmops-fleet`` names F and ``vmops-store`` names this
  state store's identity, or one of the identities of stores imported into it (`vm state import`), so two
  vmops installations, or a hand-made look-alike, never claim each other's VMs.

Everything else is "not ours": no fleet command, cleanup or reaper ever adopts or destroys it. Every
caller (fleet lifecycle, cleanup, idle reaper, inventory orphans, dashboard, Ansible modules) asks here.
A recorded member is tracked by its provider id, not by this rule: the rule decides only about VMs the
record does not (yet) hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet

from vmops.fleet.naming import parse_member_name
from vmops.model import Instance

#: Label carrying the fleet name on providers whose VMs have labels.
FLEET_LABEL = "vmops-fleet"
#: Label carrying the identity of the state store that made the VM.
STORE_LABEL = "vmops-store"


@dataclass(frozen=True)
class Claim:
    """Whose a VM is by the ownership rule: fleet name and member sequence number, or why it is nobody's."""

    fleet: str | None
    seq: int | None
    why_not: str | None = None

    @property
    def ours(self) -> bool:
        return self.fleet is not None


def labels_for(fleet: str, store_id: str) -> dict[str, str]:
    """The labels a member of ``fleet`` carries where the provider has labels."""
    return {FLEET_LABEL: fleet, STORE_LABEL: store_id}


def claim(inst: Instance, *, labelled: bool, store_id: str | AbstractSet[str]) -> Claim:
    """Apply the rule to one VM. ``labelled``: does the VM's provider have labels (``Capabilities.labels``)."""
    parsed = parse_member_name(inst.name)
    if parsed is None:
        return Claim(None, None, "not created by a vmops fleet (its name is not a fleet member name)")
    fleet, seq = parsed
    if labelled:
        labels = inst.labels or {}
        if labels.get(FLEET_LABEL) != fleet:
            return Claim(None, None, f"named like a member of fleet {fleet!r} but without its {FLEET_LABEL!r} "
                                     "label; not vmops'")
        ids = {store_id} if isinstance(store_id, str) else store_id
        if labels.get(STORE_LABEL) not in ids:
            return Claim(None, None, f"labelled for fleet {fleet!r} of another vmops state store "
                                     f"({STORE_LABEL}={labels.get(STORE_LABEL)!r}); not this installation's")
    return Claim(fleet, seq)


def claimed(inst: Instance, *, labelled: bool, store_id: str | AbstractSet[str] | None) -> Claim:
    """``claim`` where there may be no state store yet (``store_id`` None): then a VM at a provider with
    labels is nobody's here (it cannot carry this installation's identity), and elsewhere the name decides."""
    if store_id is not None:
        return claim(inst, labelled=labelled, store_id=store_id)
    found = claim(inst, labelled=False, store_id="")
    if found.ours and labelled:
        return Claim(None, None, f"named like a member of fleet {found.fleet!r}, but there is no vmops state store "
                                 "here to own it; not this installation's")
    return found


def belongs(inst: Instance, fleet: str, *, labelled: bool, store_id: str | AbstractSet[str]) -> bool:
    """Is ``inst`` a VM of ``fleet`` (this installation's) by the ownership rule?"""
    return claim(inst, labelled=labelled, store_id=store_id).fleet == fleet
