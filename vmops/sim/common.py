"""Machinery shared by the three simulators: knobs, fault injection, request counters, timers.

Every knob is off by default, so a simulator built with ``SimOptions()`` behaves like the reference server.

Endpoint names
    Faults and counters are keyed by an *endpoint name*: a short stable string per endpoint/RPC that each
    simulator documents in its ``ENDPOINTS`` mapping (name -> mutating?). REST simulators use snake_case
    names (``create_instance``, ``launch``); the Nebius simulator uses ``Service/Method``
    (``InstanceService/Create``). A fault's ``endpoint`` may be an fnmatch pattern (``*``,
    ``InstanceService/*``).

Malformed answers (fault kind ``malformed``, with ``variant``)
    The call is served normally (a mutation is committed), then its successful answer is spoiled:
    ``non_json`` (an HTML error page with status 200; gRPC: the same bytes, which do not decode),
    ``truncated`` (the first half of the real body; gRPC: a prefix that ends inside a field),
    ``wrong_types`` (every scalar replaced by one of another type: strings become numbers, numbers and
    booleans strings, null an object; gRPC: every top-level field re-sent with the wrong wire type, which
    protobuf skips as unknown, so the client sees defaults), ``missing_fields`` (every scalar field
    dropped, objects and lists kept; gRPC: ``metadata``/``resource_id`` cleared), ``unknown_enum`` (each
    enum-valued field, listed by the simulator, set to a value the contract does not have; gRPC: enum
    number 99), ``empty`` (``{}``; gRPC: an empty message). Error answers are never spoiled.
"""

from __future__ import annotations

import fnmatch
import heapq
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

FAULT_KINDS = (
    "error",  # answer with an error instead of serving (REST: ``status``; gRPC: ``grpc_code``)
    "latency",  # sleep ``latency_s`` (real seconds, not scaled) before serving
    "rate_limit",  # at most one accepted call per ``per_seconds`` (scaled); others get 429 / RESOURCE_EXHAUSTED
    "never_complete",  # the mutation is accepted but its operation/transition never finishes
    "fail_after_accept",  # create accepted, later fails (Crusoe: op FAILED out_of_stock; Nebius: ERROR)
    "lose_response",  # the mutation is committed, then the connection is dropped before the answer
    "malformed",  # the call is served, then its answer is spoiled as ``variant`` says (see module docstring)
    "hang",  # accept the call and never answer: hold it ``hang_s`` real seconds (or until stop/reset), then
    #          drop it without an answer (REST: the connection is closed; gRPC: UNAVAILABLE). Nothing is served.
)
MALFORMED_VARIANTS = ("non_json", "truncated", "wrong_types", "missing_fields", "unknown_enum", "empty")


@dataclass
class Fault:
    """One fault-injection rule.

    A rule matches a call when ``endpoint`` matches its endpoint name and either ``nth`` contains the
    1-based number of that call (counted per endpoint name since the last reset), or ``rate`` wins a
    random draw, or neither ``nth`` nor ``rate`` is given (every call). ``times`` caps how often the
    rule fires in total.
    """

    endpoint: str
    kind: str
    status: int = 503
    grpc_code: str = "UNAVAILABLE"
    message: str | None = None
    retry_after: float | None = None
    rate: float | None = None
    nth: tuple[int, ...] = ()
    times: int | None = None
    latency_s: float = 0.0
    per_seconds: float = 12.0
    variant: str = ""  # kind "malformed" only: one of MALFORMED_VARIANTS
    hang_s: float = 300.0  # kind "hang" only: the bound on how long a call is held (real seconds)
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.kind == "malformed" and self.variant not in MALFORMED_VARIANTS:
            raise ValueError(f"malformed fault needs a variant, one of {', '.join(MALFORMED_VARIANTS)} "
                             f"(got {self.variant!r})")
        self.nth = tuple(int(n) for n in self.nth)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Fault":
        allowed = {f for f in cls.__dataclass_fields__ if f != "fired"}
        unknown = set(d) - allowed - {"provider"}
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**{k: (tuple(v) if k == "nth" else v) for k, v in d.items() if k in allowed})


