"""Nebius cloud dialect: gRPC statuses and ``nebius.common.v1.ServiceError`` details -> vmops errors, in one place.

A failed call carries ``grpc-status-details-bin`` (a ``google.rpc.Status`` whose details hold a packed
``ServiceError``); a failed operation carries the same ``google.rpc.Status`` in ``Operation.status``. Both go
through ``map_error`` (../shared/cloud-apis.md section 3.4). The ServiceError detail is read before the code,
because the codes for rate limiting, conflicts, bad state and name collisions are unconfirmed.
"""

from __future__ import annotations

import grpc

from vmops._gen.cloud.google.rpc import status_pb2
from vmops._gen.cloud.nebius.common.v1 import error_pb2
from vmops.errors import (
    AuthError,
    FailedPrecondition,
    InsufficientCapacity,
    InvalidArgument,
    MalformedAnswer,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    Unreachable,
    Unsupported,
    VmopsError,
)
from vmops.providers.retry import RetryAfter
from vmops.providers.silence import GRPC_CONNECT_FAILED



class NameTaken(FailedPrecondition):
    """ALREADY_EXISTS: the name is used by ``resource_id`` (adoptable when it carries our labels)."""

    def __init__(self, message: str, *, provider: str, resource_id: str) -> None:
        self.resource_id = resource_id
        super().__init__(message, provider=provider,
                         hint="Pick another name, or destroy the resource that holds it")


def service_error(status: status_pb2.Status) -> error_pb2.ServiceError | None:
    """The first ``nebius.common.v1.ServiceError`` among a ``google.rpc.Status``'s details."""
    for detail in status.details:
        if detail.Is(error_pb2.ServiceError.DESCRIPTOR):
            err = error_pb2.ServiceError()
            if detail.Unpack(err):
                return err
    return None


def _detail_text(err: error_pb2.ServiceError | None) -> str:
    if err is None:
        return ""
    which = err.WhichOneof("details") or ""
    if which == "bad_request":
        return "; ".join(f"{v.field}: {v.message}" for v in err.bad_request.violations)
    if which == "quota_failure":
        return "; ".join(f"{v.quota}: {v.message}" for v in err.quota_failure.violations)
    if which == "not_enough_resources":
        return "; ".join(f"{v.resource_type}: {v.message}" for v in err.not_enough_resources.violations)
    if which == "bad_resource_state":
        return err.bad_resource_state.message
    return err.code


def map_error(code: grpc.StatusCode, details: str, err: error_pb2.ServiceError | None, *, what: str,
              mutating: bool = False, sent: bool = True, provider: str = "nebius") -> VmopsError:
    """The one place Nebius statuses (a call's, or a finished operation's) become vmops errors.
    ``details`` is the server's text and ``err`` its ServiceError detail (never a token)."""
    which = err.WhichOneof("details") if err is not None else None
    extra = _detail_text(err)
    d = details or code.name
    if extra and extra not in d:
        d = f"{d} ({extra})"
    retry_call = err is not None and err.retry_type == error_pb2.ServiceError.CALL
    fatal = err is not None and err.retry_type in (error_pb2.ServiceError.NOTHING, error_pb2.ServiceError.UNIT_OF_WORK)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthError(f"{what}: the IAM token was rejected ({d})", provider=provider,
                         hint="Check VMOPS_NEBIUS_IAM_TOKEN (tokens expire) or VMOPS_NEBIUS_CREDENTIALS_FILE")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"{what}: {d}", provider=provider,
                                hint="Check VMOPS_NEBIUS_PARENT (a project id) and the service account's roles")
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what}: {d}", provider=provider)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"{what}: {d}", provider=provider, hint="`vm types` lists the shapes Nebius offers")
    if code == grpc.StatusCode.ALREADY_EXISTS or which == "resource_already_exists":
        rid = err.resource_already_exists.resource_id if err is not None else ""
        return NameTaken(f"{what}: {d}", provider=provider, resource_id=rid)
    if which == "operation_conflict" or which == "operation_aborted":
        return RetryAfter(f"{what}: another operation is running on the resource ({d})", provider=provider)
    if which == "not_enough_resources" or "not enough resources" in d.lower():
        return InsufficientCapacity(f"{what}: {d}", provider=provider)
    if which == "quota_failure" or "quota limit exceeded" in d.lower():
        return InsufficientCapacity(f"{what}: {d}", provider=provider,
                                    hint="Ask Nebius for a quota increase, or use another shape or provider")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if fatal:
            return InsufficientCapacity(f"{what}: {d}", provider=provider)
        return RetryAfter(f"{what}: rate limited ({d})", provider=provider)
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED):
        if retry_call:
            return RetryAfter(f"{what}: {d}", provider=provider)
        return FailedPrecondition(f"{what}: {d}", provider=provider)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return Unsupported(f"{what}: the endpoint does not implement this call ({d})", provider=provider,
                           hint="Check that VMOPS_NEBIUS_ENDPOINT points at the Nebius compute API")
    if code == grpc.StatusCode.INTERNAL and "deserializing response" in d.lower():
        return MalformedAnswer(f"{what}: the answer is not a valid protobuf message ({d})", provider=provider)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        if any(s in d.lower() for s in GRPC_CONNECT_FAILED):  # nothing listens: nothing was sent (never retried)
            return Unreachable(f"{what}: cannot connect ({code.name}: {d})", provider=provider)
        nothing_sent = not sent
        if mutating and not nothing_sent:
            return OutcomeUnknown(f"{what}: the answer was lost ({code.name}: {d}); it may have taken effect",
                                  provider=provider)
    return ProviderUnavailable(f"{what}: {code.name} ({d})", provider=provider)


def status_code(number: int) -> grpc.StatusCode:
    for c in grpc.StatusCode:
        if c.value[0] == number:
            return c
    return grpc.StatusCode.UNKNOWN


def rpc_error_parts(e: grpc.RpcError) -> tuple[grpc.StatusCode, str, error_pb2.ServiceError | None]:
    code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (e.details() if callable(getattr(e, "details", None)) else str(e)) or ""
    err = None
    try:
        for k, v in e.trailing_metadata() or ():  # type: ignore[attr-defined]
            if k == "grpc-status-details-bin" and isinstance(v, bytes):
                err = service_error(status_pb2.Status.FromString(v))
    except Exception:  # noqa: BLE001 - an undecodable detail is only a missing detail
        err = None
    return code or grpc.StatusCode.UNKNOWN, details, err
