"""The protocol every adapter follows around its wire calls, written once (design.md "Shared protocol").

* ``reading``: a read's retries: bounded, paced by Retry-After or jittered backoff, within the command's deadline,
  never after a refused connection (nothing listens). ``retrying``: the same loop for a repeatable call that
  also retries a refused connection and has no deadline (the cloud adapters' follow-up reads and mutations
  that carry an idempotency key). Both are ``retry.with_retries``.
* ``create_resolving``: send a create; when its answer is lost or refused transiently, look for what it made
  (by name / idempotency key, through the adapter's ``find_new``) before any resend, and adopt a find.
  A create is never re-sent blindly.
* ``mutate_confirming``: send a state change; after a transient failure ask ``confirm`` whether it took effect
  before sending it again (or, for a provider whose resend is refused once the change is made, resend and
  confirm on that refusal).

Both mutation loops are one loop (``_send_looking``); a ``Resend`` says where a provider's rule differs (which
failures are worth a look, whether a refused connection ends it, whether the pause comes before the look).
Adapters pass their own wire functions; this module knows no provider. Every adapter, reference and cloud
dialect alike, uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from vmops.errors import NotFound, NotSent, ProviderUnavailable, Silent, Unreachable, VmopsError
from vmops.model import CreateRequest, Instance
from vmops.providers.base import Timing
from vmops.providers.retry import find_created, retry_delay, with_retries
from vmops.providers.tls import NotTransient

T = TypeVar("T")
R = TypeVar("R")


def reading(fn: Callable[[], T], timing: Timing, *, sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()`` (a read) with up to ``timing.retry_attempts`` tries on transient failures within ``timing.deadline``;
    a refused connection is raised at once, and so is an error a retry loop must not retry (``NotTransient``)."""
    try:
        return with_retries(fn, attempts=timing.retry_attempts, base_delay=timing.retry_base_delay,
                            max_delay=timing.retry_max_delay, sleep=sleep, budget=timing.deadline)
    except NotTransient as e:
        raise e.error from None


def retrying(fn: Callable[[], T], timing: Timing, *, sleep: Callable[[float], None] = time.sleep,
             on_retry: Callable[[ProviderUnavailable], None] | None = None, retry_unreachable: bool = True) -> T:
    """``fn()`` with up to ``timing.retry_attempts`` tries on ProviderUnavailable, a refused connection included
    unless ``retry_unreachable`` is false (only for repeatable calls)."""
    return with_retries(fn, attempts=timing.retry_attempts, base_delay=timing.retry_base_delay,
                        max_delay=timing.retry_max_delay, sleep=sleep, retry_unreachable=retry_unreachable,
                        on_retry=on_retry)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Resend:
    """How a mutation that failed transiently is looked into before it is sent again. The defaults are the rule
    (look after every failure, then pause, then resend); each field is a provider's documented difference."""

    #: the failures after which the change may have happened, so a look comes before a resend; after any other
    #: transient failure the mutation is resent without a look (Nebius: a key-deduplicated create looks only
    #: when the answer was lost or unreadable, never after an error the server answered)
    look_on: tuple[type[ProviderUnavailable], ...] = (ProviderUnavailable,)
    #: a refused connection (``Unreachable``) ends the mutation at once: nothing was sent (Lambda, Nebius)
    unreachable_ends: bool = False
    #: pause before the look, not after it: the provider gets the pause to show what it did (Lambda)
    pause_first: bool = False
    #: look after the last failed send too; else the last failure is raised at once (Lambda terminate)
    look_after_last: bool = True


#: the rule as written: every transient failure is looked into, then paced, then resent
LOOK_THEN_RESEND = Resend()


def _send_looking(send: Callable[[], T], look: Callable[[ProviderUnavailable], R | None], timing: Timing,
                  resend: Resend, sleep: Callable[[float], None],
                  on_retry: Callable[[ProviderUnavailable], None] | None) -> tuple[T | None, R | None]:
    """Send at most ``retry_attempts`` times; after each transient failure ``look(error)`` (when ``resend`` says
    so) and stop with what it found (not None), else pause and send again. (answer, None) or (None, found)."""
    attempts = max(1, timing.retry_attempts)
    for attempt in range(attempts):
        try:
            return send(), None
        except ProviderUnavailable as e:  # lost/unreadable answer, 5xx, 429, refused connection
            last = attempt == attempts - 1
            if isinstance(e, Silent):  # not sent, and the provider is not answering: no look, no resend
                raise
            if (resend.unreachable_ends and isinstance(e, Unreachable)) or (last and not resend.look_after_last):
                raise
            if resend.pause_first:
                sleep(retry_delay(e, attempt, timing.retry_base_delay, timing.retry_max_delay))
            if isinstance(e, resend.look_on):
                found = look(e)
                if found is not None:
                    return None, found
            if last:
                raise
            if on_retry:
                on_retry(e)
            if not resend.pause_first:
                sleep(retry_delay(e, attempt, timing.retry_base_delay, timing.retry_max_delay))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Created(Generic[T]):
    """What a create came to: the provider's answer, or (answer lost) the instance found and adopted."""

    answer: T | None = None
    adopted: Instance | None = None


