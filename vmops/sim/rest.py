"""Plumbing shared by the REST simulators (Crusoe, Lambda): a threaded uvicorn server on loopback,
fault injection inside handlers, and the answer-level faults applied by ``AnswerMiddleware`` after the
handler ran: dropping the connection after a committed mutation (``lose_response``) and spoiling a
successful answer (``malformed``, see ``vmops.sim.common``). The middleware also logs every request that
reached no endpoint (unknown path, or refused by validation before the handler) as ``(no endpoint)``
with its raw path, so tests can prove that nothing was sent anywhere but the intended endpoint."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any, Callable

from vmops.sim.base import Simulator
from vmops.sim.common import NON_JSON_BODY, Effects, Fault, draw_faults, malform_json

LOSE_KEY = "vmops.sim"
NO_ENDPOINT = "(no endpoint)"


class FaultResponse(Exception):
    """Raised inside a handler to answer with an injected error."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def raw_path(scope: dict[str, Any] | None) -> str:
    """The request path as the client sent it (percent-encoding kept), with its query string."""
    if not scope:
        return ""
    path = scope.get("raw_path") or scope.get("path", "").encode()
    text = path.decode("latin-1") if isinstance(path, bytes) else str(path)
    query = scope.get("query_string") or b""
    return text + ("?" + query.decode("latin-1") if query else "")


def guard(
    sim: Simulator,
    endpoint: str,
    request_scope: dict[str, Any] | None,
    error_body: Callable[[Fault, int], Any],
    admit: Callable[[], None] | None = None,
) -> Effects:
    """Count the call and apply the faults that fire for it.

    Raises FaultResponse for an injected error or rate limit; sleeps for latency; returns the deferred
    effects. ``error_body(fault, status)`` builds the provider-styled error body. ``admit()`` (a simulator's
    own authentication and rate limits, raising its error) runs on arrival, before any injected latency: a
    slow answer delays the work, not the admission (else two requests sent an interval apart could be
    judged closer together than they were sent).
    """
    n = sim.requests.begin(endpoint)
    mutating = bool(sim.ENDPOINTS.get(endpoint, False))
    path = raw_path(request_scope)
    if request_scope is not None:
        request_scope.setdefault(LOSE_KEY, {})["endpoint"] = endpoint
    fault, effects = draw_faults(sim, endpoint, n, admit, path)
    if fault is not None and fault.kind == "hang":  # held unanswered: now drop the connection
        if request_scope is not None:
            request_scope.setdefault(LOSE_KEY, {})["lose"] = True
        raise FaultResponse(503, {}, {})
    if fault is not None and fault.kind == "error":
        headers = {}
        if fault.status == 429:
            headers["Retry-After"] = _fmt_seconds(fault.retry_after if fault.retry_after is not None else 1)
        sim.requests.record(endpoint, False, f"fault:error:{fault.status}", path)
        raise FaultResponse(fault.status, error_body(fault, fault.status), headers)
    if fault is not None:  # rate_limit
        ra = sim.faults.retry_after_for(fault, sim.time_scale)
        sim.requests.record(endpoint, False, "fault:rate_limit", path)
        raise FaultResponse(429, error_body(fault, 429), {"Retry-After": _fmt_seconds(ra)})
    if effects.lose_response and request_scope is not None:
        request_scope.setdefault(LOSE_KEY, {})["lose"] = True
    if effects.malformed and request_scope is not None:
        request_scope.setdefault(LOSE_KEY, {})["malformed"] = effects.malformed
    sim.requests.record(endpoint, mutating, f"fault:malformed:{effects.malformed}" if effects.malformed else "ok",
                        path)
    return effects


def _fmt_seconds(s: float) -> str:
    # Retry-After is integer seconds on the wire; round up so clients never retry early.
    import math

    return str(max(0, math.ceil(s)))


def spoil(body: bytes, variant: str, enum_fields: tuple[str, ...]) -> tuple[bytes, bytes]:
    """(content type, body) of a successful JSON answer spoiled as ``variant`` says."""
    if variant == "non_json":
        return b"text/html", NON_JSON_BODY
    if variant == "truncated":
        return b"application/json", body[: max(1, len(body) // 2)]
    return b"application/json", json.dumps(malform_json(json.loads(body), variant, enum_fields)).encode()


class AnswerMiddleware:
    """ASGI middleware applying the answer-level faults a handler's ``guard`` asked for.

    ``lose_response``: start the response and then close the connection without a body, so the client sees a
    transport error after the change was made. ``malformed``: replace a 2xx body (see ``spoil``). With a
    simulator, every request that reached no endpoint is logged as ``NO_ENDPOINT`` with its raw path.
    """

    def __init__(self, app: Any, sim: Simulator | None = None, enum_fields: tuple[str, ...] = ()) -> None:
        self.app = app
        self.sim = sim
        self.enum_fields = tuple(enum_fields)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        flag: dict[str, Any] = {}
        scope[LOSE_KEY] = flag
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def guarded_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                held["status"] = message.get("status", 0)
            if flag.get("lose"):
                if message["type"] == "http.response.start":
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
                return  # swallow the body: the server then closes the half-sent response
            variant = flag.get("malformed")
            if variant and 200 <= held.get("status", 0) < 300:
                if message["type"] == "http.response.start":
                    held["start"] = message
                    return
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                ctype, body = spoil(b"".join(chunks), variant, self.enum_fields)
                start = held["start"]
                headers = [(k, v) for k, v in start.get("headers", [])
                           if k.lower() not in (b"content-length", b"content-type")]
                headers += [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, guarded_send)
        if self.sim is not None and "endpoint" not in flag:
            self.sim.requests.record(NO_ENDPOINT, False, f"http:{held.get('status', 0)}", raw_path(scope))


class ThreadedServer:
    """uvicorn serving an ASGI app from a daemon thread, bound to one loopback socket (TLS when ``tls``
    is a (certificate file, key file) pair)."""

    def __init__(self, app: Any, tls: tuple[str, str] | None = None) -> None:
        self.app = app
        self.tls = tls
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
        ssl_files = {"ssl_certfile": self.tls[0], "ssl_keyfile": self.tls[1]} if self.tls else {}
        config = uvicorn.Config(self.app, log_level="critical", access_log=False, lifespan="off",
                                timeout_keep_alive=30, backlog=2048, **ssl_files)
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


class RestSimulator(Simulator):
    """A simulator that serves a REST app (``self.app``, an ASGI app the subclass builds) on ThreadedServer."""

    _server: ThreadedServer | None = None
    app: Any

    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        if self._server is not None:
            raise RuntimeError(f"{self.name} simulator already started")
        server = ThreadedServer(self.app, tls=self.tls)
        self.port = server.start(port, host)
        self._server = server
        return self.port

    def stop(self) -> None:
        self.faults.release_hangs()
        if self._server is not None:
            self._server.stop()
        self._server = None
        self.port = None
        self.scheduler.shutdown()

