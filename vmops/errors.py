"""Typed errors. Adapters map provider errors to these exactly once; everything above only sees these.

Each class has a distinct process exit code (documented in the README) and a default hint telling the
user what to do next. Messages must never contain an API key: build them from ids, names and the
provider's own message text only.
"""

from __future__ import annotations


#: The exit code of anything that is not a VmopsError: a bug (README "Exit codes").
INTERNAL_EXIT = 70


class VmopsError(Exception):
    """Base class. ``str(err)`` is one readable sentence: what happened, then what to do."""

    exit_code: int = 1
    kind: str = "error"
    default_hint: str = ""

    def __init__(self, message: str, *, provider: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.provider = provider
        self.hint = self.default_hint if hint is None else hint
        super().__init__(self.render())

    def render(self, *, named: bool = True) -> str:
        """The sentence ``str(err)`` is; ``named=False`` leaves out the provider's name (for a place that
        already shows it, like a plan's PROVIDER column)."""
        prefix = f"{self.provider}: " if self.provider and named else ""
        text = prefix + self.message.rstrip(".") + "."
        if self.hint:
            text += " " + self.hint.rstrip(".") + "."
        return text


class UsageError(VmopsError):
    exit_code = 2
    kind = "usage"
    default_hint = "See `vm COMMAND --help`"


class AuthError(VmopsError):
    exit_code = 3
    kind = "auth"
    default_hint = "Check the provider's API key (`vm config show` shows which one is in use, masked)"


class PermissionDenied(VmopsError):
    exit_code = 4
    kind = "permission"
    default_hint = "Check the configured project/parent for this provider (`vm config show`)"


class NotFound(VmopsError):
    exit_code = 5
    kind = "not_found"
    default_hint = "List what exists with `vm list`"


class InvalidArgument(VmopsError):
    exit_code = 6
    kind = "invalid_argument"


class InsufficientCapacity(VmopsError):
    exit_code = 7
    kind = "insufficient_capacity"
    default_hint = "Try another region, shape or provider; `vm capacity` shows what is available now"


class FailedPrecondition(VmopsError):
    exit_code = 8
    kind = "failed_precondition"
    default_hint = "Check the instance's state with `vm get` and retry when it has settled"


class ReservedCannotTerminate(VmopsError):
    exit_code = 9
    kind = "reserved_cannot_terminate"
    default_hint = "Reserved instances must be released through the provider's support"


class Unsupported(VmopsError):
    exit_code = 10
    kind = "unsupported"


class OperationTimeout(VmopsError):
    exit_code = 11
    kind = "operation_timeout"
    default_hint = "The operation may still finish; check with `vm get` before retrying"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        instance_id: str | None = None,
        stuck_state: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.stuck_state = stuck_state
        super().__init__(message, provider=provider, hint=hint)


class ProviderUnavailable(VmopsError):
    exit_code = 12
    kind = "provider_unavailable"
    default_hint = "The provider could not serve this request now; retry later (`vm doctor` checks each one)"


class OutcomeUnknown(ProviderUnavailable):
    """A mutating call was sent but its answer was lost: it may or may not have happened."""

    kind = "outcome_unknown"
    default_hint = "Look the resource up by name before retrying (vmops does this itself for creates)"


class Unreachable(ProviderUnavailable):
    """Nothing answered: the connection was refused or timed out (or, as ``NoAnswer``, a read got no answer).

    Never retried: a refused connection is refused again a moment later. It is what trips the circuit
    breaker (``vmops.breaker``). Same kind and exit code as ProviderUnavailable."""

    default_hint = "The provider did not answer; check its endpoint (`vm config show`) and retry later"

    def __init__(self, message: str, *, provider: str | None = None, hint: str | None = None,
                 lasting: str | None = None) -> None:
        #: what the breaker remembers for the next commands: the failure as it stays true after this one
        self.lasting = message if lasting is None else lasting
        super().__init__(message, provider=provider, hint=hint)


class NoAnswer(Unreachable):
    """A read was accepted and got no answer within the request timeout (a hung provider). Retried only
    while the command's deadline allows: with the default request timeout equal to the deadline, never."""


class Silent(Unreachable):
    """Not sent: the provider already left calls unanswered for the command's deadline (vmops.providers.silence).
    Never retried, never looked into: nothing was sent."""


class NotSent(ProviderUnavailable):
    """Nothing was sent: a read the request needed first failed (the name lookup before a create). Nothing can
    have happened, so there is nothing to look up afterwards; retrying once the provider answers is safe."""

    default_hint = "Nothing was sent; retry once the provider answers"


class MalformedAnswer(ProviderUnavailable):
    """The provider answered, but not in the shape its API promises (not JSON, truncated, wrong types,
    missing fields). Raised by an adapter's parsing layer instead of letting a TypeError escape."""

    kind = "malformed_answer"
    default_hint = ("The provider's answer did not match its API; retry later, and report it if it persists "
                    "(`--debug` shows where it failed)")


class StateError(VmopsError):
    """vmops' own state store refused or failed (e.g. a fleet name already taken)."""

    exit_code = 13
    kind = "state"


class PartialFailure(VmopsError):
    """Some of a multi-resource operation failed; the message lists what."""

    exit_code = 14
    kind = "partial_failure"


class Interrupted(VmopsError):
    exit_code = 130
    kind = "interrupted"


ALL_ERRORS: tuple[type[VmopsError], ...] = (
    UsageError,
    AuthError,
    PermissionDenied,
    NotFound,
    InvalidArgument,
    InsufficientCapacity,
    FailedPrecondition,
    ReservedCannotTerminate,
    Unsupported,
    OperationTimeout,
    ProviderUnavailable,
    OutcomeUnknown,
    Unreachable,
    NoAnswer,
    NotSent,
    MalformedAnswer,
    StateError,
    PartialFailure,
    Interrupted,
)
