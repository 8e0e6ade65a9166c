"""Ctrl-C as a request, never an exception in the middle of library code.

A KeyboardInterrupt raised at an arbitrary bytecode can leave any lock held (a thread pool's semaphore,
a Condition), after which the rollback it was meant to start hangs for ever (issue seen with the suite on
two workers: the main thread interrupted inside ``ThreadPoolExecutor.submit``). So while a fleet command
runs, SIGINT only records the press: the first asks the command to stop creating and roll back, the
second to abandon the rollback and leave the fleet recorded. The command acts on it at safe points
(between creates, while waiting in short slices).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Abandoned(Exception):
    """A second Ctrl-C arrived: leave now, the record holds what was done."""


class StopRequest:
    """Presses of Ctrl-C seen so far: ``stop`` after the first, ``abandoned`` after the second."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._abandon = threading.Event()

    def press(self) -> None:
        if self.stop.is_set():
            self._abandon.set()
        self.stop.set()

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    @property
    def abandoned(self) -> bool:
        return self._abandon.is_set()


@contextmanager
def sigint_requests(request: StopRequest) -> Iterator[StopRequest]:
    """While inside, SIGINT presses ``request`` instead of raising KeyboardInterrupt (main thread only;
    elsewhere, e.g. a notebook's worker thread, the caller sets ``request.stop`` itself)."""
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        request.press()

    signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
