"""Apply: carry out a Decision's actions on members, write-ahead (the record says what is about to be
done before a provider is asked), concurrently per provider. Also the waits a create needs (settle)."""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Mapping, Sequence

from vmops import pricing
from vmops.errors import (
    FailedPrecondition,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    ReservedCannotTerminate,
    Silent,
    Unreachable,
    VmopsError,
)
from vmops.fleet.decision import Action, ActionKind
from vmops.fleet.interrupt import StopRequest
from vmops.fleet.lanes import Lanes
from vmops.fleet.observe import Observation, member_fields, status_for
from vmops.fleet.progress import Progress
from vmops.fleet.report import Undestroyed
from vmops.fleet.spec import Limits
from vmops.model import Instance, State
from vmops.providers.base import DestroyResult, Provider, WaitCancelled
from vmops.state import LIVE, FleetRecord, MemberRecord, MemberStatus, Store

#: What a member create waits for: running, or a state that will never become running.
SETTLED = frozenset({State.RUNNING, State.ERROR, State.DELETED})


class Stopped(Exception):
    """Raised from a wait callback when Ctrl-C asked the command to stop."""


def member_price(inst: Instance, m: MemberRecord | None) -> float | None:
    """A member's price per VM-hour by the one price rule (vmops.pricing), from what its provider reports
    now: billing may change on stop/start. The record's price is kept only where the rule has none."""
    per_hour = pricing.member_price(inst).per_hour
    if per_hour is None and m is not None:
        return m.price_per_hour
    return per_hour


def wait_one_by_one(adapter: Provider, by_iid: dict[str, MemberRecord],
                    stop: threading.Event | None) -> dict[str, Instance]:
    """Wait for members to settle with one read per member per poll (the fallback when the provider's list
    fails): the pauses of ``Provider.poll_delay``; raises the first read's error when nothing can be read."""
    started = time.monotonic()
    expected = adapter.expected_seconds({iid: SETTLED for iid in by_iid})
    seen: dict[str, Instance] = {}
    while True:
        for iid in [i for i in by_iid if i not in seen or seen[i].state not in SETTLED]:
            try:
                seen[iid] = adapter.get_instance(iid)
            except NotFound:
                seen[iid] = Instance(adapter.name, iid, by_iid[iid].name, State.DELETED, "(gone)", "")
        if all(i.state in SETTLED for i in seen.values()):
            return seen
        if time.monotonic() - started > adapter.timing.op_timeout:
            raise OperationTimeout(f"{len(by_iid)} member(s) still not running after {adapter.timing.op_timeout:g}s",
                                   provider=adapter.name)
        delay = adapter.poll_delay(time.monotonic() - started, expected)
        if stop is not None:
            if stop.wait(delay):
                raise Stopped()
        else:
            time.sleep(delay)


def per_provider(groups: dict[str, list[MemberRecord]], fn: Callable[[str, list[MemberRecord]], None],
                 what: str, abandon: StopRequest | None = None) -> None:
    """Run ``fn(provider, members)`` for each provider on its own thread (vmops.fleet.lanes) and wait for all
    of them. A second Ctrl-C (``abandon``) leaves at once (the workers' late results are dropped: the record
    already says what was sent); a worker's exception is raised here once all have finished."""
    lanes: Lanes[MemberRecord] = Lanes(fn, lambda m: m.provider, abandon, what)
    lanes.route(m for ms in groups.values() for m in ms)
    lanes.join()


#: The last error of an accepted member whose wait ended because its provider could not be read (it may run: a
#: create never destroys it on a guess, see ``vmops.fleet.create``), followed by ": " and the provider's error.
#: (Was "provider stopped answering while waiting", also said of a provider that answered 503.)
UNREADABLE_WHILE_BOOTING = "its provider could not be read while it booted"

#: A destroy's wait notes its progress at most this often (seconds) while VMs keep going.
WAIT_NOTE_EVERY = 5.0

