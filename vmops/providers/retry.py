"""Retry with exponential backoff for idempotent calls (reads, and mutations that are safe to repeat).

Creates never go through here blindly: an adapter retries a create only after looking the VM up by
name (see each adapter's ``create``).
"""

from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

from vmops.errors import NoAnswer, OutcomeUnknown, ProviderUnavailable, Unreachable

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


def with_retries(
    fn: Callable[[], T],
    *,
    attempts: int,
    base_delay: float,
    max_delay: float,
    retry_on: tuple[type[BaseException], ...] = (ProviderUnavailable,),
    sleep: Callable[[float], None] = time.sleep,
    budget: float | None = None,
) -> T:
    """Call ``fn``; on a transient error retry up to ``attempts`` times in all, honouring Retry-After.

    ``Unreachable`` is never retried (``NoAnswer`` is, within the budget). With a ``budget`` (seconds from
    the first attempt: the command's deadline) no retry starts once its pause would end after the budget:
    the last error is raised instead of waiting on."""
    last: BaseException | None = None
    ends = None if budget is None else time.monotonic() + budget
    for attempt in range(max(1, attempts)):
        try:
            return fn()
        except Unreachable as e:
            if not isinstance(e, NoAnswer):
                raise
            last = e
            if attempt == attempts - 1 or (ends is not None and time.monotonic() >= ends):
                break
        except retry_on as e:  # type: ignore[misc]
            last = e
            if attempt == attempts - 1:
                break
            ra = getattr(e, "retry_after", None)
            delay = min(max_delay, ra) if ra is not None else backoff_delay(attempt, base_delay, max_delay)
            if ends is not None and time.monotonic() + delay > ends:
                break
            sleep(delay)
    assert last is not None
    raise last


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