def named_before(request: CreateRequest, find_by_name: Callable[[str], list[Instance]]) -> set[str]:
    """The ids of the VMs that carry a create's name before it is sent (names are not unique, so a lost answer
    adopts only a VM the create made): the caller's list (``CreateRequest.known_ids``) or a lookup now. A lookup
    the provider answered with an error raises ``NotSent``: the create was not sent, so nothing can have
    happened (a refused connection stays ``Unreachable``)."""
    if request.known_ids is not None:
        return set(request.known_ids)
    try:
        return {i.id for i in find_by_name(request.name)}
    except Unreachable:
        raise
    except ProviderUnavailable as e:
        raise NotSent(f"{request.name} was not created: looking up the VMs that already carry its name failed "
                      f"({e.message.rstrip('.')})", provider=e.provider) from None


def newest(found: list[Instance]) -> Instance:
    """The instance to adopt when a lost create's lookup finds several: the most recently created."""
    return max(found, key=lambda i: i.created_at.timestamp() if i.created_at else 0.0)


def create_resolving(send: Callable[[], T], find_new: Callable[[], list[Instance]], timing: Timing, *,
                     grace: float | None = None, sleep: Callable[[float], None] = time.sleep,
                     on_retry: Callable[[ProviderUnavailable], None] | None = None,
                     resend: Resend = LOOK_THEN_RESEND,
                     lookup_failed: Callable[[ProviderUnavailable, ProviderUnavailable], VmopsError] | None = None,
                     ) -> Created[T]:
    """Send a create at most ``retry_attempts`` times, each resend only after ``find_new()`` found nothing.

    ``find_new`` lists VMs this create may have made (its name, not among the ids known before). After a lost
    answer (OutcomeUnknown) it keeps looking for ``grace`` seconds (default: the request timeout) before a
    resend, since the provider may still be admitting the first request. A lookup that fails raises its own
    error, or what ``lookup_failed(send_error, lookup_error)`` makes of the two.
    """
    grace = timing.request_timeout if grace is None else grace

    def look(e: ProviderUnavailable) -> Instance | None:
        try:
            found = find_created(find_new, e, grace=grace, step=timing.poll_interval, sleep=sleep)
        except ProviderUnavailable as lookup_error:
            if lookup_failed is None:
                raise
            raise lookup_failed(e, lookup_error) from None
        return newest(found) if found else None

    answer, adopted = _send_looking(send, look, timing, resend, sleep, on_retry)
    return Created(adopted=adopted) if adopted is not None else Created(answer=answer)


class _Confirmed:
    """``send`` found the change already made (a refused resend that ``confirm`` explained)."""


_CONFIRMED = _Confirmed()


def mutate_confirming(send: Callable[[], T], confirm: Callable[[], bool], timing: Timing, *,
                      sleep: Callable[[float], None] = time.sleep, gone_is_done: bool = False,
                      resend: Resend = LOOK_THEN_RESEND,
                      confirm_refusals: tuple[type[VmopsError], ...] = ()) -> T | None:
    """Send a state change; after a transient failure resend only when ``confirm()`` says it did not happen.

    With ``resend.look_on`` empty the change is resent without asking, and ``confirm`` is asked only when a
    resend is refused with one of ``confirm_refusals`` (the provider refuses to repeat a change an earlier
    send made: Nebius answers a second Stop with FAILED_PRECONDITION); not confirmed, the refusal is raised.

    Returns the answer, or None when the change was confirmed without one (``confirm`` true, or the resource
    gone while ``gone_is_done``: a delete).
    """
    def confirmed() -> bool:
        try:
            return confirm()
        except NotFound:
            if gone_is_done:
                return True
            raise

    sends = 0

    def send_once() -> T | _Confirmed:
        nonlocal sends
        sends += 1
        try:
            return send()
        except confirm_refusals:
            if sends > 1 and confirmed():  # an earlier send whose answer was lost did it
                return _CONFIRMED
            raise

    answer, _ = _send_looking(send_once, lambda e: True if confirmed() else None, timing, resend, sleep, None)
    return None if answer is None or isinstance(answer, _Confirmed) else answer
