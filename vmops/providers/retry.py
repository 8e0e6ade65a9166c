"""The retry loop and its pacing, written once: exponential backoff for idempotent calls (reads, and mutations
that are safe to repeat), honouring Retry-After.

Creates and state changes never go through here blindly: ``vmops.providers.protocol`` looks for what a failed
send did before it sends again, pacing its resends with ``retry_delay``.
"""

from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

from vmops.errors import NoAnswer, OutcomeUnknown, ProviderUnavailable, Silent, Unreachable

T = TypeVar("T")

#: what to do about a provider that accepted a request and did not answer in time
DEADLINE_HINT = ("The provider accepted the request but did not answer; retry later, or give it longer with "
                 "VMOPS_DEADLINE (seconds)")


class RetryAfter(ProviderUnavailable):
    """A transient failure that says how long to wait (HTTP 429 Retry-After)."""

    def __init__(self, message: str, *, provider: str | None = None, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider=provider)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt))."""
    r = (rng or random).random()
    return r * min(cap, base * (2**attempt))


def retry_delay(error: BaseException, attempt: int, base: float, cap: float) -> float:
    """The pause before try ``attempt + 2``: the provider's Retry-After when it gave one, else full-jitter
    backoff; never more than ``cap``."""
    ra = getattr(error, "retry_after", None)
    return min(cap, ra) if ra is not None else backoff_delay(attempt, base, cap)


def with_retries(
    fn: Callable[[], T],
    *,
    attempts: int,
    base_delay: float,
    max_delay: float,
    retry_on: tuple[type[BaseException], ...] = (ProviderUnavailable,),
    sleep: Callable[[float], None] = time.sleep,
    budget: float | None = None,
    retry_unreachable: bool = False,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``fn``; on a transient error retry up to ``attempts`` times in all, honouring Retry-After.

    ``Unreachable`` is never retried (``NoAnswer`` is, at once, within the budget) unless ``retry_unreachable``
    (then it is paced like any transient error). With a ``budget`` (seconds from the first attempt: the
    command's deadline) no retry starts once its pause would end after the budget: the last error is raised
    instead of waiting on. ``on_retry`` hears each error that is retried, before the pause."""
    last: BaseException | None = None
    ends = None if budget is None else time.monotonic() + budget
    for attempt in range(max(1, attempts)):
        try:
            return fn()
        except Unreachable as e:
            if isinstance(e, Silent):  # not sent: the provider already took the deadline without answering
                raise
            if retry_unreachable:
                last = e
                if attempt == attempts - 1 or not _pause(e, attempt, base_delay, max_delay, ends, sleep, on_retry):
                    break
                continue
            if not isinstance(e, NoAnswer):
                raise
            last = e
            if attempt == attempts - 1 or (ends is not None and time.monotonic() >= ends):
                break
        except retry_on as e:  # type: ignore[misc]
            last = e
            if attempt == attempts - 1 or not _pause(e, attempt, base_delay, max_delay, ends, sleep, on_retry):
                break
    assert last is not None
    raise last


def _pause(error: BaseException, attempt: int, base: float, cap: float, ends: float | None,
           sleep: Callable[[float], None], on_retry: Callable[[BaseException], None] | None) -> bool:
    """Sleep before the next try; False (no sleep) when the pause would end past the budget ``ends``."""
    delay = retry_delay(error, attempt, base, cap)
    if ends is not None and time.monotonic() + delay > ends:
        return False
    if on_retry:
        on_retry(error)
    sleep(delay)
    return True


def find_created(
    find: Callable[[], list[T]],
    error: BaseException,
    *,
    grace: float,
    step: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[T]:
    """What a create whose answer did not arrive made: ``find()`` lists the candidates (VMs with the requested
    name that were not there before the call).

    An error that is an answer (5xx, 429, connection refused) is looked at once. When the answer was lost
    after the request went out (``OutcomeUnknown``: a read timeout, a dropped connection) the provider may
    still be working on it, so keep looking for up to ``grace`` seconds before concluding that nothing
    happened: sending the create again too early makes a second VM when the first one lands late.
    """
    deadline = time.monotonic() + (grace if isinstance(error, OutcomeUnknown) else 0.0)
    while True:
        found = find()
        if found or time.monotonic() >= deadline:
            return found
        sleep(max(0.0, min(step, deadline - time.monotonic())))
