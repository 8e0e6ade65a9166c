"""A provider that leaves calls unanswered for the command's deadline is not asked again (issue 15, "fail fast").

Each adapter's transport keeps one ``Silence``: before a call it ``check``s, after a call that timed out with no
answer it adds the seconds it waited (``unanswered``); any answer, even an error, clears it. Once the unanswered
time reaches the deadline (``Timing.deadline``, VMOPS_DEADLINE), calls fail at once with ``Silent`` (nothing is
sent, so nothing can have happened) and no retry loop retries them. So a hung provider costs one deadline per
command, not a timeout per call, retry and member (a fleet destroy with Nebius hung took minutes).

A single slow answer under the deadline changes nothing (the lost-answer lookups still run). The latch lasts
``SILENT_FOR`` seconds, so a long-lived session (a notebook) asks again later; vmops.breaker is the memory
across commands.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

from vmops.errors import Silent

T = TypeVar("T")

#: seconds a tripped provider is not asked (then one call may try again)
SILENT_FOR = 60.0
#: gRPC status details that mean the connection was never made (nothing was sent)
GRPC_CONNECT_FAILED = ("failed to connect", "connection refused", "name resolution", "dns resolution")


class Silence:
    """Unanswered time at one provider, per adapter (thread-safe)."""

    def __init__(self, provider: str, deadline: float, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.provider = provider
        self.deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._unanswered = 0.0
        self._tripped_at: float | None = None

    def check(self) -> None:
        """Raise Silent while the provider is latched (it already took the deadline without answering)."""
        with self._lock:
            if self._tripped_at is None:
                return
            if self._clock() - self._tripped_at >= SILENT_FOR:
                self._tripped_at, self._unanswered = None, 0.0
                return
        raise Silent(f"not asked: it left calls unanswered for {self.deadline:g} s already in this command",
                     provider=self.provider, lasting=f"it left calls unanswered for {self.deadline:g} s",
                     hint="Retry when it answers again, or give it longer with VMOPS_DEADLINE (seconds)")

    def unanswered(self, seconds: float) -> None:
        """A call waited ``seconds`` and got no answer."""
        with self._lock:
            self._unanswered += max(0.0, seconds)
            if self._unanswered >= self.deadline and self._tripped_at is None:
                self._tripped_at = self._clock()

    def answered(self) -> None:
        """The provider answered (anything, errors included): it is not hung."""
        with self._lock:
            self._unanswered = 0.0
            self._tripped_at = None

    def around(self, call: Callable[[], T], unanswered: Callable[[BaseException], bool | None]) -> T:
        """``call()`` with the latch checked first and its outcome counted. ``unanswered(error)``: True when the
        call timed out without an answer, False when the provider did answer (an error status), None when
        neither can be said (a refused connection)."""
        self.check()
        started = self._clock()
        try:
            out = call()
        except BaseException as e:
            verdict = unanswered(e)
            if verdict is True:
                self.unanswered(self._clock() - started)
            elif verdict is False:
                self.answered()
            raise
        self.answered()
        return out


def grpc_no_answer(e: BaseException) -> bool | None:
    """For ``Silence.around`` on a gRPC call (grpc is not imported here): DEADLINE_EXCEEDED got no answer; a
    connection never made says nothing; any other status is an answer."""
    code = e.code() if callable(getattr(e, "code", None)) else None  # type: ignore[attr-defined]
    if code is None:
        return None
    details = e.details() if callable(getattr(e, "details", None)) else ""  # type: ignore[attr-defined]
    if any(s in (details or "").lower() for s in GRPC_CONNECT_FAILED):
        return None
    return getattr(code, "name", "") == "DEADLINE_EXCEEDED"
