"""`-p PROVIDER NAME` finds a VM by name at that provider, in both dialects (an id not found there is looked
up as a name in its list; the public APIs answer an unknown id differently from the reference servers)."""

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
