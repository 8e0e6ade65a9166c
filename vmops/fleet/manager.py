"""The fleet manager: the one facade every front end calls (CLI, notebooks, dashboard, Ansible modules).

Each command is observe -> decide -> apply (Kubernetes controllers; Terraform's plan/apply):

* ``observe`` (vmops.fleet.observe) reads the record and the providers' truth;
* ``decide`` (vmops.fleet.lifecycle) is pure: it returns a ``Decision`` naming exactly which VMs are
  adopted, marked gone, stopped, started or destroyed, and why, with the hourly cost before and after;
* ``apply`` (vmops.fleet.members) carries it out write-ahead. ``preview_*`` return the Decision without
  applying it (``--dry-run``, Ansible check mode); the front end may ask for confirmation in between
  (``confirm``), and what is then applied is exactly the Decision it was shown.

Its first duty is that vmops never loses track of a VM it made (write-ahead records, lost answers resolved
by name, the one ownership rule) and never destroys what nobody asked it to (docs/design.md).
Nothing here names a provider.
"""

from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

from vmops.errors import PartialFailure, ProviderUnavailable, VmopsError
from vmops.fleet.decision import Action, ActionKind, Decision
from vmops.fleet.interrupt import StopRequest, sigint_requests
from vmops.fleet.lifecycle import (decide_destroy, decide_power, decide_reconcile, join_destroys, resume_counts,
                                   settle_needed, sync_actions)
from vmops.fleet.members import Members, per_provider
from vmops.fleet.naming import generate_fleet_name
from vmops.fleet.health import count, health
from vmops.fleet.observe import Observation, observe
from vmops.fleet.progress import Listener, Progress
from vmops.fleet.report import (CreatePreview, CreateResult, FleetDestroyIncomplete, FleetInterrupted, FleetView, Table,
                                Undestroyed, UnrecordedKept, no_fleets_yet, view_on_record, views_on_record)
from vmops.fleet.spec import FleetSpec, Limits
from vmops.model import Instance
from vmops.providers.base import Provider
from vmops.session import Session
from vmops.state import RESUMABLE, FleetRecord, FleetState, MemberRecord, Store, store_exists, store_for
from vmops.state.backend import Lock

if TYPE_CHECKING:  # the create pipeline and the planner load where a command plans or creates (not destroy)
    from vmops.fleet.planner import Plan

#: A front end's confirmation: shown the Decision, returns whether to go ahead.
Confirm = Callable[[Decision], bool]


class Cancelled(VmopsError):
    """The user said no at a confirmation prompt: nothing was changed."""

    exit_code = 1
    kind = "cancelled"
    default_hint = "Nothing was changed"


