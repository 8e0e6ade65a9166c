"""One `fleet create` (or resume): rounds of concurrent creates, batched waits, failover, and the outcome
(active, partial, or roll back what this command made). ``FleetManager.create`` builds a ``CreateRun``
with the collaborators it needs (store, adapters, the member actions, a planner) and executes it."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    NotFound,
    NotSent,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    StateError,
    Unreachable,
    VmopsError,
)
from vmops.fleet.interrupt import Abandoned, StopRequest
from vmops.fleet.lanes import Lanes
from vmops.fleet.members import UNREADABLE_WHILE_BOOTING, Members
from vmops.fleet.naming import member_name
from vmops.fleet.observe import member_fields, status_for
from vmops.fleet.ownership import belongs, labels_for
from vmops.fleet.planner import Plan
from vmops.fleet.policies import capacity
from vmops.fleet.progress import Listener, Progress
from vmops.fleet.report import Attempt, CreateResult, FleetCreateFailed, FleetInterrupted, Undestroyed
from vmops.fleet.spec import FleetSpec, Limits
from vmops.model import CreateRequest, Instance, Offer, State
from vmops.reserved import reservation_request
from vmops.providers.base import Provider
from vmops.state import LIVE, FleetRecord, FleetState, MemberRecord, MemberStatus, Store

#: A member's last error while its create's outcome is unknown (it stays requested: the views, destroy and
#: reconcile look it up by name once the provider answers).
UNKNOWN_OUTCOME = "create outcome unknown and the provider could not be listed"


def _is_unconfirmed(m: MemberRecord) -> bool:
    """An accepted member (its VM was made) whose provider could not be read while it booted."""
    return m.status is MemberStatus.ACCEPTED and (m.last_error or "").startswith(UNREADABLE_WHILE_BOOTING)


def _is_unknown(m: MemberRecord) -> bool:
    """A member whose VM may exist but was not seen: unconfirmed, or a create whose answer was lost (no id)."""
    return _is_unconfirmed(m) or (m.status is MemberStatus.REQUESTED and not m.instance_id)


@dataclass
class _Options:
    """The plan's offers as a failover list: remaining capacity per offer, dead offers and providers."""

    offers: list[Offer]
    remaining: dict[int, float] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_plan(cls, plan: Plan) -> "_Options":
        opts = cls(list(plan.options))
        for o in opts.offers:
            opts.remaining[id(o)] = capacity(o)
        for p in plan.placements:
            opts.remaining[id(p.offer)] -= p.count
        return opts

    def kill(self, offer: Offer) -> None:
        with self.lock:
            self.dead.add(id(offer))

    def is_dead(self, offer: Offer) -> bool:
        with self.lock:
            return id(offer) in self.dead

    def kill_provider(self, provider: str) -> None:
        with self.lock:
            self.dead.update(id(o) for o in self.offers if o.provider == provider)

    def left(self) -> float:
        """How many more VMs the live options can take (infinite where an offer's capacity is unknown)."""
        with self.lock:
            return sum(self.remaining[id(o)] for o in self.offers if id(o) not in self.dead)

    def next(self) -> Offer | None:
        """The next offer in plan order that is alive and has capacity left (taking one unit)."""
        with self.lock:
            for o in self.offers:
                if id(o) not in self.dead and self.remaining[id(o)] > 0:
                    self.remaining[id(o)] -= 1
                    return o
            return None


@dataclass
class CreateContext:
    """What a create run needs from the command that runs it (no back-reference to a manager)."""

    store: Store
    provider: Callable[[str], Provider]
    members: Members
    plan: Callable[[FleetSpec, int], Plan]  # (spec, count) -> plan, reads only
    sync: Callable[[FleetRecord], list[str]]  # observe + apply the record-only actions; returns changes
    limits: Limits
    request: StopRequest
    note: Callable[[str], None]
    listener: Listener | None = None


