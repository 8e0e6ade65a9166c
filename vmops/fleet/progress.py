"""Progress of a fleet create, per provider: requested, accepted, running, failed, unknown."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable


@dataclass(frozen=True)
class ProviderProgress:
    provider: str
    requested: int = 0
    accepted: int = 0
    running: int = 0
    failed: int = 0
    unknown: int = 0  # creates the provider never answered and that could not be looked up: they may exist and bill

    @property
    def pending(self) -> int:
        """Requested VMs still on their way (neither running, failed nor of unknown outcome)."""
        return self.requested - self.running - self.failed - self.unknown

    def counts(self) -> str:
        text = f"requested {self.requested}, accepted {self.accepted}, running {self.running}, failed {self.failed}"
        return text + (f", unknown {self.unknown}" if self.unknown else "")

    def render(self) -> str:
        return f"{self.provider}: {self.counts()}"


Listener = Callable[[list[ProviderProgress]], None]


class Progress:
    """Thread-safe counters; calls ``listener`` with a snapshot whenever something changes."""

    def __init__(self, listener: Listener | None = None) -> None:
        self._lock = threading.Lock()
        self._by: dict[str, ProviderProgress] = {}
        self._listener = listener

    def bump(self, provider: str, *, requested: int = 0, accepted: int = 0, running: int = 0, failed: int = 0,
             unknown: int = 0) -> None:
        with self._lock:
            cur = self._by.get(provider) or ProviderProgress(provider)
            self._by[provider] = replace(
                cur,
                requested=cur.requested + requested,
                accepted=cur.accepted + accepted,
                running=cur.running + running,
                failed=cur.failed + failed,
                unknown=cur.unknown + unknown,
            )
            snap = self._snapshot()
        if self._listener:
            self._listener(snap)

    def _snapshot(self) -> list[ProviderProgress]:
        return [self._by[p] for p in sorted(self._by)]

    def snapshot(self) -> list[ProviderProgress]:
        with self._lock:
            return self._snapshot()