class FaultSet:
    """The active fault rules of one simulator; thread-safe; rules can be added and cleared at run time."""

    def __init__(self, faults: Iterable[Fault] = (), rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults)
        self._rng = rng or random.Random()
        self._last_accept: dict[int, float] = {}
        self._release = threading.Event()
        self._held = 0

    def hang(self, seconds: float) -> None:
        """Hold the calling request thread for ``seconds`` or until ``release_hangs`` (stop, reset, clear)."""
        with self._lock:
            release = self._release
            self._held += 1
        try:
            release.wait(max(0.0, seconds))
        finally:
            with self._lock:
                self._held -= 1

    def held(self) -> int:
        """How many calls a ``hang`` holds right now."""
        with self._lock:
            return self._held

    def release_hangs(self) -> None:
        """Let every held (``hang``) call go at once; later hangs hold again. Called by stop and reset, so a
        server with hung calls still stops cleanly."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._last_accept.clear()
        self.release_hangs()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def match(self, endpoint: str, call_no: int, time_scale: float = 1.0) -> list[Fault]:
        """Rules firing for this call (call_no is 1-based per endpoint). Rate limits are decided here."""
        fired: list[Fault] = []
        now = time.monotonic()
        with self._lock:
            for f in self._faults:
                if not fnmatch.fnmatchcase(endpoint, f.endpoint):
                    continue
                if f.times is not None and f.fired >= f.times:
                    continue
                if f.kind == "rate_limit":
                    window = f.per_seconds * time_scale
                    last = self._last_accept.get(id(f))
                    if last is not None and now - last < window:
                        f.fired += 1
                        fired.append(f)
                    else:
                        self._last_accept[id(f)] = now
                    continue
                if f.nth:
                    hit = call_no in f.nth
                elif f.rate is not None:
                    hit = self._rng.random() < f.rate
                else:
                    hit = True
                if hit:
                    f.fired += 1
                    fired.append(f)
        return fired

    def retry_after_for(self, fault: Fault, time_scale: float) -> float:
        """Seconds a rate-limited client should wait (what goes in Retry-After)."""
        if fault.retry_after is not None:
            return fault.retry_after
        return max(0.0, fault.per_seconds * time_scale)


@dataclass
class Effects:
    """What the faults that fired for a call ask its handler to do after it has committed its change."""

    never_complete: bool = False
    fail_after_accept: bool = False
    lose_response: bool = False
    malformed: str = ""  # the variant of a ``malformed`` fault that fired, else ""


#: the fault kinds that answer a call instead of serving it (nothing is committed)
ANSWERING = ("hang", "error", "rate_limit")


def draw_faults(sim: Any, endpoint: str, call_no: int, admit: Callable[[], None] | None = None,
                path: str = "") -> tuple[Fault | None, Effects]:
    """The one place every simulator (REST and gRPC, both dialects) applies the faults firing for a call.

    Sleeps the ``latency`` of each, runs ``admit()`` (the simulator's own authentication and rate limits,
    raising its error) on arrival, before that latency. Returns the first fault that answers the call
    instead of serving it (``ANSWERING``) or None, and the deferred effects of the others. A ``hang`` is
    recorded and held here (``FaultSet.hang``); the wire then drops the call unanswered. An ``error`` or
    ``rate_limit`` is the wire's to answer in its own style (and to record). ``sim`` is a
    ``vmops.sim.base.Simulator`` (its ``faults``, ``requests`` and ``time_scale``).
    """
    fired = sim.faults.match(endpoint, call_no, sim.time_scale)
    if admit is not None:
        admit()
    for f in fired:
        if f.kind == "latency":
            time.sleep(f.latency_s)
    effects = Effects()
    for f in fired:
        if f.kind == "hang":
            sim.requests.record(endpoint, False, "fault:hang", path)
            sim.faults.hang(f.hang_s)
            return f, effects
        if f.kind in ANSWERING:
            return f, effects
        effects.never_complete |= f.kind == "never_complete"
        effects.fail_after_accept |= f.kind == "fail_after_accept"
        effects.lose_response |= f.kind == "lose_response"
        if f.kind == "malformed":
            effects.malformed = f.variant
    return None, effects


@dataclass(frozen=True)
class RequestRecord:
    endpoint: str
    mutating: bool
    at: float
    outcome: str  # "ok", "error:<code>", "fault:<kind>"
    path: str = ""  # REST: the raw request path as received (percent-encoding kept); gRPC: ""


class RequestLog:
    """Counts and logs every request a simulator served, per endpoint name. Thread-safe."""

    def __init__(self, keep: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._records: list[RequestRecord] = []
        self._keep = keep

    def begin(self, endpoint: str) -> int:
        """Count a call to ``endpoint`` and return its 1-based number (used for ``nth`` faults)."""
        with self._lock:
            n = self._counts.get(endpoint, 0) + 1
            self._counts[endpoint] = n
            return n

    def record(self, endpoint: str, mutating: bool, outcome: str = "ok", path: str = "") -> None:
        with self._lock:
            self._records.append(RequestRecord(endpoint, mutating, time.time(), outcome, path))
            if len(self._records) > self._keep:
                del self._records[: len(self._records) - self._keep]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def count(self, endpoint: str) -> int:
        with self._lock:
            return self._counts.get(endpoint, 0)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def mutating_count(self) -> int:
        with self._lock:
            return sum(1 for r in self._records if r.mutating)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._records.clear()

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts(), "mutating": self.mutating_count(), "total": sum(self.counts().values())}


class Scheduler:
    """Runs delayed state transitions on one background thread (scaled by ``time_scale``).

    One thread and a heap rather than a thread per timer, so scale tests with thousands of VMs stay cheap.
    ``cancel_all`` (used by reset) drops every pending transition.
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._generation = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sim-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        due = time.monotonic() + max(0.0, delay_s) * self.time_scale
        with self._cv:
            heapq.heappush(self._heap, (due, next(self._seq), fn))
            self._cv.notify()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) * self.time_scale)

    def cancel_all(self) -> None:
        with self._cv:
            self._heap.clear()
            self._generation += 1
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def shutdown(self) -> None:
        with self._cv:
            self._stopped = True
            self._heap.clear()
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = None if not self._heap else self._heap[0][0] - time.monotonic()
                    self._cv.wait(timeout)
                if self._stopped:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # a failing transition must not kill the scheduler
                import logging

                logging.getLogger("vmops.sim").exception("scheduled transition failed")


