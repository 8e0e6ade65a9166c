"""Single-VM verbs at every provider in both dialects: `-p PROVIDER NAME` finds a VM by name (an id not found
there is looked up as a name in its list; the public APIs answer an unknown id differently from the reference
servers), and a verb's dry run ends as the verb does."""

from __future__ import annotations

import pytest

from tests.cli.helpers import vm
from tests.conftest import both_dialects

pytestmark = both_dialects


@pytest.mark.parametrize("provider", ["crusoe", "lambda", "nebius"])
def test_a_name_with_its_provider_picks_the_vm(vm_env, dialect, provider):
    made = vm(["create", "-p", provider, "-g", "h100", "-n", f"byname-{provider}", "--json"], vm_env)
    assert made.code == 0, made.err
    vid = made.json()[0]["id"]
    got = vm(["get", f"byname-{provider}", "-p", provider, "--json"], vm_env)
    assert got.code == 0 and got.json()["id"] == vid, got.err
    missing = vm(["get", "no-such-name", "-p", provider], vm_env)
    assert missing.code == 5, missing.err
    gone = vm(["destroy", f"byname-{provider}", "-p", provider, "-y"], vm_env)
    assert gone.code == 0 and vid in gone.err, gone.err


@pytest.mark.parametrize("provider, verb, code", [("crusoe", "reboot", None), ("lambda", "stop", 10),
                                                  ("nebius", "reset", 10)])
def test_a_verb_and_its_dry_run_end_alike(vm_env, sims, dialect, provider, verb, code):
    """In both dialects: a verb the provider lacks fails in its dry run with the action's own error, and neither
    sends anything; one it has is previewed and then done (Crusoe's public API has no soft reboot)."""
    made = vm(["create", "-p", provider, "-g", "h100", "-n", f"alike-{provider}", "--json"], vm_env)
    assert made.code == 0, made.err
    if code is None:
        code = 10 if dialect == "cloud" else 0
    before = sims[provider].requests.mutating_count()
    dry = vm([verb, f"alike-{provider}", "-p", provider, "--dry-run"], vm_env)
    assert sims[provider].requests.mutating_count() == before
    real = vm([verb, f"alike-{provider}", "-p", provider, "-y"], vm_env)
    assert real.code == code, real.err
    if code:
        assert dry.code == code and dry.err == real.err, (dry.err, real.err)
        assert sims[provider].requests.mutating_count() == before
    else:
        assert dry.code == 0 and f"would {verb} alike-{provider}" in dry.err, dry.err
    assert vm(["destroy", f"alike-{provider}", "-p", provider, "-y"], vm_env).code == 0