#: The failures after which a member's destroy is sent again (up to ``Limits.destroy_attempts``, with a pause):
#: the provider refused it for the VM's state now (``FailedPrecondition``), which time mends. A
#: ``ProviderUnavailable`` (5xx, 429, a lost answer) already had the adapter's own retries, with a look before
#: each resend (``vmops.providers.protocol``): sending it again retried those retries (a provider answering 503
#: to everything cost a destroy ~25 s at Crusoe, and 4x the Deletes at Nebius, for nothing); the member stays recorded
#: with the reason (exit 14) for the next destroy or reconcile. A refused connection or a silent provider is not
#: asked again at all (issue 15, "fail fast").
RETRIED_HERE: tuple[type[VmopsError], ...] = (FailedPrecondition,)


class Members:
    """The actions that change members (and their VMs): one instance per command."""

    def __init__(self, store: Store, provider: Callable[[str], Provider], limits: Limits,
                 request: StopRequest | None = None, note: Callable[[str], None] | None = None) -> None:
        """``note``: told how a destroy goes at each provider (deletes accepted, then how many are gone, at
        most every ``WAIT_NOTE_EVERY`` seconds while they go), for a command that shows no other progress."""
        self.store = store
        self.provider = provider
        self.limits = limits
        self.request = request
        self.note = note

    # ---- record-only actions ----------------------------------------------------------------------
    def apply_sync(self, fleet: FleetRecord, obs: Observation, actions: Iterable[Action]) -> list[str]:
        """Record what the providers report (one commit per provider); return what changed, as text."""
        changes: list[str] = []
        listed = {(i.provider, i.id): i for p in obs.listings for i in obs.listings[p]}
        by_id = {m.id: m for m in obs.members}
        acts = list(actions)
        for p in sorted({a.provider for a in acts}):
            with self.store.write():
                for a in (a for a in acts if a.provider == p):
                    m = by_id.get(a.member_id) if a.member_id is not None else None
                    inst = listed.get((p, a.instance_id)) if a.instance_id else None
                    if a.kind is ActionKind.REFRESH and m is not None and inst is not None:
                        status = m.status
                        if m.status in (MemberStatus.REQUESTED, MemberStatus.ACCEPTED):
                            status = status_for(inst.state)
                        elif m.status in (MemberStatus.DESTROYED, MemberStatus.GONE, MemberStatus.FAILED):
                            status = (MemberStatus.DESTROYING if m.status is MemberStatus.DESTROYED
                                      else status_for(inst.state))
                            changes.append(f"{m.name} ({m.instance_id}) still exists at {p}")
                        elif m.status is MemberStatus.RUNNING and inst.state is State.DELETING:
                            status = MemberStatus.DESTROYING
                        # seen now: a boot its provider could not be read during is no longer in question
                        answered = {"last_error": None} if (m.last_error or "").startswith(UNREADABLE_WHILE_BOOTING) else {}
                        self.store.update_member(m.id, status=status, seen=True,
                                                 price_per_hour=member_price(inst, m),
                                                 **answered, **member_fields(inst))  # type: ignore[arg-type]
                    elif a.kind is ActionKind.MARK_GONE and m is not None:
                        new = MemberStatus.DESTROYED if m.status is MemberStatus.DESTROYING else MemberStatus.GONE
                        self.store.update_member(m.id, status=new, state=State.DELETED,
                                                 message=f"{m.name}: {a.reason}")
                        changes.append(f"{m.name} ({m.instance_id}) at {p}: {a.reason}")
                    elif a.kind is ActionKind.RESOLVE and m is not None and inst is not None:
                        status = (MemberStatus.DESTROYING if m.status is MemberStatus.DESTROYING
                                  else status_for(inst.state))
                        self.store.update_member(m.id, status=status, instance_id=inst.id, seen=True,
                                                 price_per_hour=member_price(inst, m),
                                                 message=f"{m.name}: {a.reason}", **member_fields(inst))  # type: ignore[arg-type]
                        changes.append(f"{m.name}: found at {p} as {inst.id}")
                    elif a.kind is ActionKind.MARK_FAILED and m is not None:
                        self.store.update_member(m.id, status=MemberStatus.FAILED, state=State.DELETED,
                                                 last_error=a.reason)
                        changes.append(f"{m.name}: no VM with this name at {p}; marked failed")
                    elif a.kind is ActionKind.ADOPT and inst is not None:
                        if self.store.member_by_instance(p, inst.id) is not None:
                            continue
                        self.store.add_member(
                            fleet.id, name=inst.name, provider=p, region=inst.region, native_type=inst.native_type,
                            idempotency_key=f"adopted-{uuid.uuid4()}", status=status_for(inst.state),
                            state=inst.state, instance_id=inst.id, reserved=inst.reserved,
                            reservation_id=inst.reservation_id, price_per_hour=member_price(inst, None),
                            public_ip=inst.public_ip, message=f"adopted {inst.name} ({inst.id}) found at {p}")
                        changes.append(f"adopted {inst.name} ({inst.id}) at {p}")
        return changes

    def members_for(self, fleet: FleetRecord, actions: Iterable[Action]) -> list[MemberRecord]:
        """The member records the actions are about (adopted VMs are looked up by provider and id)."""
        out: list[MemberRecord] = []
        for a in actions:
            if a.member_id is not None:
                out.append(self.store.member(a.member_id))
            elif a.instance_id:
                m = self.store.member_by_instance(a.provider, a.instance_id)
                if m is not None and m.fleet_id == fleet.id:
                    out.append(m)
        return out

    # ---- waits -------------------------------------------------------------------------------------
    def settle(self, fleet: FleetRecord, progress: Progress, stop: threading.Event | None = None,
               only: Iterable[int] | None = None) -> list[MemberRecord]:
        """Wait (batched per provider) for accepted members to run or fail; return the ones that failed."""
        ids = None if only is None else set(only)
        accepted = [m for m in self.store.members(fleet.id) if m.status is MemberStatus.ACCEPTED and m.instance_id
                    and (ids is None or m.id in ids)]
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
                now_running = [iid for iid, inst in seen.items() if inst.state is State.RUNNING and iid not in counted]
                if now_running:  # one change per poll, not one per VM (a progress line shows each change)
                    counted.update(now_running)
                    progress.bump(provider, running=len(now_running))
                if stop is not None and stop.is_set():
                    raise Stopped()

            result: dict[str, Instance] = {}
            for attempt in range(self.limits.wait_retries + 1):
                try:
                    result = adapter.wait_for({iid: SETTLED for iid in by_iid}, on_tick=tick, cancel=stop)
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
                except (Stopped, WaitCancelled):
                    return
                except ProviderUnavailable as e:
                    if attempt == self.limits.wait_retries or isinstance(e, Unreachable):
                        # The list failed every time: read the members one by one, the only proof left that
                        # they run (a provider whose list is broken may still answer for one VM).
                        try:
                            result = wait_one_by_one(adapter, by_iid, stop)
                            break
                        except (Stopped, WaitCancelled):
                            return
                        except VmopsError:
                            pass
                        for m in by_iid.values():
                            self.store.update_member(m.id, last_error=f"{UNREADABLE_WHILE_BOOTING}: {e.message}")
                        return
                    time.sleep(self.limits.retry_delay * (2 ** attempt))
            with self.store.write():  # one commit for this provider's results
                for iid, inst in result.items():
                    m = by_iid[iid]
                    if inst.state is State.RUNNING:
                        self.store.update_member(m.id, status=MemberStatus.RUNNING, seen=True,
                                                 price_per_hour=member_price(inst, m),
                                                 **member_fields(inst))  # type: ignore[arg-type]
                    else:
                        why = ("went to error after it was accepted" if inst.state is State.ERROR
                               else "disappeared after it was accepted")
                        if inst.native_state.startswith("(did not"):
                            why = inst.native_state.strip("()")
                        rec = self.store.update_member(m.id, state=inst.state, last_error=why, seen=True)
                        with flock:
                            failed.append(rec)
                        progress.bump(provider, failed=1)

        per_provider(by_provider, wait, "wait", self.request)
        return failed

    # ---- destroy -----------------------------------------------------------------------------------
    def destroy(self, members: Sequence[MemberRecord], observed: Observation | None = None) -> list[Undestroyed]:
        """Destroy members concurrently (per provider), best effort with retries; report what is left.

        Every member is marked ``destroying`` in one commit before any destroy is sent (so a crash in
        between leaves a record a reconcile finishes, never a half-decided rollback). Already gone counts
        as success. A member the provider can never destroy through its API is marked ``undestroyable``
        once and reported; one at a provider that keeps failing stays ``destroy_failed`` with the reason.
        ``observed``: the observation the destroy was decided on; its lists stand in for the adapters' own
        list before the deletes (``Provider.destroy_many(listed=...)``).
        """
        left: list[Undestroyed] = []
        llock = threading.Lock()
        by_provider: dict[str, list[MemberRecord]] = {}
        with self.store.write():
            for m in members:
                if m.status not in LIVE:
                    continue
                if not m.instance_id:
                    left.append(Undestroyed(m, m.last_error or "its create's outcome is unknown (provider not reachable)"))
                    continue
                adapter = self.provider(m.provider)
                if m.undestroyable or (m.reserved and not adapter.capabilities.terminate_reserved):
                    why = "reserved instance: the provider cannot terminate it through the API"
                    rec = self.store.update_member(m.id, status=MemberStatus.DESTROY_FAILED, undestroyable=True,
                                                   last_error=m.last_error if m.undestroyable else why)
                    left.append(Undestroyed(rec, rec.last_error or why))
                    continue
                rec = self.store.update_member(m.id, status=MemberStatus.DESTROYING)
                by_provider.setdefault(m.provider, []).append(rec)

        def run(provider: str, ms: list[MemberRecord]) -> None:
            listed = observed.by_id(provider) if observed is not None and observed.listed(provider) else None
            out = self._destroy_at(self.provider(provider), ms, listed)
            with llock:
                left.extend(out)

        per_provider(by_provider, run, "destroy", self.request)
        return left

    def _destroy_at(self, adapter: Provider, members: list[MemberRecord],
                    listed: Mapping[str, Instance] | None = None) -> list[Undestroyed]:
        left: list[Undestroyed] = []
        todo: dict[str, MemberRecord] = {m.instance_id: m for m in members if m.instance_id}
        sent: dict[str, MemberRecord] = {}
        earlier: dict[str, VmopsError] = {}  # an attempt's error, for a retry that was then not even sent
        at_once = 0  # deletes whose VM was gone as soon as they were answered
        for attempt in range(self.limits.destroy_attempts):
            if not todo:
                break
            results = self._send_destroys(adapter, list(todo), listed if attempt == 0 else None)
            retry: dict[str, MemberRecord] = {}
            with self.store.write():
                for r in results:
                    m = todo[r.id]
                    if r.ok:
                        if r.instance is None or r.instance.state is State.DELETED:
                            self.store.update_member(m.id, status=MemberStatus.DESTROYED, state=State.DELETED,
                                                     last_error=None)
                            at_once += 1
                        else:
                            sent[r.id] = m
                    elif isinstance(r.error, ReservedCannotTerminate):
                        why = r.error.message
                        self.store.update_member(m.id, status=MemberStatus.DESTROY_FAILED, undestroyable=True,
                                                 last_error=why)
                        left.append(Undestroyed(self.store.member(m.id), why))
                    elif isinstance(r.error, RETRIED_HERE) and attempt + 1 < self.limits.destroy_attempts:
                        retry[r.id] = m
                    else:
                        error = (earlier.get(r.id) or r.error) if isinstance(r.error, Silent) else r.error
                        why = error.message if error else "unknown failure"
                        self.store.update_member(m.id, status=MemberStatus.DESTROY_FAILED, last_error=why)
                        left.append(Undestroyed(self.store.member(m.id), why))
                    if r.error is not None and not isinstance(r.error, Silent):
                        earlier[r.id] = r.error
            todo = retry
            if todo:
                time.sleep(self.limits.retry_delay * (2 ** attempt) * (0.5 + random.random()))
        if at_once and self.note is not None:
            self.note(f"{adapter.name}: {at_once} gone")
        if sent:
            try:
                adapter.wait_for({iid: frozenset({State.DELETED}) for iid in sent}, on_tick=self._gone_notes(
                    adapter.name, len(sent)))
                with self.store.write():
                    for iid, m in sent.items():
                        self.store.update_member(m.id, status=MemberStatus.DESTROYED, state=State.DELETED,
                                                 last_error=None, seen=True)
            except VmopsError as e:
                with self.store.write():
                    for m in sent.values():
                        why = f"destroy requested but not confirmed: {e.message}"
                        self.store.update_member(m.id, last_error=why)
                        left.append(Undestroyed(self.store.member(m.id), why))
        return left

    def _gone_notes(self, provider: str, total: int) -> Callable[[dict[str, Instance]], None] | None:
        """A wait's ``on_tick`` that notes how many of ``total`` deletes at ``provider`` are done: at once,
        then when the count changes, at most every ``WAIT_NOTE_EVERY`` seconds, and when all are gone."""
        note = self.note
        if note is None:
            return None
        note(f"{provider}: {total} delete(s) accepted; waiting until they are gone")
        started = noted_at = time.monotonic()
        noted = 0

        def tick(seen: dict[str, Instance]) -> None:
            nonlocal noted, noted_at
            gone = sum(1 for i in seen.values() if i.state is State.DELETED)
            now = time.monotonic()
            if gone != noted and (gone == total or now - noted_at >= WAIT_NOTE_EVERY):
                note(f"{provider}: {gone} of {total} gone ({now - started:.1f}s)")
                noted, noted_at = gone, now

        return tick

    def _send_destroys(self, adapter: Provider, ids: list[str],
                       listed: Mapping[str, Instance] | None) -> list[DestroyResult]:
        """``destroy_many(ids, wait=False)`` in up to ``limits.per_provider`` concurrent slices (one slice
        would send them one after another: at 170 VMs per provider a second or more added to a destroy), and
        no more slices than the adapter needs requests (``Provider.destroy_batch`` ids per request)."""
        k = max(1, min(self.limits.per_provider, math.ceil(len(ids) / adapter.destroy_batch)))
        if k == 1:
            return adapter.destroy_many(ids, wait=False, listed=listed)
        slices = [ids[i::k] for i in range(k)]
        with ThreadPoolExecutor(max_workers=k, thread_name_prefix=f"vmops-destroy-{adapter.name}") as pool:
            parts = list(pool.map(lambda part: adapter.destroy_many(part, wait=False, listed=listed), slices))
        return [r for part in parts for r in part]

    def release_leftovers(self, fleet: FleetRecord) -> list[str]:
        """Ask each provider the fleet used to delete what it still holds for members whose VMs are gone
        (vmops.providers.base.Provider.release_leftovers: a Nebius boot disk left by a crash). Returns what
        went, or why a provider could not be asked, as text."""
        gone: dict[str, list[str]] = {}
        for m in self.store.members(fleet.id):
            if not m.status.may_exist:
                gone.setdefault(m.provider, []).append(m.name)
        out: list[str] = []
        for provider, names in sorted(gone.items()):
            try:
                out += [f"deleted {what} at {provider} (left behind by an earlier crash)"
                        for what in self.provider(provider).release_leftovers(names)]
            except VmopsError as e:
                out.append(f"{provider}: could not check for leftovers of gone members ({e.message})")
        return out

    # ---- stop / start ------------------------------------------------------------------------------
    def power(self, members: Sequence[MemberRecord], *, start: bool) -> list[Undestroyed]:
        """Stop (or start) members and wait; returns the ones that failed, with why."""
        left: list[Undestroyed] = []
        llock = threading.Lock()
        by_provider: dict[str, list[MemberRecord]] = {}
        for m in members:
            if m.instance_id:
                by_provider.setdefault(m.provider, []).append(m)

        def run(provider: str, ms: list[MemberRecord]) -> None:
            adapter = self.provider(provider)
            for m in ms:
                assert m.instance_id is not None
                try:
                    inst = adapter.start(m.instance_id) if start else adapter.stop(m.instance_id)
                    self.store.update_member(m.id, seen=True, price_per_hour=member_price(inst, m),
                                             message=f"{m.name}: {'started' if start else 'stopped'}",
                                             **member_fields(inst))  # type: ignore[arg-type]
                except VmopsError as e:
                    with llock:
                        left.append(Undestroyed(m, e.message))

        per_provider(by_provider, run, "start" if start else "stop", self.request)
        return left
