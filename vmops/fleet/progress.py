"""Progress of a fleet create, per provider: requested, accepted, running, failed."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, TextIO


@dataclass(frozen=True)
class ProviderProgress:
    provider: str
    requested: int = 0
    accepted: int = 0
    running: int = 0
    failed: int = 0

    def render(self) -> str:
        return (f"{self.provider}: requested {self.requested}, accepted {self.accepted}, "
                f"running {self.running}, failed {self.failed}")


Listener = Callable[[list[ProviderProgress]], None]


class Progress:
    """Thread-safe counters; calls ``listener`` with a snapshot whenever something changes."""

    def __init__(self, listener: Listener | None = None) -> None:
        self._lock = threading.Lock()
        self._by: dict[str, ProviderProgress] = {}
        self._listener = listener

    def bump(self, provider: str, *, requested: int = 0, accepted: int = 0, running: int = 0, failed: int = 0) -> None:
        with self._lock:
            cur = self._by.get(provider) or ProviderProgress(provider)
            self._by[provider] = replace(
                cur,
                requested=cur.requested + requested,
                accepted=cur.accepted + accepted,
                running=cur.running + running,
                failed=cur.failed + failed,
            )
            snap = self._snapshot()
        if self._listener:
            self._listener(snap)

    def _snapshot(self) -> list[ProviderProgress]:
        return [self._by[p] for p in sorted(self._by)]

    def snapshot(self) -> list[ProviderProgress]:
        with self._lock:
            return self._snapshot()


class StderrProgress:
    """A listener that prints one line per change (or redraws one line on a terminal), throttled."""

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self._last_text = ""
        self._last_at = 0.0
        self._lock = threading.Lock()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, snap: list[ProviderProgress], *, force: bool = False) -> None:
        text = " | ".join(p.render() for p in snap)
        now = time.monotonic()
        with self._lock:
            if text == self._last_text or (not force and now - self._last_at < self.min_interval):
                self._pending = text
                return
            self._emit(text, now)

    def _emit(self, text: str, now: float) -> None:
        self._last_text, self._last_at = text, now
        if self._tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        with self._lock:
            pending = getattr(self, "_pending", None)
            if pending and pending != self._last_text:
                self._emit(pending, time.monotonic())
            if self._tty and self._last_text:
                self.stream.write("\n")
                self.stream.flush()
