"""vmops.fleet.lanes with real threads: what one route() makes one batch, and a second route to a busy key
starting at once (up to ``per_key`` batches in flight), never queued behind the batch that is running."""

from __future__ import annotations

import threading

from vmops.fleet.lanes import Lanes


class Recorder:
    """A work function whose batches block until released; records each batch as it starts."""

    def __init__(self) -> None:
        self.started: list[tuple[str, list[int]]] = []
        self.release = threading.Event()
        self.cond = threading.Condition()

    def __call__(self, key: str, batch: list[int]) -> None:
        with self.cond:
            self.started.append((key, list(batch)))
            self.cond.notify_all()
        assert self.release.wait(30)

    def wait_for(self, n: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.started) >= n, timeout=30)


def test_one_route_is_one_batch_per_key() -> None:
    rec = Recorder()
    lanes: Lanes[int] = Lanes(rec, lambda i: "even" if i % 2 == 0 else "odd")
    lanes.route(range(8))
    assert rec.wait_for(2)
    rec.release.set()
    lanes.join()
    assert sorted(rec.started) == [("even", [0, 2, 4, 6]), ("odd", [1, 3, 5, 7])]


def test_work_routed_to_a_busy_key_starts_at_once_up_to_the_cap() -> None:
    rec = Recorder()
    lanes: Lanes[int] = Lanes(rec, lambda i: "p", per_key=2)
    lanes.route([1, 2])
    assert rec.wait_for(1)
    lanes.route([3])  # the first batch still runs: a second one starts beside it
    assert rec.wait_for(2), rec.started
    lanes.route([4])
    lanes.route([5])  # two batches in flight (the cap): these wait, as one batch, for the first to finish
    assert len(rec.started) == 2
    assert lanes.pending() == 2
    rec.release.set()
    lanes.join()
    assert rec.started == [("p", [1, 2]), ("p", [3]), ("p", [4, 5])]
    assert lanes.pending() == 0


def test_a_failing_batch_is_raised_by_join_and_the_key_takes_no_more_of_its_queue() -> None:
    def work(key: str, batch: list[int]) -> None:
        if key == "bad":
            raise RuntimeError("boom")

    lanes: Lanes[int] = Lanes(work, lambda i: "bad" if i < 0 else "good")
    lanes.route([-1, 1, 2])
    try:
        lanes.join()
    except RuntimeError as e:
        assert str(e) == "boom"
    else:
        raise AssertionError("join did not raise the lane's error")
    assert lanes.pending() == 0
