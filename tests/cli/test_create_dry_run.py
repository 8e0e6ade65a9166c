"""`vm create --dry-run` is what the create then does: the same requests placed by the adapter's own rule
(``Provider.placement``, reads only), on both dialects: the region and reservation it shows are where the VM
then lands, and nothing is sent."""

from __future__ import annotations

import pytest

from tests.cli.helpers import vm
from tests.conftest import both_dialects

pytestmark = both_dialects


@pytest.mark.parametrize("provider,args", [
    ("crusoe", ["-g", "h100:8"]),
    ("lambda", ["-g", "h100:8"]),
    ("crusoe", ["-g", "h100:8", "--reserved", "only"]),
])
def test_the_dry_run_shows_where_the_create_then_puts_the_vm(sims, vm_env, provider, args) -> None:
    name = f"dry-{provider}-{len(args)}"
    mutating = sims[provider].requests.mutating_count()
    shown = vm(["create", "-p", provider, *args, "-n", name, "--dry-run", "--json"], vm_env)
    assert shown.code == 0, shown.err
    assert sims[provider].requests.mutating_count() == mutating  # nothing was sent
    [plan] = shown.json()["vms"]
    assert plan["name"] == name and plan["region"], plan
    assert f"at {provider} in {plan['region']}" in shown.err and "nothing was sent" in shown.err
    made = vm(["create", "-p", provider, *args, "-n", name, "--json"], vm_env)
    assert made.code == 0, made.err
    [vm_made] = made.json()
    assert vm_made["region"] == plan["region"], (plan, vm_made)
    assert (plan["reservation_id"] is not None) == ("--reserved" in args) == vm_made["reserved"], (plan, vm_made)
    assert vm(["destroy", vm_made["id"], "-p", provider, "-y"], vm_env).code == 0


def test_a_dry_run_the_create_would_refuse_is_refused_the_same_way(sims, vm_env) -> None:
    """Lambda's reservations cannot be released through its API (reference dialect; the cloud API has none to
    launch into): the create refuses them unless opted in, and so does its dry run, word for word."""
    args = ["create", "-p", "lambda", "-g", "h100:8", "-n", "dry-refused", "--reserved", "only"]
    dry, real = vm([*args, "--dry-run"], vm_env), vm(args, vm_env)
    assert dry.code == real.code == 7, (dry.err, real.err)
    assert dry.err == real.err and dry.err.startswith("error: lambda: "), dry.err
