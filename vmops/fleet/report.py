"""Results and errors of fleet operations: what was tried where, and why it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from vmops.errors import InsufficientCapacity, Interrupted, NotFound, PartialFailure, VmopsError
from vmops.fleet.health import Counts, count, health
from vmops.state.records import FleetRecord, MemberRecord, MemberStatus

if TYPE_CHECKING:
    from vmops.fleet.planner import Plan
    from vmops.state.store import Store


@dataclass(frozen=True)
class Attempt:
    """One try to make one VM somewhere (or a provider/region that was never tried, and why)."""

    provider: str
    region: str | None
    native_type: str | None
    member: str | None
    outcome: str  # "running", "failed", "unknown" (never answered, not found: may exist), "skipped", "cleaned up", ...
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


@dataclass(frozen=True)
class Table:
    """A table of details attached to an error, as plain data (front ends render it, whole)."""

    title: str | None
    columns: tuple[tuple[str, str], ...]  # (key, heading)
    rows: tuple[dict[str, Any], ...]


ATTEMPT_COLS = (("provider", "PROVIDER"), ("region", "REGION"), ("member", "MEMBER"), ("outcome", "OUTCOME"),
                ("reason", "WHY"))
UNDESTROYED_COLS = (("provider", "PROVIDER"), ("id", "ID"), ("name", "NAME"), ("reason", "WHY"))


def attempts_table(attempts: Sequence[Attempt]) -> Table:
    return Table(None, ATTEMPT_COLS, tuple(a.to_dict() for a in attempts))


def undestroyed_table(items: Sequence[Undestroyed], title: str | None = None) -> Table:
    return Table(title, UNDESTROYED_COLS, tuple(u.to_dict() for u in items))


class FleetCreateFailed(InsufficientCapacity):
    """Fewer than ``--min`` VMs could be made; what this command made was rolled back (or is listed as left)."""

    def __init__(self, message: str, *, attempts: Sequence[Attempt], undestroyed: Sequence[Undestroyed] = (),
                 hint: str | None = None) -> None:
        self.attempts = list(attempts)
        self.undestroyed = list(undestroyed)
        self.tables = tuple(t for t in (
            attempts_table(self.attempts) if self.attempts else None,
            undestroyed_table(self.undestroyed, "Left behind (still recorded):") if self.undestroyed else None,
        ) if t is not None)
        super().__init__(message, hint=hint)
        if self.undestroyed:
            self.exit_code = PartialFailure.exit_code


class FleetDestroyIncomplete(PartialFailure):
    """Some members could not be destroyed; they stay recorded with the reason."""

    def __init__(self, message: str, *, undestroyed: Sequence[Undestroyed], hint: str | None = None) -> None:
        self.undestroyed = list(undestroyed)
        self.tables = (undestroyed_table(self.undestroyed),)
        super().__init__(message, hint=hint)


class FleetInterrupted(Interrupted):
    def __init__(self, message: str, *, undestroyed: Sequence[Undestroyed] = (), hint: str | None = None) -> None:
        self.undestroyed = list(undestroyed)
        self.tables = (undestroyed_table(self.undestroyed),) if self.undestroyed else ()
        super().__init__(message, hint=hint)


class UnrecordedKept(PartialFailure):
    """A fleet was destroyed, but VMs named for it that are not on record were kept (never named by the user)."""

    def __init__(self, fleet: str, kept: Sequence[Any]) -> None:  # Sequence[vmops.fleet.decision.Action]
        self.kept = list(kept)
        self.tables = (Table(None, (("provider", "PROVIDER"), ("id", "ID"), ("name", "NAME"), ("reason", "WHY")),
                             tuple(a.to_dict() for a in self.kept)),)
        super().__init__(
            f"fleet {fleet!r} is destroyed, but {len(self.kept)} VM(s) named for it and not on record were kept "
            "(they may bill)",
            hint=f"`vm fleet destroy {fleet} --include-unrecorded` destroys them too; `vm list` shows them")


class OutcomeUnknownMembers(PartialFailure):
    """A command ended with members whose create outcome is unknown: VMs that may exist and bill."""

    def __init__(self, fleet: str, members: Sequence[MemberRecord]) -> None:
        self.members = list(members)
        self.tables = (Table(None, (("provider", "PROVIDER"), ("name", "NAME"), ("last_error", "WHY")),
                             tuple(m.to_dict() for m in self.members)),)
        super().__init__(
            f"fleet {fleet!r}: {len(self.members)} create(s) have an unknown outcome (their provider could not "
            "confirm them; the VMs may exist and bill)",
            hint=f"Run `vm fleet reconcile {fleet}` once the provider answers: it finds them and finishes the "
                 f"fleet (`vm fleet status {fleet}` shows them)")


@dataclass
class CreateResult:
    fleet: FleetRecord
    members: list[MemberRecord]
    attempts: list[Attempt]
    resumed: bool = False
    shortfall: int = 0
    plan: "Plan | None" = None
    unknown: list[MemberRecord] = field(default_factory=list)  # creates whose outcome is unknown

    def error(self) -> VmopsError | None:
        """What a front end must report after showing the result (unknown outcomes are not success)."""
        return OutcomeUnknownMembers(self.fleet.name, self.unknown) if self.unknown else None

    def left_out(self) -> list[str]:
        """For a front end to warn with: each provider the plan could not ask (down, hung, breaker open), so a
        fleet placed without it says so (a sentence each)."""
        skipped = self.plan.skipped if self.plan is not None else []
        return [f"{s.provider} was not used: {s.reason}" for s in skipped if s.error is not None]

    @property
    def running(self) -> list[MemberRecord]:
        return [m for m in self.members if m.status is MemberStatus.RUNNING]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.to_dict(),
            "resumed": self.resumed,
            "running": len(self.running),
            "shortfall": self.shortfall,
            "members": [m.to_dict() for m in self.members],
            "attempts": [a.to_dict() for a in self.attempts],
            "unknown_outcome": [m.to_dict() for m in self.unknown],
        }


@dataclass
class CreatePreview:
    """What `fleet create` would do (its dry run), nothing recorded or sent: for a new fleet the plan; for
    one it would resume, the VMs the resume keeps and the plan for the rest, to the terms it would work to."""

    plan: "Plan"
    min_count: int  # the fewest running VMs the create counts as success (the recorded one on a resume)
    resuming: FleetRecord | None = None
    terms: list[str] = field(default_factory=list)  # what a resume keeps and changes, in words
    made: int = 0  # the resumed fleet's VMs that are made (running, stopped or between)
    starting: int = 0  # still being created: a resume waits for them, then creates what is still missing
    unobserved: dict[str, str] = field(default_factory=dict)  # provider -> why it was not seen (counted as recorded)
    unanswered: VmopsError | None = None  # no provider answered the plan: their error, not a capacity one

    @property
    def reachable(self) -> int:
        return self.made + self.starting + self.plan.planned

    def summary(self) -> str | None:
        """A resume in one sentence, as every front end shows it above the plan (None: not a resume)."""
        f = self.resuming
        if f is None:
            return None
        waits = f", waits for the {self.starting} still being created" if self.starting else ""
        more = f"; creates {self.plan.count} more" if self.plan.count else "; creates nothing more"
        return f"Resume of fleet {f.name} (was {f.state.value}): keeps {self.made} of its {f.count} VM(s){waits}{more}"

    def error(self) -> VmopsError | None:
        """When the minimum is out of reach, what the create would fail with: no provider answered
        (``unanswered``), or InsufficientCapacity (a new fleet is refused; a resume leaves the fleet as it was)."""
        if self.reachable >= self.min_count:
            return None
        if self.unanswered is not None:
            return self.unanswered
        if self.resuming is None:
            return InsufficientCapacity(
                f"only {self.plan.planned} of the {self.min_count} {self.plan.gpu} VM(s) needed can be placed on "
                "current capacity; nothing was created",
                hint="The plan (`vm fleet create --dry-run`) shows what each provider can supply; lower --count/--min "
                     "or try another --gpu")
        return InsufficientCapacity(
            f"resuming fleet {self.resuming.name!r} would reach only {self.reachable} of its minimum "
            f"{self.min_count} ({self.made} made, {self.starting} being created, {self.plan.planned} more can be "
            "placed on current capacity)",
            hint="See the plan above; the resume would leave the fleet as it is. Lower --min, or try later")

    def to_dict(self) -> dict[str, Any]:
        out = self.plan.to_dict()
        out["min"] = self.min_count
        if self.resuming is not None:
            out["resume"] = {"fleet": self.resuming.name, "was": self.resuming.state.value, "terms": self.terms,
                             "made": self.made, "starting": self.starting, "create": self.plan.count,
                             "unobserved": dict(self.unobserved)}
        return out


@dataclass
class FleetView:
    """A fleet and its members as the record (refreshed from the providers, unless asked not to) has them,
    counted by the members' real states (``vmops.fleet.health.count``: one rule for every view)."""

    fleet: FleetRecord
    members: list[MemberRecord]
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    decision: Any = None  # vmops.fleet.decision.Decision of the command that produced this view, if any
    #: provider -> why it could not be observed: its members are shown as last recorded, not as they are
    unobserved: dict[str, str] = field(default_factory=dict)

    @classmethod
    def observed(cls, fleet: FleetRecord, members: list[MemberRecord], failures: dict[str, str],
                 changes: list[str] | None = None, decision: Any = None) -> "FleetView":
        """A view after the providers were asked: those that could not be (``failures``) are named, once
        as a warning and once in ``unobserved``."""
        return cls(fleet, members, [f"{p}: could not refresh ({e})" for p, e in failures.items()],
                   list(changes or []), decision, dict(failures))

    def seen(self, member: MemberRecord) -> bool:
        """Whether ``member``'s state comes from its provider in this view (else: as last recorded)."""
        return member.provider not in self.unobserved

    def shown_state(self, member: MemberRecord) -> str:
        """``member``'s state as every front end shows it: with a ``?`` when it may exist and is only as last
        recorded (its provider could not be observed)."""
        return member.state.value + ("" if self.seen(member) or not member.status.may_exist else "?")

    def shown(self, member: MemberRecord) -> dict[str, Any]:
        """``member`` as a row of every front end's members table: ``state`` as ``shown_state``, and ``status``
        what the member is now. The record's status says how vmops' own work on it went (requested, accepted,
        failed, destroying, ...); once the member is made (``running``) the provider's state says the rest, so
        a stopped member reads ``stopped``, not ``running`` beside a state ``stopped``. JSON keeps both as
        recorded."""
        row = member.to_dict()
        row["state"] = self.shown_state(member)
        if member.status is MemberStatus.RUNNING:
            row["status"] = row["state"]
        return row

    def incomplete(self) -> PartialFailure | None:
        """What a caller raises, after showing this view, when some providers could not be observed: the
        view is not the whole truth (exit 14, like a `vm list` that could not list every provider). Only
        members that may exist count: one already gone or failed is final whoever answers."""
        stale = sorted({m.provider for m in self.members if m.status.may_exist and not self.seen(m)})
        if not stale:
            return None
        names = " and ".join(stale)
        return PartialFailure(f"fleet {self.fleet.name!r}: could not observe {names}; the members there are shown "
                              "as last recorded", hint="Run the command again once it answers (the view's warnings "
                              "say why it did not)")

    @property
    def counts(self) -> Counts:
        return count(self.members)

    @property
    def running(self) -> int:
        return int(self.counts.running)

    @property
    def price_per_hour(self) -> float:
        return float(self.counts.price_per_hour)

    @property
    def state(self) -> str:
        """The fleet's state as its members show it (``degraded`` below its minimum)."""
        return health(self.fleet, self.counts).value

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        out = {
            **self.fleet.to_dict(),
            "state": self.state,
            "running": c.running,
            "stopped": c.stopped,
            "starting": c.starting,
            "destroying": c.destroying,
            "unknown_outcome": c.unknown_outcome,
            "billing": c.billing,
            "price_per_hour": c.price_per_hour,
            "unpriced": c.unpriced,
            "members": [m.to_dict() for m in self.members],
            "warnings": list(self.warnings),
            "changes": list(self.changes),
            "unobserved": dict(self.unobserved),
        }
        if self.decision is not None:
            out["decision"] = self.decision.to_dict()
        return out


def no_fleets_yet() -> NotFound:
    """What a command that reads fleets says when there is no state file yet (reading never makes one)."""
    return NotFound("there are no fleets on record (no state file yet)", hint="Create one with `vm fleet create`")


def views_on_record(store: "Store | None") -> list[FleetView]:
    """Every fleet as the record has it, no provider asked (``store`` None: no state file, no fleets). The
    manager's ``list()`` and `vm fleet list` (which loads no manager: its start-up) both read through here."""
    if store is None:
        return []
    members = store.members_by_fleet()
    return [FleetView(f, members.get(f.id, [])) for f in store.list_fleets()]


def view_on_record(store: "Store | None", name: str) -> FleetView:
    """One fleet as the record has it, no provider asked (``status(refresh=False)``, `fleet status
    --no-refresh`); NotFound without a state file or without that fleet."""
    if store is None:
        raise no_fleets_yet()
    fleet = store.get_fleet(name)
    return FleetView(fleet, store.members(fleet.id))
