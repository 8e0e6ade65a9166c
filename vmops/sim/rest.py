"""Plumbing shared by the REST simulators (Crusoe, Lambda): a threaded uvicorn server on loopback,
fault injection inside handlers, and dropping a connection after a committed mutation."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from vmops.sim.base import Simulator
from vmops.sim.common import Fault

LOSE_KEY = "vmops.sim"


class FaultResponse(Exception):
    """Raised inside a handler to answer with an injected error."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class Effects:
    """What the faults that fired ask the handler to do after it has committed its change."""

    never_complete: bool = False
    fail_after_accept: bool = False
    lose_response: bool = False


def guard(
    sim: Simulator,
    endpoint: str,
    request_scope: dict[str, Any] | None,
    error_body: Callable[[Fault, int], Any],
) -> Effects:
    """Count the call and apply the faults that fire for it.

    Raises FaultResponse for an injected error or rate limit; sleeps for latency; returns the deferred
    effects. ``error_body(fault, status)`` builds the provider-styled error body.
    """
    n = sim.requests.begin(endpoint)
    mutating = bool(sim.ENDPOINTS.get(endpoint, False))
    fired = sim.faults.match(endpoint, n, sim.time_scale)
    effects = Effects()
    for f in fired:
        if f.kind == "latency":
            time.sleep(f.latency_s)
    for f in fired:
        if f.kind == "error":
            headers = {}
            if f.status == 429:
                headers["Retry-After"] = _fmt_seconds(f.retry_after if f.retry_after is not None else 1)
            sim.requests.record(endpoint, False, f"fault:error:{f.status}")
            raise FaultResponse(f.status, error_body(f, f.status), headers)
        if f.kind == "rate_limit":
            ra = sim.faults.retry_after_for(f, sim.time_scale)
            sim.requests.record(endpoint, False, "fault:rate_limit")
            raise FaultResponse(429, error_body(f, 429), {"Retry-After": _fmt_seconds(ra)})
        if f.kind == "never_complete":
            effects.never_complete = True
        elif f.kind == "fail_after_accept":
            effects.fail_after_accept = True
        elif f.kind == "lose_response":
            effects.lose_response = True
    if effects.lose_response and request_scope is not None:
        request_scope.setdefault(LOSE_KEY, {})["lose"] = True
    sim.requests.record(endpoint, mutating, "ok")
    return effects


def _fmt_seconds(s: float) -> str:
    # Retry-After is integer seconds on the wire; round up so clients never retry early.
    import math

    return str(max(0, math.ceil(s)))


class LoseResponseMiddleware:
    """ASGI middleware: when a handler asked to lose its response, start the response and then close
    the connection without a body, so the client sees a transport error after the change was made."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        flag: dict[str, Any] = {}
        scope[LOSE_KEY] = flag

        async def guarded_send(message: dict[str, Any]) -> None:
            if flag.get("lose"):
                if message["type"] == "http.response.start":
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
                return  # swallow the body: the server then closes the half-sent response
            await send(message)

        await self.app(scope, receive, guarded_send)


class ThreadedServer:
    """uvicorn serving an ASGI app from a daemon thread, bound to one loopback socket."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        import uvicorn

        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (with proto 0 it does not,
        # and Nagle + delayed ACK add ~40 ms to every response on loopback).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise OSError(f"cannot bind {host}:{port}: {e.strerror or e}") from e
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        config = uvicorn.Config(self.app, log_level="critical", access_log=False, lifespan="off",
                                timeout_keep_alive=30, backlog=2048)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"sim-http-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator HTTP server on {host}:{self.port} did not start")
            time.sleep(0.01)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
