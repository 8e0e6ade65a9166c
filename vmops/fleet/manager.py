"""The fleet manager: plan, create (concurrently, with failover and rollback), status, destroy, reconcile.

Its first duty is that vmops never loses track of a VM it made:

* the fleet row is written before any provider call;
* each member row (deterministic name, idempotency key) is written before its create call, and gets
  the provider's instance id the moment the provider answers (creates run with ``wait=False``; the
  waiting happens afterwards, batched per provider: one list call per poll tick);
* a member whose create answer was lost is resolved by looking its name up at the provider;
* anything at a provider whose name says it belongs to the fleet but the record lacks is adopted.

Nothing here names a provider: adapters come from the session, decisions come from capability flags
and from the normalized model (``Offer.reserved``, ``Instance.can_terminate``...).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    NotFound,
    OperationTimeout,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    ReservedCannotTerminate,
    StateError,
    UsageError,
    VmopsError,
)
from vmops.fleet.naming import FLEET_LABEL, belongs_to, generate_fleet_name, member_name, validate_fleet_name
from vmops.fleet.planner import Plan, eligible_providers, gather_offers, make_plan, usable_offers
from vmops.fleet.policies import DEFAULT_POLICY, capacity, get_policy
from vmops.fleet.progress import Listener, Progress
from vmops.fleet.report import (
    Attempt,
    CreateResult,
    FleetCreateFailed,
    FleetDestroyIncomplete,
    FleetInterrupted,
    FleetView,
    Undestroyed,
)
from vmops.model import CreateRequest, GpuShape, Instance, Offer, ReservationPolicy, State
from vmops.providers.base import Provider
from vmops.session import Session
from vmops.state import LIVE, FleetLock, FleetRecord, FleetState, MemberRecord, MemberStatus, Store

#: What a member create waits for: running, or a state that will never become running.
SETTLED = frozenset({State.RUNNING, State.ERROR, State.DELETED})


@dataclass(frozen=True)
class FleetSpec:
    """What the user asked for."""

    gpu: GpuShape
    count: int
    name: str | None = None
    min_count: int | None = None
    policy: str = DEFAULT_POLICY
    allow_unterminable_reserved: bool = False

    def validated(self) -> "FleetSpec":
        """Check every argument before any network call; raise UsageError."""
        if self.count < 1:
            raise UsageError(f"--count must be at least 1, not {self.count}")
        mn = self.count if self.min_count is None else self.min_count
        if not 1 <= mn <= self.count:
            raise UsageError(f"--min must be between 1 and --count ({self.count}), not {mn}")
        try:
            get_policy(self.policy)
            if self.name is not None:
                validate_fleet_name(self.name)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return FleetSpec(self.gpu, self.count, self.name, mn, self.policy.lower(), self.allow_unterminable_reserved)

    @property
    def min(self) -> int:
        return self.count if self.min_count is None else self.min_count


@dataclass(frozen=True)
class Limits:
    max_parallel: int = 16  # concurrent creates/destroys in all
    per_provider: int = 4  # concurrent creates at one provider
    destroy_attempts: int = 4  # tries per member for transient destroy failures
    wait_retries: int = 3  # re-polls after a provider stops answering while waiting
    retry_delay: float = 0.5


class _Stopped(Exception):
    """Raised from a wait callback when Ctrl-C asked the create to stop."""


def _status_for(state: State) -> MemberStatus:
    if state is State.RUNNING or state in (State.STOPPED, State.STOPPING, State.STARTING):
        return MemberStatus.RUNNING
    if state is State.DELETING:
        return MemberStatus.DESTROYING
    if state is State.DELETED:
        return MemberStatus.GONE
    return MemberStatus.ACCEPTED


def _fields(inst: Instance) -> dict[str, object]:
    return {
        "state": inst.state,
        "region": inst.region,
        "reserved": inst.reserved,
        "reservation_id": inst.reservation_id,
        "public_ip": inst.public_ip,
    }


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

    def kill_provider(self, provider: str) -> None:
        with self.lock:
            self.dead.update(id(o) for o in self.offers if o.provider == provider)

    def next(self) -> Offer | None:
        """The next offer in plan order that is alive and has capacity left (taking one unit)."""
        with self.lock:
            for o in self.offers:
                if id(o) not in self.dead and self.remaining[id(o)] > 0:
                    self.remaining[id(o)] -= 1
                    return o
            return None


class FleetManager:
    """Fleets over every enabled provider. One instance per command; thread-safe internally."""

    def __init__(self, session: Session | None = None, *, store: Store | None = None, limits: Limits | None = None,
                 progress: Listener | None = None, note: Callable[[str], None] | None = None) -> None:
        self.session = session or Session()
        self.config = self.session.config
        self.store = store or Store(self.config.state_path)
        self.limits = limits or Limits()
        self.listener = progress
        self.note = note or (lambda _msg: None)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "FleetManager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def provider(self, name: str) -> Provider:
        return self.session.provider(name)

    def lock(self, name: str) -> FleetLock:
        return FleetLock(self.config.home, name)

    # ------------------------------------------------------------------ planning
    def plan(self, spec: FleetSpec, count: int | None = None) -> Plan:
        """Ask the providers (reads only) and allocate ``count`` (default: the spec's) VMs by the policy."""
        spec = spec.validated()
        names, skipped = eligible_providers(self.config.enabled, spec.gpu)
        if not names:
            raise UsageError(f"no enabled provider offers {spec.gpu}",
                             hint="`vm capacity` shows the shapes each provider offers")
        providers = {n: self.provider(n) for n in names}
        answers = gather_offers(providers, spec.gpu)
        offers, more = usable_offers(answers, providers, allow_unterminable_reserved=spec.allow_unterminable_reserved)
        return make_plan(spec.gpu, spec.count if count is None else count, get_policy(spec.policy), offers,
                         skipped + more)

    def list(self) -> list[FleetView]:
        return [FleetView(f, self.store.members(f.id)) for f in self.store.list_fleets()]

    # ------------------------------------------------------------------ create
    def create(self, spec: FleetSpec, *, stop: threading.Event | None = None) -> CreateResult:
        spec = spec.validated()
        name = spec.name
        if name is None:
            taken = {f.name for f in self.store.list_fleets()}
            name = generate_fleet_name(taken)
            self.note(f"fleet name: {name}")
        lock = self.lock(name).acquire()
        try:
            fleet, resumed = self.store.claim_fleet(
                name, gpu=str(spec.gpu), count=spec.count, min_count=spec.min, policy=spec.policy,
                allow_unterminable_reserved=spec.allow_unterminable_reserved)
            if resumed:
                self.note(f"resuming fleet {name!r} (was {self.store.events(fleet.id)[-1].from_state})")
            run = _CreateRun(self, fleet, spec, resumed, stop or threading.Event())
            return run.execute()
        finally:
            lock.release()

    # ------------------------------------------------------------------ sync with the providers
    def sync(self, fleet: FleetRecord, *, adopt: bool) -> FleetView:
        """Compare the record with what the providers report and update the record.

        Every provider that has ever been asked to make a member of this fleet is listed once (the
        write-ahead rule means no other provider can hold one). Members with an id that the provider no
        longer lists are marked gone (or destroyed, if vmops was destroying them). With ``adopt`` (only
        when holding the fleet's lock): members whose create answer never arrived are resolved by name,
        and VMs named for this fleet that the record lacks are adopted.
        """
        members = self.store.members(fleet.id)
        view = FleetView(fleet, members)
        names = sorted({m.provider for m in members})
        listings: dict[str, list[Instance]] = {}

        def fetch(n: str) -> tuple[str, list[Instance] | VmopsError]:
            try:
                return n, self.provider(n).list_instances()
            except VmopsError as e:
                return n, e

        if names:
            with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="vmops-sync") as pool:
                for n, out in pool.map(fetch, names):
                    if isinstance(out, VmopsError):
                        view.warnings.append(f"{n}: could not refresh ({out.render()})")
                    else:
                        listings[n] = out
        for n, listing in listings.items():
            self._sync_provider(fleet, n, listing, [m for m in members if m.provider == n], adopt, view)
        view.fleet = self.store.fleet(fleet.id)
        view.members = self.store.members(fleet.id)
        return view

    def _sync_provider(self, fleet: FleetRecord, provider: str, listing: list[Instance],
                       members: list[MemberRecord], adopt: bool, view: FleetView) -> None:
        by_id = {i.id: i for i in listing}
        recorded = {m.instance_id for m in members if m.instance_id}
        claimed: set[str] = set()
        for m in members:
            if m.instance_id:
                inst = by_id.get(m.instance_id)
                if inst is not None and inst.state is not State.DELETED:
                    status = m.status
                    if m.status in (MemberStatus.REQUESTED, MemberStatus.ACCEPTED):
                        status = _status_for(inst.state)
                    elif m.status in (MemberStatus.DESTROYED, MemberStatus.GONE, MemberStatus.FAILED):
                        status = MemberStatus.DESTROYING if m.status is MemberStatus.DESTROYED else _status_for(inst.state)
                        view.changes.append(f"{m.name} ({m.instance_id}) still exists at {provider}")
                    self.store.update_member(m.id, status=status, seen=True, **_fields(inst))  # type: ignore[arg-type]
                elif m.status in LIVE:
                    new = MemberStatus.DESTROYED if m.status is MemberStatus.DESTROYING else MemberStatus.GONE
                    why = "destroyed" if new is MemberStatus.DESTROYED else "no longer exists at the provider (deleted outside vmops)"
                    self.store.update_member(m.id, status=new, state=State.DELETED, message=f"{m.name}: {why}")
                    view.changes.append(f"{m.name} ({m.instance_id}) at {provider}: {why}")
            elif m.status in LIVE and adopt:
                found = [i for i in listing if i.name == m.name and i.id not in recorded and i.id not in claimed
                         and i.state is not State.DELETED]
                if found:
                    inst = found[0]
                    claimed.add(inst.id)
                    status = MemberStatus.DESTROYING if m.status is MemberStatus.DESTROYING else _status_for(inst.state)
                    self.store.update_member(m.id, status=status, instance_id=inst.id, seen=True,
                                             price_per_hour=inst.price_per_hour or m.price_per_hour,
                                             message=f"{m.name}: create answer was lost; found it as {inst.id}",
                                             **_fields(inst))  # type: ignore[arg-type]
                    view.changes.append(f"{m.name}: found at {provider} as {inst.id}")
                else:
                    self.store.update_member(m.id, status=MemberStatus.FAILED, state=State.DELETED,
                                             last_error="the create never took effect (no VM with this name)")
                    view.changes.append(f"{m.name}: no VM with this name at {provider}; marked failed")
        if not adopt:
            return
        for inst in listing:
            if (inst.id in recorded or inst.id in claimed or inst.state is State.DELETED
                    or not belongs_to(inst.name, fleet.name)):
                continue
            if self.store.member_by_instance(provider, inst.id) is not None:
                continue
            self.store.add_member(
                fleet.id, name=inst.name, provider=provider, region=inst.region, native_type=inst.native_type,
                idempotency_key=f"adopted-{uuid.uuid4()}", status=_status_for(inst.state), state=inst.state,
                instance_id=inst.id, reserved=inst.reserved, reservation_id=inst.reservation_id,
                price_per_hour=inst.price_per_hour, public_ip=inst.public_ip,
                message=f"adopted orphan {inst.name} ({inst.id}) found at {provider}")
            view.changes.append(f"adopted {inst.name} ({inst.id}) at {provider}")

    # ------------------------------------------------------------------ status / destroy / reconcile
    def status(self, name: str, *, refresh: bool = True) -> FleetView:
        fleet = self.store.get_fleet(name)
        if not refresh:
            return FleetView(fleet, self.store.members(fleet.id))
        lock = self.lock(name)
        held = lock.try_acquire()
        try:
            view = self.sync(fleet, adopt=held)
            if not held:
                view.warnings.append(f"fleet {name!r} is busy in another vm process; showing it without adopting")
            return view
        finally:
            lock.release()

    def destroy(self, name: str) -> FleetView:
        fleet = self.store.get_fleet(name)
        with self.lock(name):
            fleet = self.store.set_fleet_state(fleet.id, FleetState.DESTROYING, message="destroy requested")
            return self._finish_destroy(fleet)

    def _finish_destroy(self, fleet: FleetRecord) -> FleetView:
        view = self.sync(fleet, adopt=True)
        unreachable = [w for w in view.warnings]
        live = [m for m in self.store.members(fleet.id) if m.status in LIVE]
        left = self.destroy_members(live)
        view = FleetView(self.store.fleet(fleet.id), self.store.members(fleet.id), view.warnings, view.changes)
        still = [m for m in view.members if m.status in LIVE]
        if not left and not still:
            view.fleet = self.store.set_fleet_state(fleet.id, FleetState.DESTROYED, error=None,
                                                    message="every member is gone")
            return view
        reasons = {u.member.id: u for u in left}
        items = [reasons.get(m.id) or Undestroyed(m, m.last_error or "still exists") for m in still]
        msg = f"fleet {fleet.name!r}: {len(items)} member(s) could not be destroyed and stay recorded"
        self.store.set_fleet_state(fleet.id, FleetState.DESTROYING, error=msg)
        if unreachable:
            msg += " (" + "; ".join(unreachable) + ")"
        raise FleetDestroyIncomplete(msg, undestroyed=items,
                                     hint=f"Run `vm fleet destroy {fleet.name}` again once the cause is fixed")

    def reconcile(self, name: str) -> FleetView:
        """Bring the record in line with the providers and finish whatever was interrupted."""
        fleet = self.store.get_fleet(name)
        with self.lock(name):
            view = self.sync(fleet, adopt=True)
            fleet = view.fleet
            live = [m for m in view.members if m.status in LIVE]
            if fleet.state is FleetState.DESTROYING or (fleet.state is FleetState.DESTROYED and live):
                if fleet.state is FleetState.DESTROYED:
                    self.store.set_fleet_state(fleet.id, FleetState.DESTROYING, message="orphans found after destroy")
                out = self._finish_destroy(self.store.fleet(fleet.id))
                out.changes = view.changes + ["finished the interrupted destroy"]
                return out
            if fleet.state is FleetState.CREATING:
                # The lock is ours, so the create that owned this fleet is gone: finish it with what exists.
                changes = view.changes
                self._settle(fleet, Progress())
                members = self.store.members(fleet.id)
                running = [m for m in members if m.status is MemberStatus.RUNNING]
                if len(running) >= fleet.min_count:
                    self._trim(fleet, running)
                    state = FleetState.ACTIVE if len(running) >= fleet.count else FleetState.PARTIAL
                    self.store.set_fleet_state(fleet.id, state, error=None if state is FleetState.ACTIVE else
                                               f"{len(running)} of {fleet.count} running",
                                               message="interrupted create finished by reconcile")
                    changes.append(f"interrupted create finished: {len(running)} of {fleet.count} running")
                else:
                    left = self.destroy_members([m for m in members if m.status in LIVE])
                    self.store.set_fleet_state(
                        fleet.id, FleetState.FAILED,
                        error=f"interrupted create rolled back by reconcile ({len(running)} of {fleet.count} had been running)")
                    changes.append(f"interrupted create rolled back ({len(running)} of min {fleet.min_count} were running)")
                    if left:
                        raise FleetDestroyIncomplete(
                            f"fleet {name!r}: rolling back the interrupted create left {len(left)} member(s)",
                            undestroyed=left, hint=f"Run `vm fleet destroy {name}` once the cause is fixed")
                return FleetView(self.store.fleet(fleet.id), self.store.members(fleet.id), view.warnings, changes)
            if fleet.state is FleetState.FAILED:
                stray = [m for m in live if m.status is not MemberStatus.DESTROY_FAILED]
                if stray:
                    left = self.destroy_members(stray)
                    view.changes.append(f"finished the interrupted rollback of {len(stray)} member(s)")
                    if left:
                        raise FleetDestroyIncomplete(f"fleet {name!r}: {len(left)} member(s) could not be destroyed",
                                                     undestroyed=left)
            elif fleet.state in (FleetState.ACTIVE, FleetState.PARTIAL):
                running = sum(1 for m in self.store.members(fleet.id) if m.status is MemberStatus.RUNNING)
                if running < fleet.count:
                    self.store.set_fleet_state(fleet.id, FleetState.PARTIAL,
                                               error=f"{running} of {fleet.count} running")
                    if fleet.state is FleetState.ACTIVE:
                        view.changes.append(f"only {running} of {fleet.count} members still exist: fleet is partial")
            return FleetView(self.store.fleet(fleet.id), self.store.members(fleet.id), view.warnings, view.changes)

    def reconcile_all(self) -> list[FleetView]:
        out: list[FleetView] = []
        errors: list[str] = []
        for f in self.store.list_fleets():
            if f.state is FleetState.DESTROYED:
                continue
            try:
                out.append(self.reconcile(f.name))
            except VmopsError as e:
                errors.append(f"{f.name}: {e.message}")
        if errors:
            from vmops.errors import PartialFailure

            raise PartialFailure("reconcile failed for " + "; ".join(errors))
        return out

    # ------------------------------------------------------------------ shared machinery
    def _settle(self, fleet: FleetRecord, progress: Progress, stop: threading.Event | None = None) -> list[MemberRecord]:
        """Wait (batched per provider) for accepted members to run or fail; return the ones that failed."""
        accepted = [m for m in self.store.members(fleet.id) if m.status is MemberStatus.ACCEPTED and m.instance_id]
        by_provider: dict[str, list[MemberRecord]] = {}
        for m in accepted:
            by_provider.setdefault(m.provider, []).append(m)
        failed: list[MemberRecord] = []
        flock = threading.Lock()

        def wait(provider: str, members: list[MemberRecord]) -> None:
            adapter = self.provider(provider)
            by_iid = {m.instance_id: m for m in members if m.instance_id}
            counted: set[str] = set()

            def tick(seen: dict[str, Instance]) -> None:
                for iid, inst in seen.items():
                    if inst.state is State.RUNNING and iid not in counted:
                        counted.add(iid)
                        progress.bump(provider, running=1)
                if stop is not None and stop.is_set():
                    raise _Stopped()

            result: dict[str, Instance] = {}
            for attempt in range(self.limits.wait_retries + 1):
                try:
                    result = adapter.wait_for({iid: SETTLED for iid in by_iid}, on_tick=tick)
                    break
                except OperationTimeout:
                    try:
                        current = {i.id: i for i in adapter.list_instances()}
                    except VmopsError:
                        current = {}
                    result = {iid: current.get(iid) or Instance(provider, iid, m.name, State.UNKNOWN, "(timeout)", "")
                              for iid, m in by_iid.items()}
                    for iid, inst in result.items():
                        if inst.state is not State.RUNNING:
                            result[iid] = Instance(provider, iid, inst.name, State.ERROR, "(did not become running "
                                                   f"within {adapter.timing.op_timeout:g}s; was {inst.state.value})",
                                                   inst.native_type)
                    break
                except _Stopped:
                    return
                except ProviderUnavailable as e:
                    if attempt == self.limits.wait_retries:
                        for m in by_iid.values():
                            self.store.update_member(m.id, last_error=f"provider stopped answering while waiting: {e.message}")
                        return
                    time.sleep(self.limits.retry_delay * (2 ** attempt))
            for iid, inst in result.items():
                m = by_iid[iid]
                if inst.state is State.RUNNING:
                    self.store.update_member(m.id, status=MemberStatus.RUNNING, seen=True, **_fields(inst))  # type: ignore[arg-type]
                else:
                    why = ("went to error after it was accepted" if inst.state is State.ERROR
                           else "disappeared after it was accepted")
                    if inst.native_state.startswith("(did not"):
                        why = inst.native_state.strip("()")
                    rec = self.store.update_member(m.id, state=inst.state, last_error=why, seen=True)
                    with flock:
                        failed.append(rec)
                    progress.bump(provider, failed=1)

        threads = [threading.Thread(target=wait, args=(p, ms), name=f"vmops-wait-{p}", daemon=True)
                   for p, ms in by_provider.items()]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        return failed

    def destroy_members(self, members: Sequence[MemberRecord]) -> list[Undestroyed]:
        """Destroy members concurrently (per provider), best effort with retries; report what is left.

        Already gone counts as success. A reserved member the provider cannot terminate, or one at a
        provider that keeps failing, stays recorded (``destroy_failed``) with the reason.
        """
        left: list[Undestroyed] = []
        llock = threading.Lock()
        by_provider: dict[str, list[MemberRecord]] = {}
        for m in members:
            if m.status not in LIVE:
                continue
            if not m.instance_id:
                # Still unresolved (its provider could not be listed): cannot be destroyed yet.
                left.append(Undestroyed(m, m.last_error or "its create's outcome is unknown (provider not reachable)"))
                continue
            by_provider.setdefault(m.provider, []).append(m)

        def run(provider: str, ms: list[MemberRecord]) -> None:
            adapter = self.provider(provider)
            out = self._destroy_at(adapter, ms)
            with llock:
                left.extend(out)

        threads = [threading.Thread(target=run, args=(p, ms), name=f"vmops-destroy-{p}", daemon=True)
                   for p, ms in by_provider.items()]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        return left

    def _destroy_at(self, adapter: Provider, members: list[MemberRecord]) -> list[Undestroyed]:
        left: list[Undestroyed] = []
        todo: dict[str, MemberRecord] = {}
        for m in members:
            if m.reserved and not adapter.capabilities.terminate_reserved:
                why = "reserved instance: the provider cannot terminate it through the API"
                self.store.update_member(m.id, status=MemberStatus.DESTROY_FAILED, last_error=why)
                left.append(Undestroyed(self.store.member(m.id), why))
            else:
                assert m.instance_id is not None
                todo[m.instance_id] = self.store.update_member(m.id, status=MemberStatus.DESTROYING)
        sent: dict[str, MemberRecord] = {}
        for attempt in range(self.limits.destroy_attempts):
            if not todo:
                break
            results = adapter.destroy_many(list(todo), wait=False)
            retry: dict[str, MemberRecord] = {}
            for r in results:
                m = todo[r.id]
                if r.ok:
                    if r.instance is None or r.instance.state is State.DELETED:
                        self.store.update_member(m.id, status=MemberStatus.DESTROYED, state=State.DELETED,
                                                 last_error=None)
                    else:
                        sent[r.id] = m
                elif isinstance(r.error, ReservedCannotTerminate):
                    why = r.error.message
                    self.store.update_member(m.id, status=MemberStatus.DESTROY_FAILED, last_error=why)
                    left.append(Undestroyed(self.store.member(m.id), why))
                elif isinstance(r.error, (ProviderUnavailable, FailedPrecondition)) and attempt + 1 < self.limits.destroy_attempts:
                    retry[r.id] = m
                else:
                    why = r.error.message if r.error else "unknown failure"
                    self.store.update_member(m.id, status=MemberStatus.DESTROY_FAILED, last_error=why)
                    left.append(Undestroyed(self.store.member(m.id), why))
            todo = retry
            if todo:
                time.sleep(self.limits.retry_delay * (2 ** attempt) * (0.5 + random.random()))
        if sent:
            try:
                seen = adapter.wait_for({iid: frozenset({State.DELETED}) for iid in sent})
                for iid, m in sent.items():
                    self.store.update_member(m.id, status=MemberStatus.DESTROYED, state=State.DELETED,
                                             last_error=None, seen=True)
                del seen
            except VmopsError as e:
                for m in sent.values():
                    self.store.update_member(m.id, last_error=f"destroy requested but not confirmed: {e.message}")
                    left.append(Undestroyed(self.store.member(m.id), f"destroy requested but not confirmed: {e.message}"))
        return left

    def _trim(self, fleet: FleetRecord, running: list[MemberRecord]) -> list[MemberRecord]:
        """Destroy surplus running members (duplicates found by name), newest first."""
        surplus = sorted(running, key=lambda m: m.seq)[fleet.count:]
        if surplus:
            self.destroy_members(surplus)
        return surplus


