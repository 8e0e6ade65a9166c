"""Client-side pacing: keep under a provider's documented request limits instead of learning them from 429s.

One ``Pacer`` per (provider, endpoint, credential) for the whole process (``pacer_for``), shared by every thread
and every adapter object using that key: Lambda's limits are per account (../shared/cloud-apis.md §2.5).
A caller reserves the next free slot under a lock and sleeps outside it, so N threads asking at once are
spaced ``interval`` apart rather than woken together. A 429 pushes every later slot back (``penalize``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class PaceLimits:
    request_interval: float = 0.0  # seconds between any two requests (Lambda: 1.0)
    launch_interval: float = 0.0  # seconds between two launches (Lambda: 12.0)
    max_per_launch: int = 1  # instances one launch may ask for (Lambda: 1)


@dataclass(frozen=True)
class LaunchPace:
    """How fast a provider brings VMs up: its client-side pacing and its typical create-to-running time (the
    catalogue's, for the adapter's dialect). Data for the planner (vmops/fleet/timing.py); nothing here waits."""

    limits: PaceLimits = PaceLimits()
    to_running: float = 0.0  # seconds from a create's answer to RUNNING


class Pacer:
    """Slots for requests and launches; ``acquire`` returns the monotonic time the caller may send at."""

    def __init__(self, limits: PaceLimits, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_request = float("-inf")
        self._next_launch = float("-inf")

    def acquire(self, launch: bool = False) -> float:
        """Wait for this caller's slot (a launch takes a launch slot and a request slot)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_request)
            if launch:
                slot = max(slot, self._next_launch)
                self._next_launch = slot + self.limits.launch_interval
            self._next_request = slot + self.limits.request_interval
        if slot > now:
            self._sleep(slot - now)
        return slot

    def penalize(self, seconds: float, launch: bool = False) -> None:
        """The provider said slow down (429): no request (launch) before ``seconds`` from now."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._next_request = max(self._next_request, until)
            if launch:
                self._next_launch = max(self._next_launch, until)


_PACERS: dict[str, Pacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(provider: str, url: str, credential: str, limits: PaceLimits) -> Pacer:
    """The process-wide pacer of one credential at one endpoint (the credential is hashed, never kept)."""
    key = hashlib.sha256(f"{provider}\0{url}\0{credential}".encode()).hexdigest()
    with _PACERS_LOCK:
        pacer = _PACERS.get(key)
        if pacer is None or pacer.limits != limits:
            pacer = _PACERS[key] = Pacer(limits)
        return pacer
