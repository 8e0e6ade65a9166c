"""The client-side pacer (vmops.providers.pacing) on a fake clock: slots, not wall time, are checked."""

from __future__ import annotations

import threading

from vmops.providers.pacing import PaceLimits, Pacer, pacer_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)


def test_launch_spacing_under_concurrency() -> None:
    clock = FakeClock()
    pacer = Pacer(PaceLimits(request_interval=1.0, launch_interval=12.0), clock=clock, sleep=clock.sleep)
    slots: list[float] = []
    lock = threading.Lock()

    def launch() -> None:
        s = pacer.acquire(launch=True)
        with lock:
            slots.append(s)

    threads = [threading.Thread(target=launch) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(slots) == [100.0 + 12.0 * i for i in range(16)]  # one launch per 12 s, none shared
    # a read asked for now waits for the request slot after the last launch, not for a launch slot
    assert pacer.acquire() == 100.0 + 12.0 * 15 + 1.0


def test_requests_one_per_interval_and_penalty() -> None:
    clock = FakeClock()
    pacer = Pacer(PaceLimits(request_interval=1.0, launch_interval=12.0), clock=clock, sleep=clock.sleep)
    assert [pacer.acquire() for _ in range(3)] == [100.0, 101.0, 102.0]
    assert clock.slept == [1.0, 2.0]
    clock.now = 200.0
    assert pacer.acquire() == 200.0  # an idle pacer does not make anyone wait
    pacer.penalize(30.0, launch=True)
    assert pacer.acquire(launch=True) == 230.0


def test_one_pacer_per_credential_per_process() -> None:
    limits = PaceLimits(request_interval=0.0, launch_interval=0.0)
    a = pacer_for("lambda", "https://x", "key-1", limits)
    assert pacer_for("lambda", "https://x", "key-1", limits) is a
    assert pacer_for("lambda", "https://x", "key-2", limits) is not a