class FleetManager:
    """Fleets over every enabled provider. One instance per command; thread-safe internally."""

    def __init__(self, session: Session | None = None, *, store: Store | None = None, limits: Limits | None = None,
                 progress: Listener | None = None, note: Callable[[str], None] | None = None) -> None:
        self.session = session or Session()
        self.config = self.session.config
        self._store = store
        self.limits = limits or Limits()
        self.listener = progress
        self.note = note or (lambda _msg: None)
        #: provider -> its instance list, taken once for a run of previews (``previews_from``)
        self._listings: dict[str, list[Instance]] = {}
        self._unlisted: dict[str, str] = {}  # provider -> why that run's list failed

    # ------------------------------------------------------------------ plumbing
    @property
    def store(self) -> Store:
        """The state store, opened (and made, if new) on first use: planning alone never writes a file."""
        if self._store is None:
            self._store = store_for(self.config)
        return self._store

    def _reading(self) -> Store:
        """The store for a command that only reads: a missing state file means no fleets, and stays missing."""
        if self._store is None and not store_exists(self.config):
            raise no_fleets_yet()
        return self.store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> "FleetManager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def provider(self, name: str) -> Provider:
        return self.session.provider(name)

    def lock(self, name: str) -> Lock:
        return self.store.fleet_lock(name)

    def _members(self, request: StopRequest | None = None, *, noting: bool = False) -> Members:
        """``noting``: a destroy's progress goes to the command's ``note`` (not during a create, whose own
        progress display is on screen)."""
        return Members(self.store, self.provider, self.limits, request, self.note if noting else None)

    def _terminate_reserved(self, obs: Observation) -> dict[str, bool]:
        return {p: self.provider(p).capabilities.terminate_reserved for p in {m.provider for m in obs.members}}

    # ------------------------------------------------------------------ observe
    def observe(self, fleet: FleetRecord, only: str | None = None) -> Observation:
        """The fleet's record and its providers' lists (``only``: that provider's members and list alone)."""
        store = self.store
        members = [m for m in store.members(fleet.id) if only is None or m.provider == only]
        return observe(fleet, members, store_id=store.identities, provider=self.provider,
                       recorded=lambda p, iid: store.member_by_instance(p, iid) is not None,
                       listed=self._listings, unlisted=self._unlisted, failed=self.session.remember_failure)

    @contextmanager
    def previews_from(self, listings: Mapping[str, list[Instance]],
                      failures: Mapping[str, str] | None = None) -> Iterator[None]:
        """Inside, previews (``preview_reconcile``/``preview_destroy``) observe from these provider lists
        instead of listing each fleet's providers again: one list per provider for a run over every fleet
        (`vm state check`, nightly cleanup's plan). The lists must be taken before the record is read (what a
        list shows was then already on record: write-ahead). ``failures``: providers whose list failed, and
        why (not asked again per fleet). Only for reads; commands that act list afresh.
        """
        previous = self._listings, self._unlisted
        self._listings, self._unlisted = dict(listings), dict(failures or {})
        try:
            yield
        finally:
            self._listings, self._unlisted = previous

    @contextmanager
    def _read_lists(self, providers: Callable[[], set[str]]) -> Iterator[None]:
        """For a view (``status``, ``list(refresh=True)``): the fleets' ``providers()`` listed once each,
        through the session's fan-out, so a provider that just failed to answer is skipped at once (its
        breaker) and one that does not answer now opens it for the next command. Taken before the members are
        read again to be observed (write-ahead); inside ``previews_from`` already, those lists stand."""
        if self._listings or self._unlisted:
            yield
            return
        listing = self.session.instances(sorted(providers()))
        with self.previews_from(listing.results, listing.reasons()):
            yield

    def _sync(self, fleet: FleetRecord, *, adopt: bool = True) -> list[str]:
        """Observe and apply the record-only actions; return what changed."""
        obs = self.observe(fleet)
        return self._members().apply_sync(fleet, obs, sync_actions(obs, adopt=adopt))

    # ------------------------------------------------------------------ planning
    def plan(self, spec: FleetSpec, count: int | None = None) -> Plan:
        """Ask the providers (reads only) and allocate ``count`` (default: the spec's) VMs by the policy."""
        from vmops.fleet.planner import plan_fleet

        return plan_fleet(spec.validated(), self.provider, self.session.fan_out, self.config.enabled, count)

    def preview_create(self, spec: FleetSpec) -> CreatePreview:
        """What ``create(spec)`` would do, asking the providers but recording and sending nothing: the plan for
        a new fleet; for a name ``create`` would resume, the fleet's VMs it keeps and the plan for the rest
        (to the recorded terms where ``spec`` gives none). A name ``create`` would refuse is refused here the
        same way (``Store.refusal``), and a fleet another process holds the lock of likewise."""
        from vmops.fleet.planner import Plan

        spec = spec.validated()
        existing = (self.store.find_fleet(spec.name) if spec.name is not None
                    and (self._store is not None or store_exists(self.config)) else None)
        if existing is None or existing.state is FleetState.DESTROYED:
            plan = self.plan(spec)
            return CreatePreview(plan, spec.min, unanswered=_nobody_answered(plan))
        with self.lock(spec.name):  # for a moment, as the create takes it first: busy there is busy here
            refused = self.store.refusal(existing, gpu=str(spec.gpu), count=spec.count)
        if refused is not None:
            raise refused
        obs = self.observe(existing)
        made, starting = resume_counts(obs, sync_actions(obs, adopt=True))
        terms = _resumed_terms(existing, spec)
        need = max(0, spec.count - made - starting)
        plan = self.plan(terms, count=need) if need else Plan(spec.gpu, 0, str(terms.policy), [], [])
        return CreatePreview(plan, terms.min, existing, _resume_changes(existing, spec), made, starting,
                             dict(obs.failures), _nobody_answered(plan))

    # ------------------------------------------------------------------ views
    def list(self, *, refresh: bool = False) -> list[FleetView]:
        """Fleets on record; with ``refresh`` each live fleet is observed first (as ``status`` does)."""
        if self._store is None and not store_exists(self.config):
            return []
        if refresh:
            fleets = self.store.list_fleets()
            live = {f.id for f in fleets if f.state is not FleetState.DESTROYED}
            with self._read_lists(lambda: {m.provider for fid, ms in self.store.members_by_fleet().items()
                                           if fid in live for m in ms}):
                return [self.status(f.name) if f.state is not FleetState.DESTROYED else
                        FleetView(f, self.store.members(f.id)) for f in fleets]
        return views_on_record(self.store)

    def status(self, name: str, *, refresh: bool = True) -> FleetView:
        if not refresh:
            return view_on_record(self._reading(), name)
        fleet = self._reading().get_fleet(name)
        lock = self.lock(name)
        held = lock.try_acquire()
        try:
            with self._read_lists(lambda: {m.provider for m in self.store.members(fleet.id)}):
                obs = self.observe(fleet)
            changes = self._members().apply_sync(fleet, obs, sync_actions(obs, adopt=held))
            fleet = self.store.fleet(fleet.id)
            members = self.store.members(fleet.id)
            state = health(fleet, count(members))
            if held and state is not fleet.state and not obs.failures:
                fleet = self.store.set_fleet_state(fleet.id, state, message=f"seen {state.value} by status")
            view = FleetView.observed(fleet, members, obs.failures, changes)
            if not held:
                view.warnings.append(f"fleet {name!r} is busy in another vm process; showing it without adopting")
            return view
        finally:
            lock.release()

    # ------------------------------------------------------------------ create
    def create(self, spec: FleetSpec, *, request: StopRequest | None = None) -> CreateResult:
        """Create (or resume) a fleet. Ctrl-C (in the main thread) or ``request.stop`` rolls back what this
        command made; a second press leaves the fleet recorded."""
        spec = spec.validated()
        request = request or StopRequest()
        with sigint_requests(request):
            store = self.store  # opened (and checked) before any lock file or provider call
            if request.stopping:
                raise FleetInterrupted("fleet create interrupted before anything was recorded", hint="")
            name = spec.name
            if name is None:
                taken = {f.name for f in store.list_fleets()}
                name = generate_fleet_name(taken)
                self.note(f"fleet name: {name}")
            lock = self.lock(name).acquire()
            try:
                return self._create_locked(name, spec, request)
            finally:
                lock.release()

    def _create_locked(self, name: str, spec: FleetSpec, request: StopRequest) -> CreateResult:
        existing = self.store.find_fleet(name)
        refused = self.store.refusal(existing, gpu=str(spec.gpu), count=spec.count) if existing else None
        if refused is not None:  # before planning: a taken name costs no provider's time (claim_fleet checks again)
            raise refused
        resuming = existing is not None and existing.state in RESUMABLE
        first: Plan | None = None
        if not resuming:
            first = self._plan_new(spec)
            if request.stopping:
                raise FleetInterrupted(f"fleet {name!r}: interrupted while planning; nothing was made", hint="")
        fleet, resumed = self.store.claim_fleet(
            name, gpu=str(spec.gpu), count=spec.count, min_count=spec.min_count, policy=spec.policy,
            allow_unterminable_reserved=spec.allow_unterminable_reserved, reserved_mode=spec.reserved_mode)
        prior = None
        if resumed and existing is not None:
            prior = existing.state
            self.note(f"resuming fleet {name!r} (was {existing.state.value}): " + "; ".join(_resume_changes(existing, spec)))
        spec = _resumed_terms(fleet, dataclasses.replace(spec, name=name))

        def plan(s: FleetSpec, n: int) -> Plan:
            nonlocal first
            if first is not None and first.count == n:
                p, first = first, None
                return p
            return self.plan(s, count=n)

        from vmops.fleet.create import CreateContext, CreateRun

        ctx = CreateContext(self.store, self.provider, self._members(request), plan,
                            lambda f: self._sync(f, adopt=True), self.limits, request, self.note, self.listener)
        return CreateRun(ctx, fleet, spec, resumed, prior).execute()

    def _plan_new(self, spec: FleetSpec) -> Plan:
        """Plan a new fleet before anything is recorded; refuse at once (no record, no create sent) when the
        plan shows its minimum cannot be met from what the providers said."""
        plan = self.plan(spec)
        refused = CreatePreview(plan, spec.min, unanswered=_nobody_answered(plan)).error()  # as its dry run says
        if refused is not None:
            raise refused
        return plan

    # ------------------------------------------------------------------ destroy
    def preview_destroy(self, name: str, *, include_unrecorded: bool = False) -> Decision:
        """What ``destroy`` would do now (reads only)."""
        fleet = self._reading().get_fleet(name)
        obs = self.observe(fleet)
        return decide_destroy(obs, sync_actions(obs, adopt=True), self._terminate_reserved(obs),
                              include_unrecorded=include_unrecorded)

    def destroy(self, name: str, *, confirm: Confirm | None = None, include_unrecorded: bool = False) -> FleetView:
        """Destroy the fleet's members (``include_unrecorded``: also VMs that are the fleet's by the ownership
        rule but not on record). Exit 14 (FleetDestroyIncomplete) while anything named for it is left.

        With ``confirm``, the whole Decision is shown first and exactly it is applied. Without one (``-y``, a
        script, a notebook), each provider's part is observed, decided (its summary goes to ``note``) and
        applied on its own thread, so a provider that hangs delays only its own members (docs/design.md,
        "Providers never wait for each other")."""
        fleet = self._reading().get_fleet(name)
        with self.lock(name):
            fleet = self.store.fleet(fleet.id)
            if confirm is None:
                fleet = self.store.set_fleet_state(fleet.id, FleetState.DESTROYING, message="destroy requested")
                return self._destroy_by_provider(fleet, include_unrecorded)
            obs = self.observe(fleet)
            decision = decide_destroy(obs, sync_actions(obs, adopt=True), self._terminate_reserved(obs),
                                      include_unrecorded=include_unrecorded)
            if decision.touches_vms and not confirm(decision):
                raise Cancelled(f"destroy of fleet {name!r} cancelled")
            fleet = self.store.set_fleet_state(fleet.id, FleetState.DESTROYING, message="destroy requested")
            return self._apply_destroy(fleet, obs, decision)

    def _destroy_by_provider(self, fleet: FleetRecord, include_unrecorded: bool) -> FleetView:
        """``destroy`` without a confirmation: one lane per provider observes, decides and destroys its part."""
        parts: dict[str, tuple[Observation, Decision, list[str], list[Undestroyed]]] = {}
        plock = threading.Lock()

        def lane(provider: str, _members: list[MemberRecord]) -> None:
            obs = self.observe(fleet, only=provider)
            decision = decide_destroy(obs, sync_actions(obs, adopt=True), self._terminate_reserved(obs),
                                      include_unrecorded=include_unrecorded)
            self.note(decision.summary(f"at {provider}"))
            changes, left = self._destroy_part(fleet, obs, decision)
            with plock:
                parts[provider] = (obs, decision, changes, left)

        groups: dict[str, list[MemberRecord]] = {}
        for m in self.store.members(fleet.id):
            groups.setdefault(m.provider, []).append(m)
        per_provider(groups, lane, "destroy")
        ordered = [parts[p] for p in sorted(parts)]
        obs = Observation.joined(fleet, [o for o, _, _, _ in ordered])
        decision = join_destroys(fleet.name, [d for _, d, _, _ in ordered])
        return self._finish_destroy(fleet, obs, decision, [c for _, _, cs, _ in ordered for c in cs],
                                    [u for _, _, _, us in ordered for u in us])

    def _destroy_part(self, fleet: FleetRecord, obs: Observation,
                      decision: Decision) -> tuple[list[str], list[Undestroyed]]:
        """Record what ``obs`` showed and destroy what ``decision`` names: (what changed, what is left)."""
        members = self._members(noting=True)
        changes = members.apply_sync(fleet, obs, [a for a in decision.actions if a.kind is not ActionKind.DESTROY])
        # Held members go through destroy() too: it sends nothing for them, but marks a member the provider
        # can never destroy through its API once (``undestroyable``) and reports each with its reason.
        return changes, members.destroy(members.members_for(fleet, decision.destroys + decision.held), obs)

    def _apply_destroy(self, fleet: FleetRecord, obs: Observation, decision: Decision, *,
                       quiet_undestroyable: bool = False) -> FleetView:
        """Carry out a destroy Decision. ``quiet_undestroyable`` (reconcile): members the provider can never
        destroy through its API are reported as warnings, not raised every time (they are marked once)."""
        changes, left = self._destroy_part(fleet, obs, decision)
        return self._finish_destroy(fleet, obs, decision, changes, left, quiet_undestroyable=quiet_undestroyable)

    def _finish_destroy(self, fleet: FleetRecord, obs: Observation, decision: Decision, changes: list[str],
                        left: list[Undestroyed], *, quiet_undestroyable: bool = False) -> FleetView:
        """After a destroy's VMs were asked to go: leftovers released, the fleet's state set, the view."""
        changes += self._members().release_leftovers(fleet)
        view = FleetView.observed(self.store.fleet(fleet.id), self.store.members(fleet.id), obs.failures, changes,
                                  decision)
        kept = [a for a in decision.held if a.member_id is None and a.instance_id]  # unrecorded, not named
        if not left and not obs.failures:
            view.fleet = self.store.set_fleet_state(fleet.id, FleetState.DESTROYED, error=None,
                                                    message="every member is gone")
            if kept:
                raise UnrecordedKept(fleet.name, kept)
            return view
        if not left:  # a provider could not be listed: its members were destroyed by id, not confirmed
            still = [m for m in view.members if m.status.may_exist]
            if not still:
                view.fleet = self.store.set_fleet_state(fleet.id, FleetState.DESTROYED, error=None,
                                                        message="every member is gone")
                if kept:
                    raise UnrecordedKept(fleet.name, kept)
                return view
            left = [Undestroyed(m, m.last_error or "its provider could not be listed") for m in still]
        msg = f"fleet {fleet.name!r}: {len(left)} member(s) could not be destroyed and stay recorded"
        self.store.set_fleet_state(fleet.id, FleetState.DESTROYING, error=msg)
        if quiet_undestroyable and not obs.failures and all(self.store.member(u.member.id).undestroyable
                                                            for u in left):
            view.fleet = self.store.fleet(fleet.id)
            view.members = self.store.members(fleet.id)
            view.warnings += [f"{u.member.name} ({u.member.instance_id}) at {u.member.provider} cannot be destroyed "
                              f"through the API and stays recorded: {u.reason}" for u in left]
            return view
        if obs.failures:
            msg += " (" + "; ".join(f"{p}: {e}" for p, e in obs.failures.items()) + ")"
        raise FleetDestroyIncomplete(msg, undestroyed=left,
                                     hint=f"Run `vm fleet destroy {fleet.name}` again once the cause is fixed")

    # ------------------------------------------------------------------ reconcile
    def _reconcile_observation(self, fleet: FleetRecord, *, settle: bool) -> tuple[Observation, list[Action]]:
        obs = self.observe(fleet)
        sync = sync_actions(obs, adopt=True)
        if settle and fleet.state is FleetState.CREATING and settle_needed(obs, sync):
            # The lock is ours, so the create that owned this fleet is gone: wait for what it started.
            self._members().apply_sync(fleet, obs, sync)
            self._members().settle(fleet, Progress())
            fleet = self.store.fleet(fleet.id)
            obs = self.observe(fleet)
            sync = sync_actions(obs, adopt=True)
        return obs, sync

    def preview_reconcile(self, name: str, *, destroy_surplus: bool = False) -> Decision:
        """What ``reconcile`` would do now (reads only; accepted creates are not waited for)."""
        fleet = self._reading().get_fleet(name)
        obs, sync = self._reconcile_observation(fleet, settle=False)
        return decide_reconcile(obs, sync, self._terminate_reserved(obs), destroy_surplus=destroy_surplus)

    def reconcile(self, name: str, *, destroy_surplus: bool = False, confirm: Confirm | None = None) -> FleetView:
        """Bring the record in line with the providers and finish what was interrupted (never destroying a
        VM that exists unless a destroy was asked for, or ``destroy_surplus`` for members beyond the count)."""
        fleet = self._reading().get_fleet(name)
        with self.lock(name):
            fleet = self.store.fleet(fleet.id)
            obs, sync = self._reconcile_observation(fleet, settle=True)
            fleet = obs.fleet
            decision = decide_reconcile(obs, sync, self._terminate_reserved(obs), destroy_surplus=destroy_surplus)
            if confirm is not None and decision.touches_vms and not confirm(decision):
                raise Cancelled(f"reconcile of fleet {name!r} cancelled")
            if fleet.state is FleetState.DESTROYING or (fleet.state is FleetState.DESTROYED and (
                    decision.destroys or decision.held)):
                if fleet.state is FleetState.DESTROYED:
                    fleet = self.store.set_fleet_state(fleet.id, FleetState.DESTROYING,
                                                       message="VMs found after destroy")
                view = self._apply_destroy(fleet, obs, decision, quiet_undestroyable=True)
                view.changes.append("finished the interrupted destroy")
                return view
            members = self._members()
            changes = members.apply_sync(fleet, obs, [a for a in decision.actions if a.kind is not ActionKind.DESTROY])
            left = members.destroy(members.members_for(fleet, decision.destroys), obs) if decision.destroys else []
            for a in decision.destroys:
                changes.append(f"destroyed {a.name} ({a.instance_id}) at {a.provider}: {a.reason}")
            changes += members.release_leftovers(fleet)
            state = FleetState(decision.next_state) if decision.next_state else fleet.state
            if state is not fleet.state:
                error = None if state is FleetState.ACTIVE else "; ".join(decision.notes) or None
                self.store.set_fleet_state(fleet.id, state, error=error, message="reconciled")
                changes.append(f"fleet is now {state.value}")
            view = FleetView.observed(self.store.fleet(fleet.id), self.store.members(fleet.id), obs.failures,
                                      changes, decision)
            for h in decision.held:
                view.warnings.append(f"held: {h.name} ({h.instance_id}) at {h.provider}: {h.reason}")
            if left:
                raise FleetDestroyIncomplete(f"fleet {name!r}: {len(left)} member(s) could not be destroyed",
                                             undestroyed=left)
            return view

    def reconcile_all(self, *, destroy_surplus: bool = False, confirm: Confirm | None = None) -> list[FleetView]:
        """Reconcile every fleet on record. One fleet's failure never stops the others: each is reported,
        and a PartialFailure naming them is raised at the end (``views`` on it holds the others)."""
        if self._store is None and not store_exists(self.config):
            return []
        out: list[FleetView] = []
        errors: list[str] = []
        for f in self.store.list_fleets():
            if f.state is FleetState.DESTROYED:
                continue
            try:
                out.append(self.reconcile(f.name, destroy_surplus=destroy_surplus, confirm=confirm))
            except VmopsError as e:
                errors.append(f"{f.name}: {e.message}")
        if errors:
            err = PartialFailure("reconcile failed for " + "; ".join(errors),
                                 hint="The other fleets were reconciled; see `vm fleet status NAME` for each")
            err.views = out  # type: ignore[attr-defined]
            raise err
        return out

    # ------------------------------------------------------------------ stop / start
    def preview_power(self, name: str, *, start: bool) -> Decision:
        fleet = self._reading().get_fleet(name)
        obs = self.observe(fleet)
        return decide_power(obs, sync_actions(obs, adopt=False), start=start, can_stop=self._can_stop(obs))

    def _can_stop(self, obs: Observation) -> dict[str, bool]:
        return {p: self.provider(p).capabilities.stop_start for p in {m.provider for m in obs.members}}

    def power(self, name: str, *, start: bool, confirm: Confirm | None = None) -> FleetView:
        """``vm fleet stop F`` / ``vm fleet start F``: every member that can be, at once per provider."""
        fleet = self._reading().get_fleet(name)
        with self.lock(name):
            fleet = self.store.fleet(fleet.id)
            obs = self.observe(fleet)
            decision = decide_power(obs, sync_actions(obs, adopt=True), start=start, can_stop=self._can_stop(obs))
            if confirm is not None and decision.touches_vms and not confirm(decision):
                raise Cancelled(f"{decision.command} of fleet {name!r} cancelled")
            members = self._members()
            changes = members.apply_sync(fleet, obs, [a for a in decision.actions if not a.kind.touches_vm])
            targets = members.members_for(fleet, [a for a in decision.actions if a.kind.touches_vm])
            failed = members.power(targets, start=start)
            view = FleetView.observed(self.store.fleet(fleet.id), self.store.members(fleet.id), obs.failures,
                                      changes, decision)
            for h in decision.held:
                view.warnings.append(f"{h.name} at {h.provider} left as it is: {h.reason}")
            if failed:
                raise FleetDestroyIncomplete(
                    f"fleet {name!r}: {len(failed)} member(s) could not be {'started' if start else 'stopped'}",
                    undestroyed=failed, hint=f"Run `vm fleet {decision.command} {name}` again once the cause is fixed")
            return view


