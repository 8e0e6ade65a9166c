"""A small circuit breaker across commands: a provider that just failed to answer is remembered in the
state directory (``$VMOPS_HOME/breaker/<provider>.json``, with an expiry) so that a script's next command
does not wait for it again.

Only reads consult it (``Session.fan_out``: `vm list`, `vm cost`, capacity, reservations, the inventory):
a skipped provider is reported as unavailable at once, with the time it will be tried again. Mutations never
consult it, so nothing a user asked to change is ever skipped silently; a create to a broken provider
fails fast on its own (1 s connect timeout, no retries of an unreachable provider).

The file holds the endpoint, the failure time, the expiry and the error's message (built by the adapters
from the endpoint and status only, never a key). It applies to that endpoint only: pointing the provider
somewhere else (another URL in the environment or the config) asks the new endpoint at once. A successful answer removes it. Writes are atomic (a temp file
renamed over the old one); a file that cannot be read or written is ignored: the breaker only ever saves
time, it never decides anything on its own.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

#: the setting that turns it off (0) or sets how long a provider is skipped
SETTING = "VMOPS_BREAKER_SECONDS"


@dataclass(frozen=True)
class Trip:
    """One provider's open breaker: when it failed, until when it is skipped, and why."""

    provider: str
    endpoint: str
    failed_at: float  # epoch seconds
    until: float  # epoch seconds
    reason: str

    def retry_at_text(self) -> str:
        return datetime.fromtimestamp(self.until, timezone.utc).strftime("%H:%M:%S UTC")

    def failed_at_text(self) -> str:
        return datetime.fromtimestamp(self.failed_at, timezone.utc).strftime("%H:%M:%S UTC")


class Breaker:
    """The breaker files of one state directory. ``seconds`` = 0 disables it (nothing is read or written)."""

    def __init__(self, home: Path, seconds: float) -> None:
        self.dir = home / "breaker"
        self.seconds = seconds

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def _path(self, provider: str) -> Path:
        return self.dir / f"{provider}.json"

    def open_trip(self, provider: str, endpoint: str, now: float | None = None) -> Trip | None:
        """The provider's trip if its breaker is open now for ``endpoint``, else None."""
        if not self.enabled:
            return None
        try:
            data = json.loads(self._path(provider).read_text())
            trip = Trip(provider, str(data["endpoint"]), float(data["failed_at"]), float(data["until"]),
                        str(data.get("reason", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if trip.endpoint != endpoint:
            return None
        now = time.time() if now is None else now
        # an expiry further out than the setting allows (a clock step, an edited file) is not trusted
        if trip.until <= now or trip.until - now > self.seconds:
            return None
        return trip

    def trip(self, provider: str, endpoint: str, reason: str) -> None:
        """Open the provider's breaker for ``endpoint``, for ``seconds`` from now."""
        if not self.enabled:
            return
        now = time.time()
        body = json.dumps({"endpoint": endpoint, "failed_at": now, "until": now + self.seconds,
                           "reason": reason[:300]})
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.dir / f".{provider}.{os.getpid()}.tmp"
            tmp.write_text(body)
            os.replace(tmp, self._path(provider))
        except OSError:
            pass

    def close(self, provider: str) -> None:
        """Forget a failure (the provider answered; also when the breaker is turned off, so that forcing a
        command with VMOPS_BREAKER_SECONDS=0 that succeeds lets the next commands ask it again)."""
        try:
            self._path(provider).unlink()
        except OSError:
            pass
