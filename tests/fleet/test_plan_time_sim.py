"""Plans that know time through the real `vm` against the simulators of both dialects: `vm fleet create --dry-run`
shows each placement's, each provider's and the fleet's expected seconds to running, from each adapter's launch
pace (the catalogue's typical create-to-running for its dialect, its client-side pacing)."""

from __future__ import annotations


from vmops.catalogue import provider_entry
from vmops.config import load_config

from tests.cli.helpers import vm
from tests.conftest import both_dialects

pytestmark = both_dialects


def dry_run(env: dict[str, str], policy: str, count: int = 6) -> dict:
    r = vm(["fleet", "create", "-g", "h100:1", "-c", str(count), "--policy", policy, "--dry-run", "-o", "json"], env)
    assert r.code == 0, r.err
    return r.json()


def expected(env: dict[str, str], dialect: str, provider: str, n: int) -> float:
    """What the plan should say for ``n`` VMs at ``provider``, computed here from the configuration and catalogue."""
    settings = load_config(env).providers[provider]
    entry = provider_entry(provider)
    if settings.dialect == "cloud" and provider == "lambda":  # one VM per launch, launches paced
        gap = max(settings.launch_interval or 0.0, settings.request_interval or 0.0)
        return round((n - 1) * gap + entry.typical_seconds("create", "cloud"), 3)
    return entry.typical_seconds("create", settings.dialect)


def test_the_dry_run_plan_shows_expected_seconds_to_running(sims, vm_env, dialect) -> None:
    plan = dry_run(vm_env, "spread")
    shares: dict[str, int] = {}
    for row in plan["placements"]:
        shares[row["provider"]] = shares.get(row["provider"], 0) + row["count"]
        assert row["expected_seconds"] <= plan["expected_seconds"]
    assert plan["planned"] == 6 and set(plan["expected_seconds_by_provider"]) == set(shares)
    for provider, n in shares.items():
        assert plan["expected_seconds_by_provider"][provider] == expected(vm_env, dialect, provider, n), provider
    assert plan["expected_seconds"] == max(plan["expected_seconds_by_provider"].values())
    if dialect == "cloud":  # Lambda's real API boots for minutes: the plan says so
        assert plan["expected_seconds"] >= 300
    r = vm(["fleet", "create", "-g", "h100:1", "-c", "6", "--dry-run"], vm_env)
    assert r.code == 0 and "Expected to run in: " in r.out, r.err
    assert sum(s.requests.mutating_count() for s in sims.values()) == 0


def test_fastest_is_never_slower_than_spread_and_beats_it_on_the_real_apis(sims, vm_env, dialect) -> None:
    spread, fastest = dry_run(vm_env, "spread"), dry_run(vm_env, "fastest")
    assert fastest["policy"] == "fastest" and fastest["planned"] == 6
    assert fastest["expected_seconds"] <= spread["expected_seconds"]
    if dialect == "cloud":  # the reference Nebius simulator (3 s) beats minutes of booting on the cloud ones
        assert fastest["expected_seconds"] < spread["expected_seconds"]
        assert set(fastest["expected_seconds_by_provider"]) == {"nebius"}
