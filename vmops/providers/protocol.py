"""The protocol every adapter follows around its wire calls, written once (design.md "Shared protocol").

* ``retrying``: bounded retries of a call that is safe to repeat, paced by Retry-After or jittered backoff.
* ``create_resolving``: send a create; when its answer is lost or refused transiently, look for what it made
  (by name / idempotency key, through the adapter's ``find_new``) before any resend, and adopt a find.
  A create is never re-sent blindly.
* ``mutate_confirming``: send a state change; after a transient failure ask ``confirm`` whether it took effect
  before sending it again.

Adapters pass their own wire functions; this module knows no provider. The reference adapters keep their own
copies of these loops (they predate this module); the cloud adapters use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from vmops.errors import NotFound, ProviderUnavailable
from vmops.model import Instance
from vmops.providers.base import Timing
from vmops.providers.retry import RetryAfter, backoff_delay, find_created

T = TypeVar("T")


def retry_delay(error: ProviderUnavailable, attempt: int, timing: Timing) -> float:
    """Retry-After when the provider gave one, else full-jitter backoff; capped by ``retry_max_delay``."""
    ra = error.retry_after if isinstance(error, RetryAfter) else None
    if ra is None:
        ra = backoff_delay(attempt, timing.retry_base_delay, timing.retry_max_delay)
    return min(timing.retry_max_delay, ra)


def retrying(fn: Callable[[], T], timing: Timing, *, sleep: Callable[[float], None] = time.sleep,
             on_retry: Callable[[ProviderUnavailable], None] | None = None) -> T:
    """``fn()`` with up to ``timing.retry_attempts`` tries on ProviderUnavailable (only for repeatable calls)."""
    attempts = max(1, timing.retry_attempts)
    for attempt in range(attempts):
        try:
            return fn()
        except ProviderUnavailable as e:
            if attempt == attempts - 1:
                raise
            if on_retry:
                on_retry(e)
            sleep(retry_delay(e, attempt, timing))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Created(Generic[T]):
    """What a create came to: the provider's answer, or (answer lost) the instance found and adopted."""

    answer: T | None = None
    adopted: Instance | None = None


def create_resolving(send: Callable[[], T], find_new: Callable[[], list[Instance]], timing: Timing, *,
                     grace: float | None = None, sleep: Callable[[float], None] = time.sleep,
                     on_retry: Callable[[ProviderUnavailable], None] | None = None) -> Created[T]:
    """Send a create at most ``retry_attempts`` times, each resend only after ``find_new()`` found nothing.

    ``find_new`` lists VMs this create may have made (its name, not among the ids known before). After a lost
    answer (OutcomeUnknown) it keeps looking for ``grace`` seconds (default: the request timeout) before a
    resend, since the provider may still be admitting the first request.
    """
    attempts = max(1, timing.retry_attempts)
    grace = timing.request_timeout if grace is None else grace
    for attempt in range(attempts):
        try:
            return Created(answer=send())
        except ProviderUnavailable as e:  # lost/unreadable answer, 5xx, 429, refused connection
            found = find_created(find_new, e, grace=grace, step=timing.poll_interval, sleep=sleep)
            if found:
                newest = max(found, key=lambda i: i.created_at.timestamp() if i.created_at else 0.0)
                return Created(adopted=newest)
            if attempt == attempts - 1:
                raise
            if on_retry:
                on_retry(e)
            sleep(retry_delay(e, attempt, timing))
    raise AssertionError("unreachable")


def mutate_confirming(send: Callable[[], T], confirm: Callable[[], bool], timing: Timing, *,
                      sleep: Callable[[float], None] = time.sleep, gone_is_done: bool = False) -> T | None:
    """Send a state change; after a transient failure resend only when ``confirm()`` says it did not happen.

    Returns the answer, or None when the change was confirmed without one (``confirm`` true, or the resource
    gone while ``gone_is_done``: a delete).
    """
    attempts = max(1, timing.retry_attempts)
    for attempt in range(attempts):
        try:
            return send()
        except ProviderUnavailable as e:
            try:
                if confirm():
                    return None
            except NotFound:
                if gone_is_done:
                    return None
                raise
            if attempt == attempts - 1:
                raise
            sleep(retry_delay(e, attempt, timing))
    raise AssertionError("unreachable")