class CreateRun:
    """One `fleet create` (or resume): rounds of concurrent creates, batched waits, failover, outcome.

    Safety (docs/design.md, "Fleet lifecycle"): a rollback destroys only members this run created; a
    resume that cannot reach the minimum leaves the fleet as it was (its earlier members untouched, its
    earlier state restored) and says so.
    """

    def __init__(self, ctx: CreateContext, fleet: FleetRecord, spec: FleetSpec, resumed: bool,
                 prior_state: FleetState | None = None) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.fleet = fleet
        self.spec = spec
        self.resumed = resumed
        self.prior_state = prior_state
        self.request = ctx.request
        self.stop = ctx.request.stop
        self.progress = Progress(ctx.listener)
        self.attempts: list[Attempt] = []
        self.alock = threading.Lock()
        self.plan: Plan | None = None
        #: set by Ctrl-C (through ``_watch``) or when the minimum is out of reach: the lanes stop sending
        self.halt = threading.Event()
        #: how many could still run when the run gave up early (None: it did not)
        self.gave_up: int | None = None
        self.lanes: Lanes[Offer] | None = None
        self.options = _Options([])
        #: member ids on record before this run: never rolled back by it
        self.before: frozenset[int] = frozenset(m.id for m in self.store.members(fleet.id))
        #: provider -> VM name -> ids of the VMs carrying it, from one list per provider per round
        self.names: dict[str, dict[str, frozenset[str]]] = {}
        #: provider -> its creates in flight, shared by all its batches (``Limits.per_provider``): a replacement's
        #: batch starts beside a busy one, but never widens what is sent at once (a refusal still stops the rest)
        self._sending: dict[str, threading.Semaphore] = {}

    def _attempt(self, a: Attempt) -> None:
        with self.alock:
            self.attempts.append(a)

    def _running(self) -> list[MemberRecord]:
        return [m for m in self.store.members(self.fleet.id) if m.status is MemberStatus.RUNNING]

    def _mine(self, members: list[MemberRecord]) -> list[MemberRecord]:
        """The members this run created (the only ones its rollback may destroy)."""
        return [m for m in members if m.id not in self.before]

    # ---- top level -------------------------------------------------------------------------------
    def execute(self) -> CreateResult:
        try:
            result = self._execute()
        except KeyboardInterrupt:  # only where no SIGINT handler could be installed (not the main thread)
            self.request.press()
            result = None
        if not self.request.stopping:
            assert result is not None
            return result
        self.ctx.note("interrupted: rolling back what this made; Ctrl-C again leaves it recorded")
        try:
            self._drain()
            self.ctx.sync(self.store.fleet(self.fleet.id))
            left = self._rollback("interrupted by the user")
        except (Abandoned, KeyboardInterrupt):
            msg = (f"fleet {self.fleet.name!r}: interrupted again during rollback; it stays recorded with "
                   "whatever was made")
            self.store.set_fleet_state(self.fleet.id, FleetState.FAILED, error=msg)
            raise FleetInterrupted(msg, hint=f"Finish with `vm fleet destroy {self.fleet.name}` "
                                             f"(or `vm fleet reconcile {self.fleet.name}`)") from None
        msg = f"fleet {self.fleet.name!r}: create interrupted; rolled back"
        if left:
            raise FleetInterrupted(msg + f", but {len(left)} member(s) could not be destroyed", undestroyed=left,
                                   hint=f"Run `vm fleet destroy {self.fleet.name}` once the cause is fixed") from None
        raise FleetInterrupted(msg + " everything it had made", hint="") from None

    def _drain(self) -> None:
        """Let in-flight creates finish (each records its answer); the lanes send nothing new."""
        self.halt.set()
        if self.lanes is not None:
            self.lanes.join()

    def _execute(self) -> CreateResult:
        fleet = self.fleet
        spec = self.spec
        if self.resumed:
            for c in self.ctx.sync(fleet):
                self.ctx.note(f"resume: {c}")
            self.ctx.members.settle(fleet, self.progress, self.stop)
        if self.stop.is_set():  # Ctrl-C while resuming: execute() rolls back (nothing of this run yet)
            return CreateResult(self.store.fleet(fleet.id), self.store.members(fleet.id), self.attempts,
                                self.resumed, 0, self.plan)
        running = len(self._running())
        need = spec.count - running
        if need <= 0:
            return self._decide()
        plan = self.ctx.plan(spec, need)
        self.plan = plan
        for s in plan.skipped:
            self._attempt(Attempt(s.provider, s.region, None, None, "skipped", s.reason))
        options = _Options.from_plan(plan)
        self.options = options
        slots: list[Offer] = [p.offer for p in plan.placements for _ in range(p.count)]
        # Slots the plan could not place go straight to failover (which may find nothing).
        for _ in range(max(0, need - len(slots))):
            o = options.next()
            if o is None:
                break
            slots.append(o)
        # One pipeline per provider (vmops.fleet.lanes): its creates, its wait, its record, its failures'
        # replacements routed to the lane of the provider they go to. Nobody waits for a slow provider.
        self.lanes = Lanes(self._lane, lambda o: o.provider, self.request, "create")
        self.lanes.route(slots)
        self.lanes.join(tick=self._watch)
        if self.stop.is_set():
            return CreateResult(self.store.fleet(fleet.id), self.store.members(fleet.id), self.attempts,
                                self.resumed, 0, self.plan)
        return self._decide()

    def _watch(self) -> None:
        """Between join slices: a Ctrl-C halts the lanes (they finish what is in flight and record it)."""
        if self.stop.is_set():
            self.halt.set()

    # ---- one provider's pipeline ----------------------------------------------------------------------
    def _lane(self, provider: str, offers: list[Offer]) -> None:
        """Create ``offers`` at ``provider``, wait for them to run, clean up and replace the ones that fail."""
        if self.halt.is_set():
            return  # no row written for them: nothing can exist under their names
        self._list_names(provider)
        if self.halt.is_set():
            return
        with self.store.write():  # this batch's member rows in one commit, before any of its creates
            rows = [self._new_member(o) for o in offers]
        workers = max(1, min(len(rows), self.ctx.limits.per_provider))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"vmops-create-{provider}") as pool:
            made = list(pool.map(lambda pair: self._make_one(pair[0], pair[1]), zip(offers, rows)))
        accepted = [m.id for m in made if m is not None and m.status is MemberStatus.ACCEPTED]
        if not accepted or self.halt.is_set():
            return
        failed = self.ctx.members.settle(self.fleet, self.progress, self.halt, only=accepted)
        if not failed or self.halt.is_set():
            return
        # Errors after acceptance: clean them up, and send those members to the next option.
        left = self.ctx.members.destroy(failed)
        options = self.options
        for m in failed:
            self._attempt(Attempt(m.provider, m.region, m.native_type, m.name, "failed",
                                  (m.last_error or "failed") + "; cleaned up"
                                  if not any(u.member.id == m.id for u in left) else
                                  (m.last_error or "failed") + "; could NOT be cleaned up"))
            for o in options.offers:
                if o.provider == m.provider and o.region == m.region and o.native_type == m.native_type:
                    options.kill(o)
        replacements = [o for o in (options.next() for _ in failed) if o is not None]
        self.lanes.route(replacements)
        self._check_reachable()

    def _check_reachable(self) -> None:
        """Give up as soon as the minimum is out of reach: what runs, what is in flight, what is queued and
        what the remaining options can still take fall short of ``--min``. The lanes then stop sending and
        waiting, and the outcome (a rollback, which deletes members still creating) follows at once."""
        if self.halt.is_set():
            return
        live = sum(1 for m in self.store.members(self.fleet.id)
                   if m.status in (MemberStatus.RUNNING, MemberStatus.ACCEPTED, MemberStatus.REQUESTED))
        reach = live + (self.lanes.pending() if self.lanes is not None else 0) + self.options.left()
        if reach < self.spec.min:
            self.gave_up = int(reach)
            self.halt.set()

    def _decide(self) -> CreateResult:
        fleet = self.fleet
        spec = self.spec
        if any(m.status is MemberStatus.REQUESTED and not m.instance_id for m in self.store.members(fleet.id)):
            # A create whose answer was lost while its provider could not be listed: look once more by name
            # while this process still holds the fleet, so a VM it did make is counted.
            self.ctx.sync(self.store.fleet(fleet.id))
        running = self._running()
        for m in running:
            self._attempt(Attempt(m.provider, m.region, m.native_type, m.name, "running", None))
        if len(running) >= spec.count:
            extra = len(running) - spec.count
            mine = sorted(self._mine(running), key=lambda m: m.seq)
            surplus = mine[len(mine) - min(extra, len(mine)):] if extra > 0 else []
            if surplus:  # this run made more than asked (a VM found late by its name): its own, so it may go
                self.ctx.members.destroy(surplus)
            fleet = self.store.set_fleet_state(fleet.id, FleetState.ACTIVE, error=None,
                                               message=f"{spec.count} of {spec.count} running")
            return self._result(fleet, 0)
        unconfirmed = self._unconfirmed()
        if unconfirmed and len(running) + len(unconfirmed) >= spec.min:
            # The minimum may well be met: what is missing was made but not confirmed, not refused. Neither a
            # rollback (it would destroy running VMs on a guess, and could not reach the unconfirmed ones) nor a
            # destroy of the unconfirmed (they may be all the fleet lacks): the fleet stays `creating` for
            # `vm fleet reconcile`, which finishes it once their provider answers.
            why = (f"{len(running)} of {spec.count} running, {len(unconfirmed)} not confirmed (their provider "
                   f"could not be read); nothing was rolled back")
            self.store.log(fleet.id, "unconfirmed", why)
            fleet = self.store.set_fleet_state(fleet.id, FleetState.CREATING, error=why)
            return self._result(fleet, spec.count - len(running) - len(unconfirmed))
        if len(running) >= spec.min:
            short = spec.count - len(running)
            # This run's accepted members it stopped waiting for cannot be left dangling in a partial fleet.
            stray = [m for m in self._mine(self.store.members(fleet.id))
                     if m.status is MemberStatus.ACCEPTED and not _is_unconfirmed(m)]
            if stray:
                self.ctx.members.destroy(stray)
            fleet = self.store.set_fleet_state(fleet.id, FleetState.PARTIAL,
                                               error=f"{len(running)} of {spec.count} running; {short} short")
            return self._result(fleet, short)
        tried = ", ".join(sorted({f"{a.provider}/{a.region or '-'}" for a in self.attempts if a.outcome != "skipped"}))
        if self.resumed and self.before:
            left = self._rollback(f"resume reached only {len(running)} of min {spec.min}", restore=True)
            kept = [m for m in self.store.members(fleet.id) if m.status in LIVE]
            msg = (f"fleet {fleet.name!r}: resuming could not reach its minimum ({len(running)} of {spec.min} "
                   f"running); rolled back only what this command made; the fleet is as it was "
                   f"({self.store.fleet(fleet.id).state.value}, {len(kept)} member(s) kept)")
        else:
            left = self._rollback(f"only {len(running)} of {spec.count} running (min {spec.min})")
            msg = (f"fleet {fleet.name!r}: only {len(running)} of {spec.count} x {spec.gpu} VMs could be made "
                   f"(min {spec.min}); rolled back")
            if self.gave_up is not None:
                msg = (f"fleet {fleet.name!r}: only {self.gave_up} of {spec.count} x {spec.gpu} VMs could still "
                       f"be made (min {spec.min}); gave up as soon as that was clear and rolled back")
        if left:
            msg += f", but {len(left)} member(s) could not be destroyed and stay recorded"
        elif not self.resumed:
            msg += ", nothing is left running"
        if not tried:
            msg += "; no provider could be tried"
        raise FleetCreateFailed(
            msg, attempts=[a for a in self.attempts if a.outcome != "running"], undestroyed=left,
            hint=(f"Run `vm fleet destroy {fleet.name}` once the cause is fixed" if left else
                  "Try a smaller --count, a lower --min, another --gpu, or later; `vm capacity` shows what is free"))

    def _unconfirmed(self) -> list[MemberRecord]:
        """This run's members that were made but not seen running: accepted, then their provider could not be
        read while they booted. Never destroyed on a guess: reported (exit 14), and ``reconcile`` finishes them.
        None when the run stopped waiting on purpose (it gave up, or Ctrl-C): what it made is rolled back."""
        if self.halt.is_set():
            return []
        return [m for m in self._mine(self.store.members(self.fleet.id)) if _is_unconfirmed(m)]

    def _result(self, fleet: FleetRecord, shortfall: int) -> CreateResult:
        members = self.store.members(fleet.id)
        unknown = [m for m in members if _is_unknown(m)]
        return CreateResult(fleet, members, self.attempts, self.resumed, shortfall, self.plan, unknown)

    def _rollback(self, reason: str, *, restore: bool = False) -> list[Undestroyed]:
        """Destroy what this run created. ``restore``: put the fleet back in the state it had before."""
        fleet = self.fleet
        live = [m for m in self._mine(self.store.members(fleet.id)) if m.status in LIVE]
        self.store.log(fleet.id, "rollback", f"rolling back {len(live)} member(s) this command made: {reason}")
        left = self.ctx.members.destroy(live)
        error = reason if not left else f"{reason}; {len(left)} member(s) could not be destroyed"
        if restore and self.prior_state is not None and self.prior_state is not FleetState.CREATING:
            self.store.set_fleet_state(fleet.id, self.prior_state, error=error,
                                       message="resume rolled back; fleet left as it was")
        else:
            self.store.set_fleet_state(fleet.id, FleetState.FAILED, error=error)
        return left

    # ---- names already taken -------------------------------------------------------------------------
    def _list_names(self, provider: str) -> None:
        """List the provider once before a batch of creates (instead of one name lookup per create).

        Each create then tells its adapter which VMs already carried its name (``CreateRequest.known_ids``),
        so a lost answer still adopts only a VM made by that create. Member names are unique per fleet and
        the fleet lock keeps other vm processes from making them, so no VM with a member's name can
        appear between this list and the create except through that create. A provider that cannot be
        listed is left out: its adapter looks each name up itself.
        """
        try:
            by_name: dict[str, set[str]] = {}
            for i in self.ctx.provider(provider).list_instances():
                by_name.setdefault(i.name, set()).add(i.id)
            self.names[provider] = {n: frozenset(ids) for n, ids in by_name.items()}
        except VmopsError:
            self.names.pop(provider, None)

    def _known_ids(self, provider: str, name: str) -> frozenset[str] | None:
        names = self.names.get(provider)
        return None if names is None else names.get(name, frozenset())

    # ---- one VM ------------------------------------------------------------------------------------
    def _send_slot(self, provider: str) -> threading.Semaphore:
        with self.alock:
            slot = self._sending.get(provider)
            if slot is None:
                slot = self._sending[provider] = threading.Semaphore(max(1, self.ctx.limits.per_provider))
            return slot

    def _make_one(self, offer: Offer | None, row: MemberRecord | None = None) -> MemberRecord | None:
        """Create one VM at ``offer`` (its member ``row`` already written, or written here); on failure move on
        to the next option: at this provider in this lane (a new row), elsewhere by routing it to that
        provider's lane. Returns the accepted member."""
        provider = offer.provider if offer is not None else ""
        options = self.options
        if self.halt.is_set() and row is not None:  # never attempted: nothing can exist under its name
            self.store.update_member(row.id, status=MemberStatus.FAILED, state=State.DELETED,
                                     last_error="not attempted: the create was interrupted"
                                     if self.stop.is_set() else "not attempted: the minimum was out of reach")
            return None
        while offer is not None and not self.halt.is_set():
            if offer.provider != provider:
                assert self.lanes is not None
                self.lanes.route([offer])
                return None
            with self._send_slot(offer.provider):
                dead = options.is_dead(offer) or self.halt.is_set()
                if not dead:
                    member, failure, kill_provider = self._try_create(offer, row)
            if dead:
                if self.halt.is_set():
                    break
                # Another create to this option was just refused (capacity, auth ...): do not send this one
                # there too; move on to the next option.
                if row is not None:
                    self.store.update_member(row.id, status=MemberStatus.FAILED, state=State.DELETED,
                                             last_error="not attempted: its option was refused meanwhile")
                    row = None
                offer = options.next()
                continue
            row = None
            if member is not None:
                return member
            if kill_provider:
                options.kill_provider(offer.provider)
            else:
                options.kill(offer)
            offer = options.next()
            if offer is None:
                self._check_reachable()
        if row is not None:  # halted before this row's create was sent
            self.store.update_member(row.id, status=MemberStatus.FAILED, state=State.DELETED,
                                     last_error="not attempted: the create was interrupted"
                                     if self.stop.is_set() else "not attempted: the minimum was out of reach")
        return None

    def _request(self, offer: Offer, member: MemberRecord, adapter: Provider) -> CreateRequest:
        labels = labels_for(self.fleet.name, self.store.identity) if adapter.capabilities.labels else {}
        policy, ids = reservation_request(self.spec.reserved, adapter.capabilities, offer=offer,
                                          allow_unterminable=self.spec.allow_unterminable_reserved)
        return CreateRequest(name=member.name, native_type=offer.native_type, region=offer.region, labels=labels,
                             idempotency_key=member.idempotency_key, reservation_policy=policy, reservation_ids=ids,
                             known_ids=self._known_ids(offer.provider, member.name),
                             read_back=False)  # the lane's wait lists the provider anyway

    def _new_member(self, offer: Offer) -> MemberRecord:
        """The member row (deterministic name, idempotency key), written before its create is sent."""
        fleet = self.fleet
        return self.store.add_member(
            fleet.id, name=None, name_for_seq=lambda seq: member_name(fleet.name, seq), provider=offer.provider,
            region=offer.region, native_type=offer.native_type, idempotency_key=str(uuid.uuid4()),
            reserved=offer.reserved, reservation_id=offer.reservation_id, price_per_hour=offer.price_per_hour)

    def _try_create(self, offer: Offer, row: MemberRecord | None = None) -> tuple[MemberRecord | None, str | None, bool]:
        """(member if accepted, failure reason, whether the whole provider should be given up)."""
        adapter = self.ctx.provider(offer.provider)
        member = row if row is not None else self._new_member(offer)
        self.progress.bump(offer.provider, requested=1)
        req = self._request(offer, member, adapter)
        kill_provider = False
        try:
            inst = adapter.create(req, wait=False)
        except (InsufficientCapacity, FailedPrecondition, NotFound) as e:
            return self._failed(member, offer, e.message, kill_provider)
        except (AuthError, PermissionDenied) as e:
            return self._failed(member, offer, e.message, True)
        except OutcomeUnknown as e:
            inst = self._resolve(adapter, member)
            if inst is None:
                return self._not_found(member, offer, e.message, False)
        except (Unreachable, NotSent) as e:  # the create was never sent, so there is nothing to look up
            return self._failed(member, offer, e.message, True)
        except ProviderUnavailable as e:
            inst = self._resolve(adapter, member)
            if inst is None:
                return self._not_found(member, offer, e.message, True)
        except VmopsError as e:
            return self._failed(member, offer, e.message, False)
        except Exception as e:  # an adapter bug: the create may or may not have happened; look it up by name
            inst = self._resolve(adapter, member)
            if inst is None:
                return self._not_found(member, offer, f"unexpected error: {type(e).__name__}: {e}", False)
        status = status_for(inst.state)
        price = inst.price_per_hour if inst.price_per_hour is not None else offer.price_per_hour
        try:
            member = self.store.update_member(member.id, status=status if status is not MemberStatus.GONE else MemberStatus.ACCEPTED,
                                              instance_id=inst.id, price_per_hour=price, seen=True,
                                              message=f"{member.name}: accepted by {offer.provider} as {inst.id}",
                                              **member_fields(inst))  # type: ignore[arg-type]
        except StateError:
            # Already recorded (e.g. adopted concurrently): the record still holds it exactly once.
            return self._failed(member, offer, f"instance {inst.id} is already recorded", False)
        self.progress.bump(offer.provider, accepted=1)
        if status is MemberStatus.RUNNING:
            self.progress.bump(offer.provider, running=1)
        return member, None, False

    def _resolve(self, adapter: Provider, member: MemberRecord) -> Instance | None:
        """After an unclear create, find the VM by its (unique, deterministic) name."""
        for attempt in range(3):
            try:
                found = [i for i in adapter.find_by_name(member.name) if i.state is not State.DELETED
                         and belongs(i, self.fleet.name, labelled=adapter.capabilities.labels,
                                     store_id=self.store.identity)]
                found = [i for i in found if self.store.member_by_instance(adapter.name, i.id) is None]
                return found[0] if found else None
            except Unreachable:  # refused, or silent for the deadline already: asking again only waits
                break
            except VmopsError:
                time.sleep(self.ctx.limits.retry_delay * (2 ** attempt))
        # Could not even look: keep the member as requested; destroy/reconcile resolves it by name later.
        self.store.update_member(member.id, last_error=UNKNOWN_OUTCOME)
        return None

    def _not_found(self, member: MemberRecord, offer: Offer, cause: str, kill_provider: bool
                   ) -> tuple[None, str, bool]:
        """An unclear create whose VM ``_resolve`` did not find: failed if it was looked for, else unknown."""
        looked = self.store.member(member.id).last_error != UNKNOWN_OUTCOME
        return self._failed(member, offer, f"{cause}; " + ("no VM with its name was found afterwards" if looked else
                                                            "it could not be looked up, so it may exist"), kill_provider)

    def _failed(self, member: MemberRecord, offer: Offer, why: str, kill_provider: bool
                ) -> tuple[None, str, bool]:
        unknown = self.store.member(member.id).last_error == UNKNOWN_OUTCOME
        if not unknown:  # an unknown outcome stays REQUESTED, so that destroy/reconcile look it up by name
            self.store.update_member(member.id, status=MemberStatus.FAILED, state=State.DELETED, last_error=why)
        self.progress.bump(offer.provider, **({"unknown": 1} if unknown else {"failed": 1}))
        self._attempt(Attempt(offer.provider, offer.region, offer.native_type, member.name,
                              "unknown" if unknown else "failed", why))
        return None, why, kill_provider
