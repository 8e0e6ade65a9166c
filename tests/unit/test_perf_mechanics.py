"""Mechanics behind the benchmark figures: proportional polling and the light import of the state store."""

from __future__ import annotations

import subprocess
import sys

from vmops.config import ProviderSettings, Secret
from vmops.providers.base import Timing
from vmops.providers.crusoe import CrusoeProvider


def _adapter(timing: Timing) -> CrusoeProvider:
    return CrusoeProvider(ProviderSettings("crusoe", "http://127.0.0.1:9", Secret("k"), scope="proj-001"), timing)


def test_poll_delay_runs_to_the_typical_duration_then_backs_off() -> None:
    p = _adapter(Timing(poll_interval=1.0, poll_min=0.05, poll_fraction=0.05))
    assert p.poll_delay(0.0, expected=3.0) == 1.0  # before the typical duration: at most an interval
    assert abs(p.poll_delay(2.5, expected=3.0) - 0.5) < 1e-9  # ... and never past it
    assert abs(p.poll_delay(3.0, expected=3.0) - 0.15) < 1e-9  # at it: poll_fraction of the wait
    assert abs(p.poll_delay(4.0, expected=3.0) - 0.5) < 1e-9  # late: half the overtime (geometric back-off)
    assert p.poll_delay(60.0, expected=3.0) == 1.0  # capped by the configured interval
    assert p.poll_delay(0.0) == 0.05  # no typical duration: the first polls are quick
    after = [p.poll_delay(3.0 + t / 10, expected=3.0) for t in range(0, 600)]
    assert after == sorted(after)  # never polls faster as the overtime grows
    # a 3 s create polled from its answer: 1, 2, 3 s, then every poll that misses backs off
    t, polls = 0.0, 0
    while t < 3.0:
        t += p.poll_delay(t, expected=3.0)
        polls += 1
    assert polls == 3 and abs(t - 3.0) < 1e-9


def test_typical_durations_come_from_the_catalogue() -> None:
    from vmops.model import State
    from vmops.providers.base import TARGETS

    p = _adapter(Timing())
    assert p.expected_seconds({"a": TARGETS["create"]}) == 2.5  # ../shared/provider-apis.md 1.4
    assert p.expected_seconds({"a": TARGETS["destroy"]}) == 2.0
    assert p.expected_seconds({"a": frozenset({State.RUNNING, State.ERROR, State.DELETED})}) == 2.5
    assert p.expected_seconds({}) == 0.0


def test_poll_delay_never_exceeds_a_short_configured_interval() -> None:
    p = _adapter(Timing(poll_interval=0.02))
    assert p.poll_delay(0.0) == 0.02 and p.poll_delay(100.0) == 0.02


def test_state_store_imports_without_pandas_and_pandas_still_works_after() -> None:
    code = (
        "import sys, tempfile\n"
        "import vmops.fleet.manager\n"
        "from vmops.state import Store\n"
        "assert 'pandas' not in sys.modules and 'numpy' not in sys.modules, 'state store pulled in pandas'\n"
        "s = Store(tempfile.mkdtemp() + '/state.db'); f, _ = s.claim_fleet('abc', gpu='h100:1', count=1, "
        "min_count=1, policy='spread'); assert s.list_fleets()[0].name == 'abc'\n"
        "import pandas, numpy\n"
        "print(pandas.DataFrame({'a': [1, 2]}).a.sum())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_nested_store_writes_are_one_transaction(tmp_path) -> None:
    import sqlite3

    import pytest

    from vmops.state import MemberStatus, Store

    path = tmp_path / "state.db"
    s = Store(path)
    f, _ = s.claim_fleet("abc", gpu="h100:1", count=2, min_count=2, policy="spread")
    ms = [s.add_member(f.id, name=None, name_for_seq=lambda q: f"vmops-abc-{q:03d}", provider="crusoe",
                       region="us-east1", native_type="h100.1x", idempotency_key=f"k{i}") for i in range(2)]
    with pytest.raises(RuntimeError):
        with s.write():
            s.update_member(ms[0].id, status=MemberStatus.RUNNING)
            raise RuntimeError("half-way")
    assert s.member(ms[0].id).status is MemberStatus.REQUESTED  # the whole batch rolled back
    other = sqlite3.connect(path)
    with s.write():
        for m in ms:
            s.update_member(m.id, status=MemberStatus.RUNNING)
        # not committed until the outer write ends
        assert {r[0] for r in other.execute("SELECT status FROM member")} == {"requested"}
    assert {r[0] for r in other.execute("SELECT status FROM member")} == {"running"}
    other.close()
    s.close()


def test_members_by_fleet_matches_members_per_fleet(tmp_path) -> None:
    from vmops.state import Store

    s = Store(tmp_path / "state.db")
    fleets = [s.claim_fleet(f"f{i}x", gpu="h100:1", count=3, min_count=1, policy="spread")[0] for i in range(3)]
    for f in fleets[:2]:
        for k in range(3):
            s.add_member(f.id, name=None, name_for_seq=lambda q, n=f.name: f"vmops-{n}-{q:03d}", provider="lambda",
                         region="us-west-1", native_type="gpu_1x_h100", idempotency_key=f"{f.name}{k}")
    grouped = s.members_by_fleet()
    for f in fleets:
        assert [m.to_dict() for m in grouped.get(f.id, [])] == [m.to_dict() for m in s.members(f.id)]
    assert fleets[2].id not in grouped and sum(len(v) for v in grouped.values()) == 6
    s.close()
