"""Per-provider threads: a fleet create's pipelines (each provider's part runs create -> wait -> record on a
thread of its own, so a slow or hung provider delays only its own members: docs/design.md, "Providers never
wait for each other") and every other per-provider step (``members.per_provider``: waits, destroys, stop/start).

A lane is started for a provider the first time work is routed to it and ends when it finds nothing left
to do; work routed to a provider whose lane is running (a replacement for a member that failed at another
provider) is picked up by that lane after its current batch. This module knows nothing of fleets: its caller
gives it the work function and routes items to it.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Iterable, TypeVar

from vmops.fleet.interrupt import Abandoned, StopRequest

T = TypeVar("T")


class Lanes(Generic[T]):
    """Route items to per-key worker threads; ``join`` waits for all of them (watching a second Ctrl-C)."""

    def __init__(self, work: Callable[[str, list[T]], None], key: Callable[[T], str],
                 request: StopRequest | None = None, name: str = "lane") -> None:
        self._work = work
        self._key = key
        self._request = request
        self._name = name
        self._lock = threading.Lock()
        self._pending: dict[str, list[T]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._errors: list[BaseException] = []

    def route(self, items: Iterable[T]) -> None:
        """Queue items for their keys' lanes, starting a lane where none runs."""
        start: list[threading.Thread] = []
        with self._lock:
            for item in items:
                k = self._key(item)
                self._pending.setdefault(k, []).append(item)
                if k not in self._threads:
                    t = threading.Thread(target=self._run, args=(k,), name=f"vmops-{self._name}-{k}", daemon=True)
                    self._threads[k] = t
                    start.append(t)
        for t in start:
            t.start()

    def pending(self) -> int:
        """Items routed but not yet taken by a lane."""
        with self._lock:
            return sum(len(v) for v in self._pending.values())

    def _run(self, key: str) -> None:
        while True:
            with self._lock:
                batch = self._pending.pop(key, [])
                if not batch:
                    del self._threads[key]
                    return
            try:
                self._work(key, batch)
            except BaseException as e:  # noqa: BLE001 - handed to join(); this lane takes no more work
                with self._lock:
                    self._errors.append(e)
                    self._pending.pop(key, None)
                    del self._threads[key]
                return

    def join(self, tick: Callable[[], None] | None = None) -> None:
        """Wait until every lane has ended (in short slices, calling ``tick`` between them). A second Ctrl-C
        raises Abandoned at once; a lane's exception is raised once all lanes have ended."""
        while True:
            with self._lock:
                threads = list(self._threads.values())
            if not threads:
                break
            for t in threads:
                while t.is_alive():
                    t.join(0.05)
                    if tick is not None:
                        tick()
                    if self._request is not None and self._request.abandoned:
                        raise Abandoned()
        if self._errors:
            raise self._errors[0]

