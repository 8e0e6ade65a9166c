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
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from vmops.errors import (
    FailedPrecondition,
    OperationTimeout,
    ProviderUnavailable,
    ReservedCannotTerminate,
    UsageError,
    VmopsError,
)
from vmops.fleet.create import CreateRun, Stopped
from vmops.fleet.naming import belongs_to, generate_fleet_name
from vmops.fleet.observe import member_fields, status_for
from vmops.fleet.planner import Plan, eligible_providers, gather_offers, make_plan, usable_offers
from vmops.fleet.policies import get_policy
from vmops.fleet.progress import Listener, Progress
from vmops.fleet.report import CreateResult, FleetDestroyIncomplete, FleetView, Undestroyed
from vmops.fleet.spec import FleetSpec, Limits
from vmops.model import Instance, State
from vmops.providers.base import DestroyResult, Provider
from vmops.session import Session
from vmops.state import LIVE, FleetRecord, FleetState, MemberRecord, MemberStatus, Store, store_for
from vmops.state.backend import Lock

#: What a member create waits for: running, or a state that will never become running.
SETTLED = frozenset({State.RUNNING, State.ERROR, State.DELETED})


def per_provider(groups: dict[str, list[MemberRecord]], fn: Callable[[str, list[MemberRecord]], None],
                 what: str) -> None:
    """Run ``fn(provider, members)`` for each provider on its own thread and wait for all of them.

    Joins in short slices so Ctrl-C reaches the main thread while the workers run. A worker's exception is
    raised here, in the caller, once all have finished; never printed by the thread machinery (after a
    second Ctrl-C the caller has left and the workers' late errors, e.g. the closed state store, are dropped).
    """
    errors: list[BaseException] = []

    def run(provider: str, members: list[MemberRecord]) -> None:
        try:
            fn(provider, members)
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p, ms), name=f"vmops-{what}-{p}", daemon=True)
               for p, ms in groups.items()]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    if errors:
        raise errors[0]


