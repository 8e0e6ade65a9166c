"""The provider seam: one interface, capability flags, and the settled-result contract.

Every adapter subclasses ``Provider``. Rules every adapter keeps:

* It speaks only the normalized model (``vmops.model``) to its callers.
* It maps every provider error to a ``vmops.errors`` class, once, inside the adapter.
* Mutations are settled by default: ``create``/``stop``/``start``/``reboot``/``reset``/``restart``
  return the instance in its target state, ``destroy`` returns it in ``State.DELETED`` once it is gone.
  ``wait=False`` returns what the provider answered at once.
* ``wait_for`` waits on many instances with one list call per poll tick (not one get per instance); the
  first poll comes at the operation's typical duration (catalogue), later ones back off (``poll_delay``).
* Reads retry transient failures; mutations go through ``protocol`` (a create is never blindly re-sent).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterable, Mapping

from vmops.catalogue import ProviderEntry, provider_entry
from vmops.config import ProviderSettings
from vmops.errors import NotFound, OperationTimeout, Unsupported, VmopsError
from vmops.model import CreateRequest, GpuShape, Instance, Offer, Reservation, State
from vmops.providers.pacing import LaunchPace, PaceLimits


class WaitCancelled(Exception):
    """A ``wait_for`` ended early because its ``cancel`` event was set (the caller asked it to stop)."""


@dataclass(frozen=True)
class Capabilities:
    """What callers above the adapters must know to treat a provider right; each flag is read there (a verb a
    provider lacks needs no flag: its method raises Unsupported before anything is sent)."""

    #: can a VM be stopped and started (idle cleanup stops instead of destroying; fleet stop/start)?
    stop_start: bool = True
    #: does a VM carry labels (fleet ownership is proven by labels, else by the state store and name)?
    labels: bool = False
    #: can a reserved instance be destroyed through the API?
    terminate_reserved: bool = True
    #: Can a create be kept off reserved capacity (ReservationPolicy.FORBID honoured everywhere)? False where
    #: the provider places a create into an eligible reservation by itself (Crusoe, ../shared/provider-apis.md
    #: §1.5): its adapter can then only avoid locations with a free reservation of the type.
    forbid_reserved: bool = True
    #: does a create carry an idempotency key, so a resend cannot make a second VM?
    idempotency_key: bool = False


@dataclass(frozen=True)
class Timing:
    poll_interval: float = 1.0  # the longest pause between two polls
    poll_min: float = 0.05  # the shortest pause between two polls
    poll_fraction: float = 0.05  # pause = this fraction of the time already waited (between min and interval)
    op_timeout: float = 600.0
    retry_attempts: int = 5
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    request_timeout: float = 10.0  # the longest wait for one answer (by default the whole deadline)
    connect_timeout: float = 1.0  # a provider that does not accept a connection within this is unreachable
    deadline: float = 10.0  # a read (with its retries) and a fan-out give up on a provider after this


@dataclass(frozen=True)
class DestroyResult:
    id: str
    ok: bool
    instance: Instance | None = None
    error: VmopsError | None = None


#: What each mutating verb waits for.
TARGETS: dict[str, frozenset[State]] = {
    "create": frozenset({State.RUNNING}),
    "start": frozenset({State.RUNNING}),
    "stop": frozenset({State.STOPPED}),
    "reboot": frozenset({State.RUNNING}),
    "reset": frozenset({State.RUNNING}),
    "restart": frozenset({State.RUNNING}),
    "destroy": frozenset({State.DELETED}),
}


@dataclass(frozen=True)
class Resolved:
    """A setting an adapter resolved at run time, with where it came from ("config", "discovered ..."), for
    `vm doctor` (Nebius cloud: the subnet and the image family)."""

    setting: str
    value: str
    source: str


class Provider(ABC):
    """One cloud, behind the normalized model."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, settings: ProviderSettings, timing: Timing | None = None) -> None:
        self.settings = settings
        self.timing = timing or Timing()
        self.catalogue: ProviderEntry = provider_entry(self.name)

    # ---- pace --------------------------------------------------------------------------------
    def pace_limits(self) -> PaceLimits:
        """This adapter's client-side pacing (none: an adapter whose API has limits overrides this)."""
        return PaceLimits()

    def launch_pace(self) -> LaunchPace:
        """What the planner needs to know how long N creates here take (docs/design.md, "Plans that know time")."""
        return LaunchPace(self.pace_limits(), self.catalogue.typical_seconds("create", self.settings.dialect))

    # ---- reads ---------------------------------------------------------------------------------
    @abstractmethod
    def list_instances(self) -> list[Instance]: ...

    @abstractmethod
    def get_instance(self, instance_id: str) -> Instance:
        """The instance, or raise NotFound."""

    def lookup(self, instance_id: str) -> Instance | None:
        """The instance, or None when the provider says it does not exist (NotFound: the only proof a VM is gone).

        What every decision that a VM is gone asks after a listing lacked it: a paged listing skips a VM when
        another is removed between two pages, so absence from one is no proof (docs/design.md). Other errors
        are raised."""
        try:
            return self.get_instance(instance_id)
        except NotFound:
            return None

    def current(self, instance_ids: Iterable[str], listed: Mapping[str, Instance] | None = None) -> dict[str, Instance]:
        """The provider's instances by id, to act on ``instance_ids``: ``listed`` (a listing the caller just
        took, ``destroy_many``'s) when it has every one of them, else a list taken now. An id missing from
        the result is not proof of anything (``lookup``)."""
        if listed is not None and all(i in listed for i in instance_ids):
            return dict(listed)
        return {i.id: i for i in self.list_instances()}

    def find_by_name(self, name: str) -> list[Instance]:
        """Every instance called ``name`` (names are not unique at any provider)."""
        return [i for i in self.list_instances() if i.name == name]

    @abstractmethod
    def reservations(self) -> list[Reservation]: ...

    @abstractmethod
    def offers(self, shape: GpuShape | None = None) -> list[Offer]:
        """What this provider can supply now, per region and type (reserved offers included)."""

    def placement(self, request: CreateRequest) -> tuple[str | None, str | None]:
        """Where ``create(request)`` would put the VM now, worked out with reads only: (region, reservation id it
        would send). `vm create --dry-run` shows it; ``create`` places by the same method. Raises what the create
        would raise before sending (no capacity, an unusable reservation). Default: the request's own region and
        reservation, for a provider that places by itself (Nebius: the project decides)."""
        return request.region, (request.reservation_ids[0] if request.reservation_ids else None)

    def refusal(self, verb: str, instance: Instance | None = None) -> VmopsError | None:
        """Why this adapter refuses ``verb`` before sending anything, worked out without sending: a verb it
        lacks, or (given the VM as just read) a VM it will not act on (Lambda: a reserved instance cannot be
        destroyed through its API). None: the verb would be sent. Dry runs and check modes show it
        (vmops.verbs); the verb methods raise the same error before any request. Default: the lifecycle verbs
        this class leaves unimplemented."""
        if verb in ("reboot", "reset", "restart") and getattr(type(self), verb) is getattr(Provider, verb):
            return Unsupported(f"{self.name} has no {verb}", provider=self.name)
        return None

    def refused(self, verb: str, instance: Instance | None = None) -> VmopsError:
        """``refusal`` of a verb this adapter never sends: what its method raises."""
        error = self.refusal(verb, instance)
        if error is None:  # pragma: no cover - an adapter whose method and refusal disagree
            raise AssertionError(f"{self.name}: {verb} has no refusal")
        return error

    # ---- mutations -----------------------------------------------------------------------------
    @abstractmethod
    def create(self, request: CreateRequest, *, wait: bool = True) -> Instance:
        """Create one VM. If the answer is lost, look the VM up by name before trying again."""

    @abstractmethod
    def stop(self, instance_id: str, *, wait: bool = True) -> Instance: ...

    @abstractmethod
    def start(self, instance_id: str, *, wait: bool = True) -> Instance: ...

    @abstractmethod
    def destroy(self, instance_id: str, *, wait: bool = True) -> Instance:
        """Destroy one VM; with wait, return it with state DELETED once the provider no longer has it."""

    def reboot(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("reboot")

    def reset(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("reset")

    def restart(self, instance_id: str, *, wait: bool = True) -> Instance:
        raise self.refused("restart")

    @property
    def destroy_batch(self) -> int:
        """How many ids one delete request of ``destroy_many`` carries (1: a request per id). A caller that
        sends ``destroy_many`` in concurrent slices makes no more slices than batches."""
        return 1

    def destroy_many(self, instance_ids: Iterable[str], *, wait: bool = True,
                     listed: Mapping[str, Instance] | None = None) -> list[DestroyResult]:
        """Destroy several; never raises for one failure, reports each. Already-gone counts as success.

        ``listed``: what a listing the caller just took showed for these ids (a fleet's observation). An
        adapter that lists before deleting skips its own list when every id is in it; an id it lacks is
        handled as without it. A stale entry does no harm: each delete's own answer says what happened
        (NotFound: already gone)."""
        results: list[DestroyResult] = []
        for iid in instance_ids:
            try:
                inst = self.destroy(iid, wait=wait)
                results.append(DestroyResult(iid, True, inst))
            except NotFound:
                results.append(DestroyResult(iid, True, None))
            except VmopsError as e:
                results.append(DestroyResult(iid, False, None, e))
        return results

    # ---- waiting -------------------------------------------------------------------------------
    def poll_delay(self, waited: float, expected: float = 0.0) -> float:
        """The pause before the next poll after ``waited`` seconds of a wait expected to take ``expected``.

        Until the typical duration (catalogue ``typical``) the pauses run to it, capped by ``poll_interval``
        (so a failure is still seen within an interval): a 3 s create is polled at 1, 2 and 3 s. Past it the
        pauses back off geometrically (half the overtime, at least ``poll_min`` and ``poll_fraction`` of the
        whole wait, at most ``poll_interval``): an operation that is late by d costs about log1.5(d/poll_min)
        polls and ends at most ~d/2 after it settled. ``poll_interval`` caps every pause.
        """
        t = self.timing
        if waited < expected:
            return min(t.poll_interval, expected - waited)
        over = waited - expected
        least = min(t.poll_min, t.poll_interval)
        return min(t.poll_interval, max(least, t.poll_fraction * waited, 0.5 * over))

    def expected_seconds(self, targets: dict[str, frozenset[State]]) -> float:
        """The typical duration of what ``targets`` waits for (RUNNING: create, DELETED: destroy, STOPPED: stop)."""
        if not targets:
            return 0.0
        wanted = list(targets.values())
        for state, verb in ((State.RUNNING, "create"), (State.DELETED, "destroy"), (State.STOPPED, "stop")):
            if all(state in w for w in wanted):
                return self.catalogue.typical_seconds(verb)
        return 0.0

    def wait_for(
        self,
        targets: dict[str, frozenset[State]],
        *,
        timeout: float | None = None,
        on_tick: Callable[[dict[str, Instance]], None] | None = None,
        expected: float | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Instance]:
        """Wait until every instance id reaches one of its target states; one list call per tick.

        ``expected``: seconds from now until the operation typically finishes (default: the catalogue's
        typical duration of what the targets wait for); the first poll is then (or after ``poll_interval``),
        not at once. An instance missing from the list counts as DELETED; where DELETED is only one of the
        states a wait accepts (a create's, settled either way), it is looked up by id first, since a paged
        listing skips a VM when another is removed between two pages. Raises OperationTimeout naming the
        first instance still not settled and its state. An instance in ERROR while not targeted raises too.
        ``cancel``: once set, the wait ends within a moment (WaitCancelled), even in the middle of a pause.
        """
        timeout = self.timing.op_timeout if timeout is None else timeout
        expected = self.expected_seconds(targets) if expected is None else max(0.0, expected)
        started = time.monotonic()
        deadline = started + timeout
        seen: dict[str, Instance] = {}

        def pause(seconds: float) -> None:
            if cancel is None:
                time.sleep(seconds)
            elif cancel.wait(seconds):
                raise WaitCancelled()

        if expected > 0:
            pause(min(self.poll_delay(0.0, expected), timeout))
        while True:
            if cancel is not None and cancel.is_set():
                raise WaitCancelled()
            current = {i.id: i for i in self.list_instances() if i.id in targets}
            pending = []
            for iid, want in targets.items():
                inst = current.get(iid)
                if inst is None:
                    inst = self._absent(iid, want, seen.get(iid))
                seen[iid] = inst
                if inst.state not in want:
                    pending.append(iid)
            if on_tick:
                on_tick(dict(seen))
            if not pending:
                return seen
            for iid in pending:
                if seen[iid].state is State.ERROR and State.ERROR not in targets[iid]:
                    return seen  # caller decides; an errored VM will not settle by waiting
            if time.monotonic() >= deadline:
                iid = pending[0]
                st = seen[iid].state.value
                raise OperationTimeout(
                    f"instance {iid} ({seen[iid].name}) is still {st} after {timeout:g}s, "
                    f"waiting for {'/'.join(sorted(s.value for s in targets[iid]))}",
                    provider=self.name, instance_id=iid, stuck_state=st,
                )
            pause(self.poll_delay(time.monotonic() - started, expected))

    def _absent(self, iid: str, want: frozenset[State], last: Instance | None) -> Instance:
        """What a wait takes an instance its listing lacks to be (see ``wait_for``)."""
        if State.DELETED in want and len(want) > 1:
            try:
                found = self.lookup(iid)
            except VmopsError:
                return last or Instance(self.name, iid, "", State.UNKNOWN, "(unread)", "")
            if found is not None:
                return found
        return _gone(self.name, iid, last)

    def settle(self, instance: Instance, verb: str, *, timeout: float | None = None,
               expected: float | None = None) -> Instance:
        """Wait for one instance to reach the target of ``verb`` (helper for adapters); ``expected`` defaults
        to the typical duration of ``verb`` at this provider."""
        if expected is None:
            expected = self.catalogue.typical_seconds(verb)
        result = self.wait_for({instance.id: TARGETS[verb]}, timeout=timeout, expected=expected)[instance.id]
        return result

    def check_access(self) -> str:
        """One cheap authenticated call, for `vm doctor`: a short description of what it saw, or a typed error.
        Adapters override it with their cheapest call."""
        return f"{len(self.list_instances())} instance(s) visible"

    def clock_skew(self) -> float | None:
        """Server clock minus this machine's, in seconds, where requests are signed with the time; else None."""
        return None

    def resolved(self) -> tuple[Resolved, ...]:
        """Settings a create needs that may be discovered instead of configured, resolved now (`vm doctor`);
        a setting that cannot be resolved raises its typed error. Most adapters resolve nothing."""
        return ()

    def release_leftovers(self, vm_names: Iterable[str]) -> list[str]:
        """Delete what this provider still holds for VMs vmops made under ``vm_names`` that no longer exist
        (Nebius cloud: their boot disks, when a crash came between the disk and the instance); returns what
        was deleted. Most providers make nothing beside the VM: nothing to do."""
        return []

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> "Provider":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gone(provider: str, iid: str, last: Instance | None) -> Instance:
    if last is not None:
        from dataclasses import replace

        return replace(last, state=State.DELETED, native_state="(gone)")
    return Instance(provider=provider, id=iid, name="", state=State.DELETED, native_state="(gone)", native_type="")
