"""What unattended cleanup must never touch, and how old a VM is (docs/design.md, section 10).

``ProtectList``: names, ids, ``provider:id``, ``provider:name`` or fleet names (shell patterns) that no
cleanup, reaper or playbook task may stop or destroy. ``Guard``: the check an acting command applies to
the Decision it is about to carry out (the manager's ``confirm``), so what is done is at most what the
plan showed: nothing protected, no more destroys than planned (``Protected``/``DestroyLimitExceeded``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from vmops.errors import VmopsError
from vmops.fleet.decision import Decision
from vmops.model import Instance


class Refused(VmopsError):
    """A cleanup step refused a Decision (protected VM, or more destroys than allowed): nothing was touched."""

    exit_code = 14
    kind = "limit"
    default_hint = "Nothing was touched; review the plan (check mode) and the protect list or max_destroy"


class Protected(Refused):
    """The Decision would touch a protected VM or fleet."""


class DestroyLimitExceeded(Refused):
    """The Decision would destroy more VMs than allowed."""


@dataclass(frozen=True)
class ProtectList:
    """Names, ids or shell-style patterns that no cleanup step may stop or destroy.

    An entry matches a VM's name, its id, ``provider:id``, ``provider:name``, or the name of the fleet the
    VM belongs to (so protecting ``train`` protects every member of fleet ``train``).
    """

    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, items: Iterable[str] | None) -> "ProtectList":
        return cls(tuple(str(p).strip() for p in (items or ()) if str(p).strip()))

    def match_vm(self, provider: str, vm_id: str | None, name: str | None, fleet: str | None = None) -> str | None:
        """The first pattern that protects this VM, or None."""
        keys = [k for k in (name, vm_id, f"{provider}:{vm_id}" if vm_id else None,
                            f"{provider}:{name}" if name else None, fleet) if k]
        for pat in self.patterns:
            if any(fnmatch.fnmatchcase(k, pat) for k in keys):
                return pat
        return None

    def match(self, inst: Instance, fleet: str | None = None) -> str | None:
        return self.match_vm(inst.provider, inst.id, inst.name, fleet)

    def match_fleet(self, fleet: str) -> str | None:
        return next((p for p in self.patterns if fnmatch.fnmatchcase(fleet, p)), None)

    def match_decision(self, d: Decision) -> str | None:
        """A pattern protecting the fleet or any VM the Decision stops or destroys."""
        return self.match_fleet(d.fleet) or next(
            (pat for a in d.actions if a.kind.touches_vm
             for pat in [self.match_vm(a.provider, a.instance_id, a.name, d.fleet)] if pat), None)


@dataclass(frozen=True)
class Guard:
    """The manager's ``confirm`` for unattended runs: refuse (raise ``Refused``) a Decision that touches a
    protected VM or destroys more VMs than ``max_destroy``; otherwise go ahead."""

    protect: ProtectList = ProtectList()
    max_destroy: int | None = None

    def __call__(self, d: Decision) -> bool:
        pat = self.protect.match_decision(d)
        if pat:
            raise Protected(f"{d.command} of fleet {d.fleet!r} would touch VMs protected by {pat!r}")
        if self.max_destroy is not None and len(d.destroys) > self.max_destroy:
            raise DestroyLimitExceeded(f"{d.command} of fleet {d.fleet!r} would destroy {len(d.destroys)} VM(s), more than "
                          f"max_destroy={self.max_destroy}")
        return True


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def age_hours(when: datetime | None, now: datetime | None = None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return ((now or utc_now()) - when).total_seconds() / 3600.0