class FleetManager:
    """Fleets over every enabled provider. One instance per command; thread-safe internally."""

    def __init__(self, session: Session | None = None, *, store: Store | None = None, limits: Limits | None = None,
                 progress: Listener | None = None, note: Callable[[str], None] | None = None) -> None:
        self.session = session or Session()
        self.config = self.session.config
        self.store = store or store_for(self.config)
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

    def lock(self, name: str) -> Lock:
        return self.store.fleet_lock(name)

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
        members = self.store.members_by_fleet()
        return [FleetView(f, members.get(f.id, [])) for f in self.store.list_fleets()]

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
            run = CreateRun(self, fleet, spec, resumed, stop or threading.Event())
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
            with self.store.write():  # one commit for the provider's updates, not one per member
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
                        status = status_for(inst.state)
                    elif m.status in (MemberStatus.DESTROYED, MemberStatus.GONE, MemberStatus.FAILED):
                        status = MemberStatus.DESTROYING if m.status is MemberStatus.DESTROYED else status_for(inst.state)
                        view.changes.append(f"{m.name} ({m.instance_id}) still exists at {provider}")
                    self.store.update_member(m.id, status=status, seen=True, **member_fields(inst))  # type: ignore[arg-type]
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
                    status = MemberStatus.DESTROYING if m.status is MemberStatus.DESTROYING else status_for(inst.state)
                    self.store.update_member(m.id, status=status, instance_id=inst.id, seen=True,
                                             price_per_hour=inst.price_per_hour or m.price_per_hour,
                                             message=f"{m.name}: create answer was lost; found it as {inst.id}",
                                             **member_fields(inst))  # type: ignore[arg-type]
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
                idempotency_key=f"adopted-{uuid.uuid4()}", status=status_for(inst.state), state=inst.state,
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
                # A VM found late by its name (a lost create answer) can make one member too many.
                surplus = self._trim(fleet, [m for m in self.store.members(fleet.id) if m.status is MemberStatus.RUNNING])
                if surplus:
                    view.changes.append(f"destroyed {len(surplus)} member(s) beyond the fleet's count of {fleet.count}: "
                                        + ", ".join(m.name for m in surplus))
                running = sum(1 for m in self.store.members(fleet.id) if m.status is MemberStatus.RUNNING)
                if running >= fleet.count and fleet.state is FleetState.PARTIAL:
                    self.store.set_fleet_state(fleet.id, FleetState.ACTIVE, error=None,
                                               message=f"{running} of {fleet.count} running")
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
                    raise Stopped()

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
                except Stopped:
                    return
                except ProviderUnavailable as e:
                    if attempt == self.limits.wait_retries:
                        for m in by_iid.values():
                            self.store.update_member(m.id, last_error=f"provider stopped answering while waiting: {e.message}")
                        return
                    time.sleep(self.limits.retry_delay * (2 ** attempt))
            with self.store.write():  # one commit for this provider's results
                self._record_settled(provider, by_iid, result, failed, flock, progress)

        per_provider(by_provider, wait, "wait")
        return failed

    def _record_settled(self, provider: str, by_iid: dict[str, MemberRecord], result: dict[str, Instance],
                        failed: list[MemberRecord], flock: threading.Lock, progress: Progress) -> None:
        """Record one provider's waited-for members: running, or failed (collected in ``failed``)."""
        for iid, inst in result.items():
            m = by_iid[iid]
            if inst.state is State.RUNNING:
                self.store.update_member(m.id, status=MemberStatus.RUNNING, seen=True, **member_fields(inst))  # type: ignore[arg-type]
            else:
                why = ("went to error after it was accepted" if inst.state is State.ERROR
                       else "disappeared after it was accepted")
                if inst.native_state.startswith("(did not"):
                    why = inst.native_state.strip("()")
                rec = self.store.update_member(m.id, state=inst.state, last_error=why, seen=True)
                with flock:
                    failed.append(rec)
                progress.bump(provider, failed=1)

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

        per_provider(by_provider, run, "destroy")
        return left

    def _destroy_at(self, adapter: Provider, members: list[MemberRecord]) -> list[Undestroyed]:
        left: list[Undestroyed] = []
        todo: dict[str, MemberRecord] = {}
        with self.store.write():  # one commit, still before any destroy is sent
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
            results = self._send_destroys(adapter, list(todo))
            retry: dict[str, MemberRecord] = {}
            with self.store.write():
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
                with self.store.write():
                    for iid, m in sent.items():
                        self.store.update_member(m.id, status=MemberStatus.DESTROYED, state=State.DELETED,
                                                 last_error=None, seen=True)
                del seen
            except VmopsError as e:
                with self.store.write():
                    for m in sent.values():
                        self.store.update_member(m.id, last_error=f"destroy requested but not confirmed: {e.message}")
                        left.append(Undestroyed(self.store.member(m.id), f"destroy requested but not confirmed: {e.message}"))
        return left

    def _send_destroys(self, adapter: Provider, ids: list[str]) -> list[DestroyResult]:
        """``destroy_many(ids, wait=False)`` in up to ``limits.per_provider`` concurrent slices.

        One slice would send the destroys one after another, so the last VM of a big fleet would start
        deleting only after every other one had been asked: at 170 VMs per provider that is a second
        or more added to the whole destroy. The wait afterwards stays one list call per tick.
        """
        k = max(1, min(self.limits.per_provider, len(ids)))
        if k == 1:
            return adapter.destroy_many(ids, wait=False)
        slices = [ids[i::k] for i in range(k)]
        with ThreadPoolExecutor(max_workers=k, thread_name_prefix=f"vmops-destroy-{adapter.name}") as pool:
            parts = list(pool.map(lambda part: adapter.destroy_many(part, wait=False), slices))
        return [r for part in parts for r in part]

    def _trim(self, fleet: FleetRecord, running: list[MemberRecord]) -> list[MemberRecord]:
        """Destroy surplus running members (duplicates found by name), newest first."""
        surplus = sorted(running, key=lambda m: m.seq)[fleet.count:]
        if surplus:
            self.destroy_members(surplus)
        return surplus
