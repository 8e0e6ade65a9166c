"""The circuit breaker's files in a real state directory: open, expire, close, ignore what it cannot trust."""

from __future__ import annotations

import json
import time

from vmops.breaker import Breaker

URL = "http://127.0.0.1:8002"


def test_trip_opens_for_the_configured_time_then_expires(tmp_path) -> None:
    b = Breaker(tmp_path, 30)
    assert b.open_trip("lambda", URL) is None
    b.trip("lambda", URL, "GET /x: no answer within 10 s")
    trip = b.open_trip("lambda", URL)
    assert trip is not None and trip.reason == "GET /x: no answer within 10 s"
    assert 29 < trip.until - trip.failed_at <= 30
    assert b.open_trip("crusoe", URL) is None  # one file per provider
    assert b.open_trip("lambda", "http://127.0.0.1:8003") is None  # pointed elsewhere: asked at once
    assert b.open_trip("lambda", URL, now=trip.until + 0.01) is None  # expired
    assert (tmp_path / "breaker" / "lambda.json").exists()


def test_close_forgets_even_when_turned_off(tmp_path) -> None:
    Breaker(tmp_path, 30).trip("nebius", URL, "refused")
    off = Breaker(tmp_path, 0)
    assert off.open_trip("nebius", URL) is None  # 0 = never skip
    off.trip("crusoe", URL, "refused")
    assert not (tmp_path / "breaker" / "crusoe.json").exists()  # turned off: nothing written
    off.close("nebius")
    assert Breaker(tmp_path, 30).open_trip("nebius", URL) is None


def test_unreadable_or_implausible_files_are_ignored(tmp_path) -> None:
    d = tmp_path / "breaker"
    d.mkdir()
    (d / "crusoe.json").write_text("{not json")
    now = time.time()
    (d / "lambda.json").write_text(json.dumps({"endpoint": URL, "failed_at": now, "until": now + 3600,
                                                "reason": "x"}))
    b = Breaker(tmp_path, 30)
    assert b.open_trip("crusoe", URL) is None
    assert b.open_trip("lambda", URL) is None  # further out than the setting allows (edited file, clock step)
