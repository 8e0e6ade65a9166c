"""A Decision: exactly what a fleet command is about to do, as plain data (Terraform's plan, Ansible's
check mode). ``vmops.fleet.lifecycle`` makes it from an observation (pure); ``vmops.fleet.members``
carries it out; every front end prints the same object before acting (``--dry-run`` prints only it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ActionKind(str, Enum):
    """What happens to one member or VM."""

    REFRESH = "refresh"  # the record takes the provider's current state/price (no change at the provider)
    RESOLVE = "resolve"  # a create whose answer was lost: its VM was found by name and is recorded
    ADOPT = "adopt"  # a VM that is the fleet's by the ownership rule but was not recorded: recorded now
    MARK_GONE = "mark_gone"  # the provider no longer has it: recorded as gone (or destroyed)
    MARK_FAILED = "mark_failed"  # a create never took effect (no VM with its name): recorded as failed
    SETTLE = "settle"  # wait for an accepted create to run or fail
    STOP = "stop"
    START = "start"
    DESTROY = "destroy"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value

    @property
    def touches_vm(self) -> bool:
        """Does carrying it out change anything at a provider?"""
        return self in (ActionKind.STOP, ActionKind.START, ActionKind.DESTROY)


@dataclass(frozen=True)
class Action:
    """One thing a command does (or would do, if it is held back)."""

    kind: ActionKind
    name: str  # the VM's name
    provider: str
    instance_id: str | None
    reason: str
    member_id: int | None = None  # None for a VM not (yet) recorded
    price_per_hour: float = 0.0  # what the VM bills per hour now (0 for stopped, gone or prepaid)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.kind.value, "name": self.name, "provider": self.provider, "id": self.instance_id,
                "reason": self.reason, "price_per_hour": round(self.price_per_hour, 4)}


@dataclass
class Decision:
    """What one command does to one fleet, and why, with the hourly cost before and after.

    ``held``: actions the rules do not allow without an explicit flag (``flag`` says which) or that cannot
    be carried out at all; they are shown, never done.
    """

    fleet: str
    command: str
    actions: list[Action] = field(default_factory=list)
    held: list[Action] = field(default_factory=list)
    cost_before: float = 0.0
    cost_after: float = 0.0
    next_state: str | None = None
    notes: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # provider -> why it could not be observed

    def of(self, kind: ActionKind) -> list[Action]:
        return [a for a in self.actions if a.kind is kind]

    @property
    def destroys(self) -> list[Action]:
        return self.of(ActionKind.DESTROY)

    @property
    def touches_vms(self) -> bool:
        return any(a.kind.touches_vm for a in self.actions)

    @classmethod
    def joined(cls, fleet: str, command: str, parts: list["Decision"]) -> "Decision":
        """One Decision from the parts decided for one provider each (a destroy's lanes)."""
        d = cls(fleet, command)
        for part in parts:
            d.actions += part.actions
            d.held += part.held
            d.notes += part.notes
            d.unreachable.update(part.unreachable)
            d.cost_before += part.cost_before
            d.cost_after += part.cost_after
        d.cost_before, d.cost_after = round(d.cost_before, 4), round(d.cost_after, 4)
        return d  # next_state is the command's rule (vmops.fleet.lifecycle)

    def summary(self, where: str = "") -> str:
        """One line: counts per action and the cost change (``where``: the part it covers, "at crusoe")."""
        counts: dict[str, int] = {}
        for a in self.actions:
            if a.kind is not ActionKind.REFRESH:
                counts[a.kind.value] = counts.get(a.kind.value, 0) + 1
        what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) or "no changes"
        held = f"; {len(self.held)} held back" if self.held else ""
        return (f"{self.command} {self.fleet}{' ' + where if where else ''}: {what}{held}; "
                f"${self.cost_before:,.2f}/hour -> "
                f"${self.cost_after:,.2f}/hour")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet,
            "command": self.command,
            "actions": [a.to_dict() for a in self.actions if a.kind is not ActionKind.REFRESH],
            "held": [a.to_dict() for a in self.held],
            "destroy_count": len(self.destroys),
            "cost_before_per_hour": round(self.cost_before, 4),
            "cost_after_per_hour": round(self.cost_after, 4),
            "next_state": self.next_state,
            "notes": list(self.notes),
            "unreachable": dict(self.unreachable),
        }