def _nobody_answered(plan: Plan) -> VmopsError | None:
    """When no provider answered the plan at all, the error that says so: the cause is theirs (down, bad key
    ...), not capacity. One sentence, each provider's cause on its own line, each distinct hint once."""
    errors = [s.error for s in plan.skipped if s.error is not None]
    if plan.options or not errors or len(errors) != len({s.provider for s in plan.skipped}):
        return None
    first = errors[0]
    cls = type(first) if all(e.exit_code == first.exit_code for e in errors) else ProviderUnavailable
    hints = list(dict.fromkeys(e.hint.rstrip(".") for e in errors if e.hint))
    err = cls(f"no provider could be asked for {plan.gpu} capacity; nothing was created",
              provider=first.provider if len({e.provider for e in errors}) == 1 else None,
              hint=". ".join(hints) or "Check the providers' endpoints and keys (`vm config show`)")
    err.tables = (Table(None, (("provider", "PROVIDER"), ("reason", "WHY")),
                        tuple({"provider": s.provider, "reason": s.error.message if s.error else s.reason}
                              for s in plan.skipped)),)
    return err


def _resumed_terms(fleet: FleetRecord, spec: FleetSpec) -> FleetSpec:
    """The terms a create of ``fleet`` works to: what ``spec`` gives anew, else what is recorded (after
    ``claim_fleet``, the record already holds what was given anew)."""
    return dataclasses.replace(
        spec, min_count=fleet.min_count if spec.min_count is None else spec.min_count,
        policy=fleet.policy if spec.policy is None else spec.policy,
        reserved_mode=fleet.reserved_mode if spec.reserved_mode is None else spec.reserved_mode,
        allow_unterminable_reserved=spec.allow_unterminable_reserved or fleet.allow_unterminable_reserved)


def _resume_changes(old: FleetRecord, spec: FleetSpec) -> list[str]:
    """What a resume changes from the record and what it keeps, in words ("min 3 -> 2", "as recorded: ...")."""
    kept, changed = [], []
    for what, recorded, given in (("min", old.min_count, spec.min_count), ("policy", old.policy, spec.policy),
                                  ("reserved", old.reserved_mode, spec.reserved_mode)):
        if given is None or given == recorded:
            kept.append(f"{what} {recorded}")
        else:
            changed.append(f"{what} {recorded} -> {given}")
    return changed + ([f"as recorded: {', '.join(kept)}"] if kept else [])


__all__ = ["Cancelled", "Confirm", "FleetManager", "FleetSpec", "Limits"]
