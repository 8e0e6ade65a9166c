"""The scoreboard itself: rows from many writers add up per scenario."""

from tests.reliability import summary


def test_totals_add_up_per_scenario(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(summary.ENV, str(log))
    summary.record("a", passed=True)
    summary.record("a", passed=False, leaked=2, detail="seed 7: 2 left")
    summary.record("b", trials=50, passed=50, duplicates=0, unasked=1)
    rows = summary.totals(summary.load(log))
    assert [(r.scenario, r.trials, r.passed, r.leaked) for r in rows] == [("a", 2, 1, 2), ("b", 50, 50, 0)]
    assert rows[0].detail == "seed 7: 2 left"
    assert "| a | 2 | 1 | 2 | 0 | - |" in summary.table(summary.load(log))  # not measured there
    assert "| b | 50 | 50 | 0 | 0 | 1 |" in summary.table(summary.load(log))
