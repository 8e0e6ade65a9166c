"""Per-provider threads: a fleet create's pipelines (each provider's part runs create -> wait -> record on a
thread of its own, so a slow or hung provider delays only its own members: docs/design.md, "Providers never
wait for each other") and every other per-provider step (``members.per_provider``: waits, destroys, stop/start).

A lane is started for a provider the first time work is routed to it and ends when it finds nothing left
to do. Work routed to a provider whose lane is busy (a replacement for a member that failed at another
provider) starts a second batch there at once, up to ``per_key`` batches in flight per provider, rather than
waiting for the current batch to finish (its create and its wait: seconds). This module knows nothing of
fleets: its caller gives it the work function and routes items to it.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Iterable, TypeVar

from vmops.fleet.interrupt import Abandoned, StopRequest

T = TypeVar("T")

#: batches in flight at once per key (provider): a replacement never waits for another batch's create and wait
PER_KEY = 4


class Lanes(Generic[T]):
    """Route items to per-key worker threads; ``join`` waits for all of them (watching a second Ctrl-C)."""

    def __init__(self, work: Callable[[str, list[T]], None], key: Callable[[T], str],
                 request: StopRequest | None = None, name: str = "lane", per_key: int = PER_KEY) -> None:
        self._work = work
        self._key = key
        self._request = request
        self._name = name
        self._per_key = max(1, per_key)
        self._lock = threading.Lock()
        self._pending: dict[str, list[T]] = {}
        self._threads: dict[str, list[threading.Thread]] = {}  # a lane thread is always busy with a batch
        self._errors: list[BaseException] = []

    def route(self, items: Iterable[T]) -> None:
        """Queue items for their keys' lanes; each key given items here gets one more lane (one batch: all its
        items queued so far) unless ``per_key`` are already busy, whose first to finish then takes them."""
        start: list[threading.Thread] = []
        with self._lock:
            keys: list[str] = []
            for item in items:
                k = self._key(item)
                self._pending.setdefault(k, []).append(item)
                if k not in keys:
                    keys.append(k)
            for k in keys:
                threads = self._threads.setdefault(k, [])
                if len(threads) < self._per_key:
                    t = threading.Thread(target=self._run, args=(k,), name=f"vmops-{self._name}-{k}", daemon=True)
                    threads.append(t)
                    start.append(t)
        for t in start:
            t.start()

    def pending(self) -> int:
        """Items routed but not yet taken by a lane."""
        with self._lock:
            return sum(len(v) for v in self._pending.values())

    def _run(self, key: str) -> None:
        me = threading.current_thread()
        with self._lock:
            batch = self._take(key, me)
        while batch:
            try:
                self._work(key, batch)
            except BaseException as e:  # noqa: BLE001 - handed to join(); this lane takes no more work
                with self._lock:
                    self._errors.append(e)
                    self._pending.pop(key, None)
                    self._take(key, me)
                return
            with self._lock:
                batch = self._take(key, me)

    def _take(self, key: str, thread: threading.Thread) -> list[T]:
        """The key's queued items, as ``thread``'s next batch; none left: the thread ends (the lock is held)."""
        batch = self._pending.pop(key, [])
        if not batch:
            threads = self._threads[key]
            threads.remove(thread)
            if not threads:
                del self._threads[key]
        return batch

    def join(self, tick: Callable[[], None] | None = None) -> None:
        """Wait until every lane has ended (in short slices, calling ``tick`` between them). A second Ctrl-C
        raises Abandoned at once; a lane's exception is raised once all lanes have ended."""
        while True:
            with self._lock:
                threads = [t for ts in self._threads.values() for t in ts]
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

