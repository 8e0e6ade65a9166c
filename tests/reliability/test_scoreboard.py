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


def test_cloud_rows_are_scenarios_of_their_own(tmp_path, monkeypatch):
    """A scenario run on both dialects makes two rows: the reference name unchanged, the cloud one tagged."""
    from tests.reliability.fleetcheck import dialect_tag

    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(summary.ENV, str(log))
    for dialect in ("reference", "cloud", "cloud"):
        summary.record(f"stuck destroy (nebius){dialect_tag(dialect)}", passed=dialect == "reference", leaked=1)
    rows = summary.totals(summary.load(log))
    assert [(r.scenario, r.trials, r.passed, r.leaked) for r in rows] == [
        ("stuck destroy (nebius)", 1, 1, 1), ("stuck destroy (nebius) (cloud)", 2, 0, 2)]


def test_dialect_seeds_run_a_prefix_of_the_seeds_on_the_cloud_dialect(monkeypatch):
    from tests.reliability import budget

    monkeypatch.setenv("VMOPS_STRESS_BUDGET", "ci")
    ids = [p.id for p in budget.dialect_seeds(50, 4, base=10, cloud=(20, 2))]
    assert ids == ["reference-seed-10", "reference-seed-11", "reference-seed-12", "reference-seed-13",
                   "cloud-seed-10", "cloud-seed-11"]
    monkeypatch.setenv("VMOPS_STRESS_BUDGET", "full")
    params = budget.dialect_seeds(50, 4, base=10, cloud=(20, 2))
    assert [p.values for p in params].count(("cloud", 29)) == 1 and len(params) == 70
