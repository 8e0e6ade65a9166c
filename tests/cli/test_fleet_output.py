"""`vm fleet create` output off a terminal: plain progress lines per provider (final counts last), `-q` silences
them, native GPU names are translated; and the progress renderer drops snapshots that arrive late."""

from __future__ import annotations

import io
import re
import time

from tests.cli.helpers import vm
from vmops.cli.progress import PlainProgress
from vmops.fleet.progress import ProviderProgress


def _last_counts(err: str) -> dict[str, tuple[int, int, int, int]]:
    last: dict[str, tuple[int, int, int, int]] = {}
    for m in re.finditer(r"\] (\w+): requested (\d+), accepted (\d+), running (\d+), failed (\d+)", err):
        last[m.group(1)] = tuple(int(x) for x in m.groups()[1:])  # type: ignore[assignment]
    return last


def test_plain_progress_ends_on_the_final_counts_and_q_silences_it(vm_env):
    r = vm(["fleet", "create", "-g", "h100", "-c", "4", "-n", "plain4", "--json"], vm_env)
    assert r.code == 0, r.err
    last = _last_counts(r.err)
    assert sum(c[2] for c in last.values()) == r.json()["running"] == 4
    assert all(len(ln) <= 80 for ln in r.err.splitlines() if "requested" in ln)
    quiet = vm(["fleet", "create", "-g", "h100", "-c", "1", "-n", "quiet1", "-q", "--json"], vm_env)
    assert quiet.code == 0 and "requested" not in quiet.err and quiet.json()["running"] == 1
    none = vm(["fleet", "create", "-g", "h100", "-c", "1", "-n", "none1", "--progress", "none", "--json"], vm_env)
    assert none.code == 0 and "requested" not in none.err
    for name in ("plain4", "quiet1", "none1"):
        assert vm(["fleet", "destroy", name, "-q"], vm_env).code == 0


def test_fleet_create_takes_any_providers_native_name(vm_env):
    for native in ("gpu_8x_h100", "h100.8x", "gpu-h100-sxm/8gpu-160vcpu-1600gb"):
        r = vm(["fleet", "create", "-g", native, "-c", "2", "-n", "native", "--dry-run", "--json"], vm_env)
        assert r.code == 0, (native, r.err)
        assert r.json()["gpu"] == "h100:8"


def test_late_snapshots_are_dropped():
    out = io.StringIO()
    p = PlainProgress(out)
    p([ProviderProgress("crusoe", requested=2, accepted=2, running=2)])
    p([ProviderProgress("crusoe", requested=2, accepted=2, running=1)])  # older: arrived late
    p([ProviderProgress("crusoe", requested=2, accepted=2, running=2)])  # unchanged
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("crusoe: requested 2, accepted 2, running 2, failed 0")


def _lines(out: io.StringIO) -> list[str]:
    return [ln.split("] ", 1)[1] for ln in out.getvalue().splitlines()]


def test_plain_progress_holds_back_changes_within_its_interval_and_ends_on_the_last_counts():
    out = io.StringIO()
    p = PlainProgress(out, every=3600)  # nothing is released by time in this test
    for n in range(1, 6):
        p([ProviderProgress("crusoe", requested=6, accepted=n)])
    p([ProviderProgress("crusoe", requested=6, accepted=5, failed=1)])  # a failure: written at once
    p([ProviderProgress("crusoe", requested=6, accepted=5, running=2, failed=1)])  # held
    assert _lines(out) == ["crusoe: requested 6, accepted 1, running 0, failed 0",
                           "crusoe: requested 6, accepted 5, running 0, failed 1"]
    p([ProviderProgress("crusoe", requested=6, accepted=5, running=5, failed=1),  # nothing pending: at once
       ProviderProgress("lambda", requested=1)])  # a provider's first line: at once
    p([ProviderProgress("lambda", requested=1, accepted=1)])  # held until finish
    assert _lines(out)[2:] == ["crusoe: requested 6, accepted 5, running 5, failed 1",
                               "lambda: requested 1, accepted 0, running 0, failed 0"]
    p.finish()
    assert _lines(out)[4:] == ["lambda: requested 1, accepted 1, running 0, failed 0"]


def test_plain_progress_writes_a_held_line_when_its_interval_ends():
    out = io.StringIO()
    p = PlainProgress(out, every=0.2)
    p([ProviderProgress("nebius", requested=4)])
    p([ProviderProgress("nebius", requested=4, accepted=3)])  # within the interval: held, then released
    deadline = time.monotonic() + 10
    while len(_lines(out)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _lines(out) == ["nebius: requested 4, accepted 0, running 0, failed 0",
                           "nebius: requested 4, accepted 3, running 0, failed 0"]
    p.finish()
    assert len(_lines(out)) == 2  # nothing held: finish writes nothing more


def test_plain_progress_on_a_big_fleet_stays_short(vm_env):
    r = vm(["fleet", "create", "-g", "h100", "-c", "12", "-n", "many12", "--json"], vm_env)
    assert r.code == 0, r.err
    lines = [ln for ln in r.err.splitlines() if "requested" in ln]
    assert len(lines) <= 15  # one per event would be ~36; here a few per provider
    assert sum(c[2] for c in _last_counts(r.err).values()) == 12
    assert vm(["fleet", "destroy", "many12", "-q"], vm_env).code == 0


def test_creates_of_unknown_outcome_are_counted_apart_from_failures():
    """A create the provider never answered may have made a VM that bills: the progress says "unknown", in
    the plain line and the live table, and counts it as no longer pending (not as failed)."""
    from vmops.cli.progress import LiveProgress

    out = io.StringIO()
    p = PlainProgress(out)
    p([ProviderProgress("lambda", requested=2)])
    p([ProviderProgress("lambda", requested=2, failed=1, unknown=1)])  # settled: written at once
    assert _lines(out)[-1] == "lambda: requested 2, accepted 0, running 0, failed 1, unknown 1"
    live_out = io.StringIO()
    live = LiveProgress(stream=live_out)
    live([ProviderProgress("lambda", requested=2, failed=1, unknown=1),
          ProviderProgress("crusoe", requested=2, accepted=2, running=2)])
    live.finish()
    rows = {ln.split()[0]: ln for ln in live_out.getvalue().splitlines() if ln.split()}
    assert rows["lambda"].rstrip().endswith("1 unknown") and "done" not in rows["lambda"], rows
    assert rows["crusoe"].rstrip().endswith("done"), rows
