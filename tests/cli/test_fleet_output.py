"""`vm fleet create` output off a terminal: plain progress lines per provider (final counts last), `-q` silences
them, native GPU names are translated; and the progress renderer drops snapshots that arrive late."""

from __future__ import annotations

import io
import re

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