class _CreateRun:
    """One `fleet create` (or resume): rounds of concurrent creates, batched waits, failover, decision."""

    def __init__(self, mgr: FleetManager, fleet: FleetRecord, spec: FleetSpec, resumed: bool,
                 stop: threading.Event) -> None:
        self.mgr = mgr
        self.store = mgr.store
        self.fleet = fleet
        self.spec = spec
        self.resumed = resumed
        self.stop = stop
        self.progress = Progress(mgr.listener)
        self.attempts: list[Attempt] = []
        self.alock = threading.Lock()
        self.sems: dict[str, threading.Semaphore] = {}
        self.plan: Plan | None = None

    def _attempt(self, a: Attempt) -> None:
        with self.alock:
            self.attempts.append(a)

    def _sem(self, provider: str) -> threading.Semaphore:
        with self.alock:
            if provider not in self.sems:
                self.sems[provider] = threading.Semaphore(self.mgr.limits.per_provider)
            return self.sems[provider]

    def _running(self) -> list[MemberRecord]:
        return [m for m in self.store.members(self.fleet.id) if m.status is MemberStatus.RUNNING]

    # ---- top level -------------------------------------------------------------------------------
    def execute(self) -> CreateResult:
        try:
            return self._execute()
        except KeyboardInterrupt:
            self.stop.set()
            self.mgr.note("interrupted: no new creates; rolling back what was made "
                          "(press Ctrl-C again to stop and leave the fleet recorded)")
            try:
                self._drain()
                self.mgr.sync(self.store.fleet(self.fleet.id), adopt=True)
                left = self._rollback("interrupted by the user")
            except KeyboardInterrupt:
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
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _execute(self) -> CreateResult:
        fleet = self.fleet
        spec = self.spec
        if self.resumed:
            view = self.mgr.sync(fleet, adopt=True)
            for c in view.changes:
                self.mgr.note(f"resume: {c}")
            self.mgr._settle(fleet, self.progress, self.stop)
        running = len(self._running())
        need = spec.count - running
        if need <= 0:
            return self._decide()
        plan = self.mgr.plan(spec, count=need)
        self.plan = plan
        for s in plan.skipped:
            self._attempt(Attempt(s.provider, s.region, None, None, "skipped", s.reason))
        options = _Options.from_plan(plan)
        slots: list[Offer] = [p.offer for p in plan.placements for _ in range(p.count)]
        # Slots the plan could not place go straight to failover (which may find nothing).
        slots_missing = max(0, need - len(slots))
        for _ in range(slots_missing):
            o = options.next()
            if o is None:
                break
            slots.append(o)
        self.pool = ThreadPoolExecutor(max_workers=self.mgr.limits.max_parallel, thread_name_prefix="vmops-create")
        try:
            while slots and not self.stop.is_set():
                futures: list[Future[MemberRecord | None]] = [self.pool.submit(self._make_one, o, options) for o in slots]
                for f in futures:
                    while True:
                        try:
                            f.result(timeout=0.2)
                            break
                        except TimeoutError:
                            continue
                if self.stop.is_set():
                    break
                failed = self.mgr._settle(fleet, self.progress, self.stop)
                slots = []
                if failed:
                    # Errors after acceptance: clean them up, and send those members to the next option.
                    left = self.mgr.destroy_members(failed)
                    for m in failed:
                        self._attempt(Attempt(m.provider, m.region, m.native_type, m.name, "failed",
                                              (m.last_error or "failed") + "; cleaned up"
                                              if not any(u.member.id == m.id for u in left) else
                                              (m.last_error or "failed") + "; could NOT be cleaned up"))
                        for o in options.offers:
                            if o.provider == m.provider and o.region == m.region and o.native_type == m.native_type:
                                options.kill(o)
                    for _ in failed:
                        o = options.next()
                        if o is not None:
                            slots.append(o)
                running = len(self._running())
                if running >= spec.count:
                    break
        except KeyboardInterrupt:
            self.stop.set()  # before anything waits: in-flight creates finish, no new ones start
            raise
        finally:
            self.pool.shutdown(wait=not self.stop.is_set())
        if self.stop.is_set():
            raise KeyboardInterrupt
        return self._decide()

    def _decide(self) -> CreateResult:
        fleet = self.fleet
        spec = self.spec
        running = self._running()
        for m in running:
            self._attempt(Attempt(m.provider, m.region, m.native_type, m.name, "running", None))
        if len(running) >= spec.count:
            self.mgr._trim(fleet, running)
            fleet = self.store.set_fleet_state(fleet.id, FleetState.ACTIVE, error=None,
                                               message=f"{spec.count} of {spec.count} running")
            return CreateResult(fleet, self.store.members(fleet.id), self.attempts, self.resumed, 0, self.plan)
        if len(running) >= spec.min:
            short = spec.count - len(running)
            # Accepted-but-unsettled members cannot be left dangling in a partial fleet: clean them up.
            stray = [m for m in self.store.members(fleet.id) if m.status in (MemberStatus.ACCEPTED, MemberStatus.REQUESTED)]
            if stray:
                self.mgr.destroy_members(stray)
            fleet = self.store.set_fleet_state(fleet.id, FleetState.PARTIAL,
                                               error=f"{len(running)} of {spec.count} running; {short} short")
            return CreateResult(fleet, self.store.members(fleet.id), self.attempts, self.resumed, short, self.plan)
        left = self._rollback(f"only {len(running)} of {spec.count} running (min {spec.min})")
        tried = ", ".join(sorted({f"{a.provider}/{a.region or '-'}" for a in self.attempts if a.outcome != "skipped"}))
        msg = (f"fleet {fleet.name!r}: only {len(running)} of {spec.count} x {spec.gpu} VMs could be made "
               f"(min {spec.min}); rolled back")
        if left:
            msg += f", but {len(left)} member(s) could not be destroyed and stay recorded"
        else:
            msg += ", nothing is left running"
        if not tried:
            msg += "; no provider could be tried"
        raise FleetCreateFailed(
            msg, attempts=[a for a in self.attempts if a.outcome != "running"], undestroyed=left,
            hint=(f"Run `vm fleet destroy {fleet.name}` once the cause is fixed" if left else
                  "Try a smaller --count, a lower --min, another --gpu, or later; `vm capacity` shows what is free"))

    def _rollback(self, reason: str) -> list[Undestroyed]:
        fleet = self.fleet
        live = [m for m in self.store.members(fleet.id) if m.status in LIVE]
        self.store.log(fleet.id, "rollback", f"rolling back {len(live)} member(s): {reason}")
        left = self.mgr.destroy_members(live)
        error = reason if not left else f"{reason}; {len(left)} member(s) could not be destroyed"
        self.store.set_fleet_state(fleet.id, FleetState.FAILED, error=error)
        return left

    # ---- one VM ------------------------------------------------------------------------------------
    def _make_one(self, offer: Offer | None, options: _Options) -> MemberRecord | None:
        """Create one VM at ``offer``; on failure move on to the next option. Returns the accepted member."""
        while offer is not None and not self.stop.is_set():
            member, failure, kill_provider = self._try_create(offer)
            if member is not None:
                return member
            if kill_provider:
                options.kill_provider(offer.provider)
            else:
                options.kill(offer)
            offer = options.next()
        return None

    def _request(self, offer: Offer, member: MemberRecord, adapter: Provider) -> CreateRequest:
        labels = {FLEET_LABEL: self.fleet.name} if adapter.capabilities.labels else {}
        if offer.reserved and offer.reservation_id:
            policy, ids = ReservationPolicy.STRICT, (offer.reservation_id,)
        elif not adapter.capabilities.terminate_reserved and not self.spec.allow_unterminable_reserved:
            policy, ids = ReservationPolicy.FORBID, ()
        else:
            policy, ids = ReservationPolicy.AUTO, ()
        return CreateRequest(name=member.name, native_type=offer.native_type, region=offer.region, labels=labels,
                             idempotency_key=member.idempotency_key, reservation_policy=policy, reservation_ids=ids)

    def _try_create(self, offer: Offer) -> tuple[MemberRecord | None, str | None, bool]:
        """(member if accepted, failure reason, whether the whole provider should be given up)."""
        adapter = self.mgr.provider(offer.provider)
        fleet = self.fleet
        member = self.store.add_member(
            fleet.id, name=None, name_for_seq=lambda seq: member_name(fleet.name, seq), provider=offer.provider,
            region=offer.region, native_type=offer.native_type, idempotency_key=str(uuid.uuid4()),
            reserved=offer.reserved, reservation_id=offer.reservation_id, price_per_hour=offer.price_per_hour)
        self.progress.bump(offer.provider, requested=1)
        req = self._request(offer, member, adapter)
        kill_provider = False
        try:
            with self._sem(offer.provider):
                inst = adapter.create(req, wait=False)
        except (InsufficientCapacity, FailedPrecondition, NotFound) as e:
            return self._failed(member, offer, e.message, kill_provider)
        except (AuthError, PermissionDenied) as e:
            return self._failed(member, offer, e.message, True)
        except OutcomeUnknown as e:
            inst = self._resolve(adapter, member)
            if inst is None:
                return self._failed(member, offer, f"{e.message}; no VM with its name was found afterwards", False)
        except ProviderUnavailable as e:
            inst = self._resolve(adapter, member)
            if inst is None:
                return self._failed(member, offer, e.message, True)
        except VmopsError as e:
            return self._failed(member, offer, e.message, False)
        except Exception as e:  # an adapter bug: the create may or may not have happened; look it up by name
            inst = self._resolve(adapter, member)
            if inst is None:
                return self._failed(member, offer, f"unexpected error: {type(e).__name__}: {e}", False)
        status = _status_for(inst.state)
        price = inst.price_per_hour if inst.price_per_hour is not None else offer.price_per_hour
        try:
            member = self.store.update_member(member.id, status=status if status is not MemberStatus.GONE else MemberStatus.ACCEPTED,
                                              instance_id=inst.id, price_per_hour=price, seen=True,
                                              message=f"{member.name}: accepted by {offer.provider} as {inst.id}",
                                              **_fields(inst))  # type: ignore[arg-type]
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
                found = [i for i in adapter.find_by_name(member.name) if i.state is not State.DELETED]
                found = [i for i in found if self.store.member_by_instance(adapter.name, i.id) is None]
                return found[0] if found else None
            except VmopsError:
                time.sleep(self.mgr.limits.retry_delay * (2 ** attempt))
        # Could not even look: keep the member as requested; destroy/reconcile resolves it by name later.
        self.store.update_member(member.id, last_error="create outcome unknown and the provider could not be listed")
        return None

    def _failed(self, member: MemberRecord, offer: Offer, why: str, kill_provider: bool
                ) -> tuple[None, str, bool]:
        current = self.store.member(member.id)
        if current.last_error == "create outcome unknown and the provider could not be listed":
            # Unknown outcome: leave it REQUESTED so that destroy/reconcile look it up by name.
            pass
        else:
            self.store.update_member(member.id, status=MemberStatus.FAILED, state=State.DELETED, last_error=why)
        self.progress.bump(offer.provider, failed=1)
        self._attempt(Attempt(offer.provider, offer.region, offer.native_type, member.name, "failed", why))
        return None, why, kill_provider