NON_JSON_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"
UNKNOWN_ENUM_VALUE = "STATE_FROM_THE_FUTURE"


def malform_json(body: Any, variant: str, enum_fields: Iterable[str] = ()) -> Any:
    """A JSON answer spoiled as ``variant`` says (the JSON-level variants; see the module docstring)."""
    if variant == "empty":
        return {}
    enums = frozenset(enum_fields)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if variant == "missing_fields" and not isinstance(x, (dict, list)):
                    continue
                if variant == "unknown_enum" and k in enums and isinstance(x, str):
                    out[k] = UNKNOWN_ENUM_VALUE
                    continue
                out[k] = walk(x)
            return out
        if isinstance(v, list):
            return [walk(x) for x in v]
        if variant != "wrong_types":
            return v
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (int, float)):
            return f"{v} units"
        if isinstance(v, str):
            return 12345
        return {"unexpected": True}  # None

    return walk(body)


@dataclass
class SimOptions:
    """Knobs of one simulator. Defaults reproduce the reference server."""

    time_scale: float = 1.0
    scenario: Mapping[str, Any] = field(default_factory=dict)  # this provider's section of a scenario file
    faults: list[Fault] = field(default_factory=list)
    seed: int | None = None  # seeds the RNG for ids and fault rates (None: random)
    tls_certfile: str | None = None  # PEM certificate (chain): serve TLS (https / gRPC over TLS) instead of plaintext
    tls_keyfile: str | None = None  # its PEM private key


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario file (JSON, or YAML when PyYAML is installed).

    Layout::

        time_scale: 0.05            # optional, applies to all three
        crusoe:  {...}              # each simulator documents the keys of its own section
        lambda:  {...}
        nebius:  {...}
        faults:                     # optional; each entry names its provider
          - {provider: crusoe, endpoint: create_instance, kind: error, status: 503, nth: [1]}
    """
    text = Path(path).read_text()
    if str(path).endswith((".yml", ".yaml")):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario file holds a mapping at top level")
    return data


def options_for(provider: str, scenario: Mapping[str, Any] | None, time_scale: float | None = None) -> SimOptions:
    """Build one provider's SimOptions from a whole scenario mapping."""
    scenario = scenario or {}
    faults = [Fault.from_dict(f) for f in scenario.get("faults", []) if f.get("provider") == provider]
    scale = time_scale if time_scale is not None else float(scenario.get("time_scale", 1.0))
    return SimOptions(time_scale=scale, scenario=scenario.get(provider, {}) or {}, faults=faults)
