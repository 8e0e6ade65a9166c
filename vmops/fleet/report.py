"""Results and errors of fleet operations: what was tried where, and why it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from vmops.errors import InsufficientCapacity, Interrupted, PartialFailure
from vmops.state.records import FleetRecord, MemberRecord


@dataclass(frozen=True)
class Attempt:
    """One try to make one VM somewhere (or a provider/region that was never tried, and why)."""

    provider: str
    region: str | None
    native_type: str | None
    member: str | None
    outcome: str  # "running", "failed", "skipped", "cleaned up", ...
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "region": self.region,
            "native_type": self.native_type,
            "member": self.member,
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Undestroyed:
    """A member vmops could not destroy, and why (it stays recorded)."""

    member: MemberRecord
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.member.to_dict(), "reason": self.reason}


def _table(rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str]]) -> str:
    from vmops.cli.output import Column, render_table

    return render_table(list(rows), [Column(k, h) for k, h in cols])


ATTEMPT_COLS = (("provider", "PROVIDER"), ("region", "REGION"), ("member", "MEMBER"), ("outcome", "OUTCOME"),
                ("reason", "WHY"))
UNDESTROYED_COLS = (("provider", "PROVIDER"), ("id", "ID"), ("name", "NAME"), ("reason", "WHY"))


def attempts_table(attempts: Sequence[Attempt]) -> str:
    return _table([a.to_dict() for a in attempts], ATTEMPT_COLS)


def undestroyed_table(items: Sequence[Undestroyed]) -> str:
    return _table([u.to_dict() for u in items], UNDESTROYED_COLS)


class _TableError:
    """Mixin: one sentence, then the hint, then tables on the following lines."""

    tables: tuple[str, ...] = ()

    def render(self) -> str:  # type: ignore[override]
        text = super().render()  # type: ignore[misc]
        tables = [t for t in getattr(self, "tables", ()) if t]
        return text + ("\n" + "\n\n".join(tables) if tables else "")


class FleetCreateFailed(_TableError, InsufficientCapacity):
    """Fewer than ``--min`` VMs could be made; everything made was rolled back (or is listed as left)."""

    def __init__(self, message: str, *, attempts: Sequence[Attempt], undestroyed: Sequence[Undestroyed] = (),
                 hint: str | None = None) -> None:
        self.attempts = list(attempts)
        self.undestroyed = list(undestroyed)
        self.tables = (attempts_table(self.attempts) if self.attempts else "",
                       ("Left behind (still recorded):\n" + undestroyed_table(self.undestroyed))
                       if self.undestroyed else "")
        super().__init__(message, hint=hint)
        if self.undestroyed:
            self.exit_code = PartialFailure.exit_code


class FleetDestroyIncomplete(_TableError, PartialFailure):
    """Some members could not be destroyed; they stay recorded with the reason."""

    def __init__(self, message: str, *, undestroyed: Sequence[Undestroyed], hint: str | None = None) -> None:
        self.undestroyed = list(undestroyed)
        self.tables = (undestroyed_table(self.undestroyed),)
        super().__init__(message, hint=hint)


class FleetInterrupted(_TableError, Interrupted):
    def __init__(self, message: str, *, undestroyed: Sequence[Undestroyed] = (), hint: str | None = None) -> None:
        self.undestroyed = list(undestroyed)
        self.tables = (undestroyed_table(self.undestroyed) if self.undestroyed else "",)
        super().__init__(message, hint=hint)


@dataclass
class CreateResult:
    fleet: FleetRecord
    members: list[MemberRecord]
    attempts: list[Attempt]
    resumed: bool = False
    shortfall: int = 0
    plan: Any = None  # vmops.fleet.planner.Plan

    @property
    def running(self) -> list[MemberRecord]:
        from vmops.state.records import MemberStatus

        return [m for m in self.members if m.status is MemberStatus.RUNNING]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.to_dict(),
            "resumed": self.resumed,
            "running": len(self.running),
            "shortfall": self.shortfall,
            "members": [m.to_dict() for m in self.members],
            "attempts": [a.to_dict() for a in self.attempts],
        }


@dataclass
class FleetView:
    """A fleet and its members as the record (refreshed from the providers, unless asked not to) has them."""

    fleet: FleetRecord
    members: list[MemberRecord]
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    @property
    def running(self) -> int:
        from vmops.state.records import MemberStatus

        return sum(1 for m in self.members if m.status is MemberStatus.RUNNING)

    @property
    def price_per_hour(self) -> float:
        from vmops.state.records import MemberStatus

        return round(sum(m.price_per_hour or 0.0 for m in self.members
                         if m.status in (MemberStatus.RUNNING, MemberStatus.ACCEPTED,
                                         MemberStatus.DESTROY_FAILED)), 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.fleet.to_dict(),
            "running": self.running,
            "price_per_hour": self.price_per_hour,
            "members": [m.to_dict() for m in self.members],
            "warnings": list(self.warnings),
            "changes": list(self.changes),
        }
