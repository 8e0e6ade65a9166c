"""Every single-VM command on every provider, through the real `vm` program against the simulators."""

from __future__ import annotations

import socket

import pytest

from tests.cli.helpers import vm

FIELDS = {"provider", "id", "name", "gpu", "region", "state", "public_ip", "private_ip", "reserved",
          "reservation_id", "price_per_hour"}


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_list_all_providers(vm_env):
    r = vm(["list", "--json"], vm_env)
    assert r.code == 0, r.err
    rows = r.json()
    assert FIELDS <= set(rows[0])
    names = {(x["provider"], x["name"]) for x in rows}
    assert ("crusoe", "gpu-worker-1") in names
    assert ("lambda", "reserved-h100-node") in names
    assert ("nebius", "train-node-01") in names
    assert {x["state"] for x in rows} == {"running"}
    table = vm(["list"], vm_env)
    assert table.code == 0 and "PROVIDER" in table.out.splitlines()[0] and "gpu-worker-1" in table.out
    # "rerun with --debug", added at the end: the same list, with the requests logged (keys redacted)
    debug = vm(["list", "--json", "--debug"], vm_env)
    assert debug.code == 0 and {(x["provider"], x["name"]) for x in debug.json()} == names, debug.err
    assert "GET" in debug.err and "****" in debug.err


def test_list_with_one_provider_down_shows_the_others(vm_env):
    env = {**vm_env, "VMOPS_LAMBDA_URL": f"http://127.0.0.1:{dead_port()}"}
    r = vm(["list", "--json"], env)
    assert r.code == 14
    providers = {x["provider"] for x in r.json()}
    assert providers == {"crusoe", "nebius"}
    assert "lambda" in r.err and "Traceback" not in r.err


def test_list_with_an_adapter_that_cannot_be_made_is_that_settings_error(vm_env):
    """Each provider's list starts as soon as its adapter is made, while the next adapter's library still loads
    (vmops.session.fan_out); a setting that stops one from being made is still the command's error (exit 2,
    the setting named, nothing listed), never a provider that "could not be listed"."""
    env = {k: v for k, v in vm_env.items() if not k.startswith("VMOPS_NEBIUS_") or k == "VMOPS_NEBIUS_ENDPOINT"}
    r = vm(["list", "--json"], {**env, "VMOPS_NEBIUS_DIALECT": "cloud"})
    assert r.code == 2, r.err
    assert "no Nebius credentials are configured" in r.err and "could not be listed" not in r.err
    assert r.out == ""


@pytest.mark.parametrize("provider,gpu", [("crusoe", "h100:1"), ("nebius", "h200"), ("lambda", "a100")])
def test_create_get_destroy(vm_env, provider, gpu):
    r = vm(["create", "--provider", provider, "--gpu", gpu, "--name", f"cli-{provider}", "--json"], vm_env)
    assert r.code == 0, r.err
    [made] = r.json()
    assert made["state"] == "running" and made["name"] == f"cli-{provider}" and made["provider"] == provider
    assert made["gpu"] == str(gpu if ":" in gpu else gpu + ":1")
    got = vm(["get", made["id"], "--provider", provider, "--json"], vm_env)
    assert got.code == 0 and got.json()["id"] == made["id"]
    gone = vm(["destroy", made["id"], "--provider", provider, "--json"], vm_env)
    assert gone.code == 0, gone.err
    assert gone.json()["state"] == "deleted"
    missing = vm(["get", made["id"], "--provider", provider], vm_env)
    assert missing.code == 5 and ("not found" in missing.err.lower() or "does not exist" in missing.err.lower())


@pytest.mark.parametrize("provider,gpu", [("crusoe", "a100"), ("nebius", "h100")])
def test_stop_start(vm_env, provider, gpu):
    made = vm(["create", "--provider", provider, "--gpu", gpu, "--json"], vm_env).json()[0]
    stopped = vm(["stop", made["id"], "--provider", provider, "--json"], vm_env)
    assert stopped.code == 0, stopped.err
    assert stopped.json()["state"] == "stopped"
    again = vm(["stop", made["id"], "--provider", provider], vm_env)
    assert again.code == 0 and "already stopped; nothing to do" in again.err, again.err  # idempotent
    started = vm(["start", made["id"], "--provider", provider, "--json"], vm_env)
    assert started.code == 0 and started.json()["state"] == "running"
    assert vm(["destroy", made["id"], "--provider", provider], vm_env).code == 0


def test_create_count_and_region_alias(vm_env):
    r = vm(["create", "--provider", "crusoe", "--gpu", "a100.1x", "--count", "2", "--name", "pair",
            "--region", "eu-west", "--json"], vm_env)
    assert r.code == 0, r.err
    rows = r.json()
    assert sorted(x["name"] for x in rows) == ["pair-0", "pair-1"]
    assert {x["region"] for x in rows} == {"eu-west1"}


def test_region_picked_when_omitted(vm_env):
    r = vm(["create", "--provider", "lambda", "--gpu", "h100:8", "--json"], vm_env)
    assert r.code == 0, r.err
    assert r.json()[0]["region"] in ("us-west-1", "us-east-1")
    assert "in us-" in r.err  # the picked region is said


def test_reboot_reset_restart(vm_env):
    made = vm(["create", "--provider", "crusoe", "--gpu", "h100", "--json"], vm_env).json()[0]
    for verb in ("reboot", "reset", "restart"):
        r = vm([verb, made["id"], "--provider", "crusoe", "--json"], vm_env)
        assert r.code == 0, (verb, r.err)
        assert r.json()["state"] == "running"
    lam = vm(["list", "--provider", "lambda", "--json"], vm_env).json()[0]
    assert vm(["restart", lam["id"], "--provider", "lambda"], vm_env).code == 0


def test_unsupported_verbs_exit_10_before_any_call(vm_env, lambda_sim, nebius_sim):
    lam = vm(["list", "--provider", "lambda", "--json"], vm_env).json()[0]
    before = lambda_sim.requests.mutating_count()
    r = vm(["stop", lam["id"], "--provider", "lambda"], vm_env)
    assert r.code == 10 and "lambda" in r.err.lower()
    assert lambda_sim.requests.mutating_count() == before
    neb = vm(["list", "--provider", "nebius", "--json"], vm_env).json()[0]
    assert vm(["reboot", neb["id"], "--provider", "nebius"], vm_env).code == 10


def test_reserved_lambda_instance_cannot_be_destroyed(vm_env):
    rows = vm(["list", "--provider", "lambda", "--json"], vm_env).json()
    reserved = next(x for x in rows if x["reserved"])
    r = vm(["destroy", reserved["id"], "--provider", "lambda"], vm_env)
    assert r.code == 9 and "reserved" in r.err.lower()


def test_capacity_and_reservations(vm_env):
    cap = vm(["capacity", "--gpu", "h100:8", "--json"], vm_env)
    assert cap.code == 0, cap.err
    rows = cap.json()
    assert {r["provider"] for r in rows} == {"crusoe", "lambda", "nebius"}
    assert all(r["gpu"] == "h100:8" for r in rows)
    crusoe_west = [r for r in rows if r["provider"] == "crusoe" and r["region"] == "us-west1" and not r["reserved"]]
    assert crusoe_west and crusoe_west[0]["available"] == 2
    res = vm(["reservations", "--json"], vm_env)
    assert res.code == 0
    ids = {r["id"] for r in res.json()}
    assert {"rsv-001", "rsv-002", "rsv-lambda-001", "rsv-neb-001"} <= ids


@pytest.mark.parametrize(
    "args,needle",
    [
        (["create", "--provider", "nope", "--gpu", "h100"], "unknown provider"),
        (["create", "--provider", "lambda", "--gpu", "h200"], "does not offer"),
        (["create", "--provider", "crusoe", "--gpu", "h100", "--count", "0"], "--count"),
        (["create", "--provider", "crusoe", "--gpu", "h100", "--count", "x"], "--count takes a whole number"),
        (["create", "--provider", "crusoe", "--gpu", "h100", "--region", "mars-1"], "unknown region"),
        (["create", "--provider", "nebius", "--gpu", "h100", "--region", "us-west"], "no regions"),
        (["create", "--provider", "crusoe", "--gpu", "h1x0:z"], "does not offer"),
        (["capacity", "--gpu", "h100:x"], "GPU shape"),
        (["get", "--provider", "crusoe"], "missing argument ID"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_argument_errors_exit_2_before_any_network_call(tmp_path, args, needle):
    dead = dead_port()
    env = {"VMOPS_HOME": str(tmp_path), "VMOPS_CRUSOE_URL": f"http://127.0.0.1:{dead}",
           "VMOPS_LAMBDA_URL": f"http://127.0.0.1:{dead}", "VMOPS_NEBIUS_ENDPOINT": f"127.0.0.1:{dead}"}
    r = vm(args, env)
    assert r.code == 2, (r.code, r.err)
    assert needle.lower() in r.err.lower()
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_help_for_every_command(tmp_path):
    env = {"VMOPS_HOME": str(tmp_path)}
    commands = ["list", "create", "get", "stop", "start", "destroy", "reboot", "reset", "restart", "capacity",
                "reservations", "config show", "sim up", "sim down", "sim status", "sim reset"]
    for cmd in commands:
        r = vm(cmd.split() + ["--help"], env)
        assert r.code == 0, (cmd, r.err)
        assert "Usage" in r.out and "--" in r.out, cmd
    top = vm(["--help"], env)
    assert all(c in top.out for c in commands)


def test_bad_key_is_auth_error_and_never_printed(vm_env):
    secret = "sk-live-DO-NOT-PRINT-0123456789"
    for var, provider in (("VMOPS_CRUSOE_API_KEY", "crusoe"), ("VMOPS_LAMBDA_API_KEY", "lambda"),
                          ("VMOPS_NEBIUS_API_KEY", "nebius")):
        env = {**vm_env, var: secret}
        r = vm(["list", "--provider", provider], env)
        assert r.code == 3, (provider, r.code, r.err)
        assert secret not in r.out + r.err
        dbg = vm(["--debug", "list", "--provider", provider], env)
        assert secret not in dbg.out + dbg.err
    show = vm(["config", "show", "--json"], {**vm_env, "VMOPS_CRUSOE_API_KEY": secret})
    assert show.code == 0 and secret not in show.out
    assert show.json()["providers"]["crusoe"]["api_key"].startswith("****")


def test_path_traversal_id_never_reaches_another_endpoint(vm_env, crusoe_sim):
    r = vm(["get", "../../reservations", "--provider", "crusoe", "--json"], vm_env)
    assert r.code in (5, 6), r.out
    assert "rsv-001" not in r.out
    assert crusoe_sim.requests.count("list_reservations") == 0


def test_ctrl_c_while_waiting_names_the_vms_that_exist(vm_env, crusoe_sim):
    import os
    import signal
    import subprocess
    import time

    from tests.cli.helpers import VM
    from vmops.sim.common import Fault

    crusoe_sim.faults.add(Fault(endpoint="create_instance", kind="never_complete"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}, **vm_env}
    p = subprocess.Popen(VM + ["create", "--provider", "crusoe", "--gpu", "h100", "--name", "stuck"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    deadline = time.monotonic() + 30
    while "waiting for" not in err and time.monotonic() < deadline:
        err += p.stderr.readline()
    p.send_signal(signal.SIGINT)
    out, rest = p.communicate(timeout=30)
    err += rest
    assert p.returncode == 130, err
    assert "stuck" in crusoe_sim_instances(crusoe_sim)  # it really exists, so saying so matters
    assert "stuck (" in err and "may be running" in err and "Traceback" not in err


def test_create_that_cannot_be_confirmed_names_the_vm_it_made(vm_env, crusoe_sim):
    """The create is accepted, then Crusoe answers 503 to every read while the VM boots: the error used to be
    the bare 503 (exit 12), as if nothing had been made. It names the VM that exists (and may bill), prints it
    (--json: as accepted), and exits 14."""
    from vmops.sim.common import Fault

    crusoe_sim.faults.add(Fault(endpoint="list_instances", kind="error", status=503, nth=tuple(range(2, 500))))
    crusoe_sim.faults.add(Fault(endpoint="get_instance", kind="error", status=503))
    r = vm(["create", "--provider", "crusoe", "--gpu", "h100", "--name", "unsure", "--json"], vm_env)
    assert r.code == 14, r.err
    [made] = r.json()
    assert made["name"] == "unsure" and made["state"] == "creating"
    assert f"accepted unsure ({made['id']}) at crusoe, but could not confirm it running" in r.err, r.err
    assert "may be running and billing" in r.err and "vm destroy unsure" in r.err
    crusoe_sim.faults.clear()
    assert "unsure" in crusoe_sim_instances(crusoe_sim)


def crusoe_sim_instances(sim):
    """Names of the instances the Crusoe simulator holds (read through its HTTP API)."""
    import httpx

    r = httpx.get(sim.address + "/v1alpha5/projects/proj-001/compute/vms/instances",
                  headers={"Authorization": "Bearer crusoe-test-key-001"})
    return [i["name"] for i in r.json()["items"]]


def test_address_by_name_without_provider(vm_env, nebius_sim):
    got = vm(["get", "train-node-01", "--json"], vm_env)
    assert got.code == 0, got.err
    assert got.json()["provider"] == "nebius" and got.json()["name"] == "train-node-01"
    by_id = vm(["get", got.json()["id"], "-o", "json"], vm_env)
    assert by_id.code == 0 and by_id.json()["id"] == got.json()["id"]
    missing = vm(["get", "no-such-vm"], vm_env)
    assert missing.code == 5 and "no-such-vm" in missing.err


def test_ambiguous_name_lists_the_candidates_and_changes_nothing(vm_env, crusoe_sim, lambda_sim):
    a = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "twin", "--json"], vm_env).json()[0]
    b = vm(["create", "-p", "lambda", "-g", "h100", "-n", "twin", "--json"], vm_env).json()[0]
    before = crusoe_sim.requests.mutating_count() + lambda_sim.requests.mutating_count()
    r = vm(["destroy", "twin", "-y"], vm_env)
    assert r.code == 2, r.err
    assert a["id"] in r.err and b["id"] in r.err and "--provider" in r.err
    assert crusoe_sim.requests.mutating_count() + lambda_sim.requests.mutating_count() == before
    assert vm(["destroy", a["id"]], vm_env).code == 0  # an id is unambiguous
    assert vm(["destroy", "twin"], vm_env).code == 0  # and now the name is too


def test_provider_narrows_a_name_as_the_ambiguity_hint_says(vm_env, crusoe_sim, lambda_sim):
    a = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "pair", "--json"], vm_env).json()[0]
    b = vm(["create", "-p", "lambda", "-g", "h100", "-n", "pair", "--json"], vm_env).json()[0]
    assert "--provider" in vm(["get", "pair"], vm_env).err
    got = vm(["get", "pair", "-p", "lambda", "--json"], vm_env)  # the hint, followed
    assert got.code == 0 and got.json()["id"] == b["id"], got.err
    gone = vm(["destroy", "pair", "-p", "crusoe", "-y"], vm_env)
    assert gone.code == 0 and f"destroyed pair ({a['id']})" in gone.err, gone.err
    assert vm(["get", "pair", "-p", "crusoe"], vm_env).code == 5
    c = _console_launch(lambda_sim, "pair")  # vm create refuses a taken name; another tool may not
    both = vm(["stop", "pair", "-p", "lambda"], vm_env)  # twins at one provider: only their ids tell them apart
    assert both.code == 2 and b["id"] in both.err and c in both.err and "--provider" not in both.err
    assert vm(["destroy", b["id"], "-p", "lambda", "-y"], vm_env).code == 0
    assert vm(["destroy", c, "-y"], vm_env).code == 0


def _console_launch(lambda_sim, name: str) -> str:
    """Launch a VM at the Lambda simulator as another tool would (its own API call): the new id."""
    import httpx

    r = httpx.post(lambda_sim.address + "/api/v1/instance-operations/launch",
                   headers={"Authorization": "Bearer lambda-test-key-001"},
                   json={"region_name": "us-east-1", "instance_type_name": "gpu_1x_h100", "ssh_key_names": ["vmops"],
                         "name": name})
    assert r.status_code == 200, r.text
    return r.json()["data"]["instance_ids"][0]


def test_destroy_says_what_and_is_idempotent(vm_env):
    made = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "once", "--json"], vm_env).json()[0]
    first = vm(["destroy", "once"], vm_env)
    assert first.code == 0, first.err
    assert f"destroyed once ({made['id']})" in first.err
    again = vm(["destroy", made["id"], "-p", "crusoe"], vm_env)
    assert again.code == 0 and "already gone" in again.err and "once" in again.err
    by_name = vm(["destroy", "once"], vm_env)
    assert by_name.code == 0 and "already gone" in by_name.err
    never = vm(["destroy", "00000000-0000-4000-8000-000000000000", "-p", "crusoe"], vm_env)
    assert never.code == 5  # an id vmops never saw is not "already gone": a typo is not a success


@pytest.mark.parametrize("verb", ["destroy", "stop"])
def test_dry_run_changes_nothing(vm_env, crusoe_sim, verb):
    made = vm(["create", "-p", "crusoe", "-g", "h100", "-n", f"dry-{verb}", "--json"], vm_env).json()[0]
    before = crusoe_sim.requests.mutating_count()
    r = vm([verb, f"dry-{verb}", "--dry-run"], vm_env)
    assert r.code == 0, r.err
    assert f"would {verb} dry-{verb} ({made['id']}) at crusoe" in r.err
    assert crusoe_sim.requests.mutating_count() == before
    assert vm(["get", made["id"], "-p", "crusoe", "--json"], vm_env).json()["state"] == "running"


def test_destroying_a_fleet_member_by_hand_says_whose_it_is(vm_env, crusoe_sim):
    """`vm destroy` of a VM named as a fleet's member says so before acting; the fleet's record then reports it
    gone without calling it deleted outside vmops (it was vmops, only not a fleet command)."""
    made = vm(["fleet", "create", "-g", "h100", "-c", "1", "-n", "solo", "--json"],
              {**vm_env, "VMOPS_PROVIDERS": "crusoe"}).json()
    name = made["members"][0]["name"]
    dry = vm(["destroy", name, "--dry-run"], vm_env)
    assert dry.code == 0 and f"would destroy {name} (" in dry.err and ", named as a member of fleet 'solo'" in dry.err
    assert vm(["destroy", name, "-y"], vm_env).code == 0
    seen = vm(["fleet", "reconcile", "solo", "-y"], vm_env)
    assert seen.code == 0, seen.err
    assert "no longer exists at crusoe (deleted, not by a fleet command)" in seen.out + seen.err
    assert "outside vmops" not in seen.out + seen.err


def test_csv_output_of_one_vm(vm_env):
    r = vm(["get", "train-node-01", "-o", "csv"], vm_env)
    assert r.code == 0, r.err
    header, row = r.out.strip().splitlines()
    assert header.startswith("provider,id,name,gpu") and "train-node-01" in row


def test_inv_task_with_a_positional_runs_the_same_command(vm_env):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}, **vm_env}
    p = subprocess.run([sys.executable, "-m", "invoke", "vm.get", "train-node-01", "--json"], env=env,
                       cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == vm(["get", "train-node-01", "--json"], vm_env).json()


def test_create_uses_reserved_capacity_only_when_asked(vm_env):
    """Crusoe places a create into a free reservation by itself (rsv-002 holds a free h100.8x): a plain
    `vm create` must stay on on-demand capacity; `--reserved only` goes into the reservation."""
    plain = vm(["create", "-p", "crusoe", "-g", "h100:8", "-n", "plain-h100", "--json"], vm_env)
    assert plain.code == 0, plain.err
    [p] = plain.json()
    assert not p["reserved"] and not p["reservation_id"], p
    asked = vm(["create", "-p", "crusoe", "-g", "h100:8", "-n", "rsv-h100", "--reserved", "only", "--json"], vm_env)
    assert asked.code == 0, asked.err
    [a] = asked.json()
    assert a["reserved"] and a["reservation_id"] == "rsv-002", a
    for made in (p, a):
        assert vm(["destroy", made["id"], "-p", "crusoe", "-y"], vm_env).code == 0
    dry = vm(["create", "-p", "crusoe", "-g", "h100:8", "--dry-run"], vm_env)
    assert dry.code == 0 and "on-demand" in dry.err, dry.err


def test_fleet_create_with_no_provider_answering_says_why_per_provider_once(vm_env):
    """Every provider down: one sentence (nothing was created), then each provider's cause on its own line, and
    each distinct hint once (it was every provider's full error, hint and all, run together on one line)."""
    env = {**vm_env, "VMOPS_CRUSOE_URL": f"http://127.0.0.1:{dead_port()}",
           "VMOPS_LAMBDA_URL": f"http://127.0.0.1:{dead_port()}", "VMOPS_NEBIUS_ENDPOINT": f"127.0.0.1:{dead_port()}",
           "VMOPS_BREAKER_SECONDS": "0"}
    r = vm(["fleet", "create", "-g", "h100", "-c", "2", "-n", "nobody"], env)
    assert r.code == 12, r.err
    lines = r.err.strip().splitlines()
    assert lines[0].startswith("error: no provider could be asked for h100:1 capacity; nothing was created.")
    assert lines[1].split() == ["PROVIDER", "WHY"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["crusoe", "lambda", "nebius"] and len(lines) == 5
    assert r.err.count("check its endpoint") == 1
    assert vm(["fleet", "list", "--json"], env).json() == []  # nothing was recorded either


@pytest.mark.parametrize("argv, code, says", [
    (["stop", "dev-box"], 10, "Lambda instances cannot be stopped"),  # a verb the provider lacks
    (["reset", "train-node-01"], 10, "nebius has no reset"),
    (["destroy", "reserved-h100-node", "-y"], 9, "cannot be terminated through the Lambda API"),
])
def test_dry_run_refuses_what_the_action_refuses(vm_env, sims, argv, code, says):
    """What `--dry-run` shows is what the verb then does: a refusal, word for word, and nothing sent by either."""
    before = {n: s.requests.mutating_count() for n, s in sims.items()}
    dry = vm(argv + ["--dry-run"], vm_env)
    real = vm(argv, vm_env)
    assert (dry.code, real.code) == (code, code), (dry.err, real.err)
    assert says in dry.err and dry.err == real.err and "would" not in dry.err
    assert {n: s.requests.mutating_count() for n, s in sims.items()} == before


def test_stop_and_start_are_idempotent_and_a_wrong_state_is_refused_before_sending(vm_env, crusoe_sim):
    started = vm(["start", "gpu-worker-1", "--json"], vm_env)  # seeded running: nothing to do, and it says so
    assert started.code == 0 and "is already running; nothing to do" in started.err, started.err
    assert started.json()["state"] == "running"
    assert crusoe_sim.requests.mutating_count() == 0
    assert vm(["stop", "gpu-worker-1"], vm_env).code == 0
    sent = crusoe_sim.requests.mutating_count()
    for argv in (["stop", "gpu-worker-1"], ["stop", "gpu-worker-1", "--dry-run"]):
        again = vm(argv, vm_env)
        assert again.code == 0 and "already stopped; nothing to do" in again.err, again.err
    dry, real = (vm(["restart", "gpu-worker-1"] + extra, vm_env) for extra in (["--dry-run"], []))
    assert (dry.code, real.code) == (8, 8) and dry.err == real.err, (dry.err, real.err)
    assert "is stopped; restart needs it running" in real.err
    assert crusoe_sim.requests.mutating_count() == sent  # neither the repeats nor the refusals sent anything


def test_a_verb_already_underway_is_waited_for_not_sent_again(vm_env, crusoe_sim):
    """`vm stop` after a stop whose wait was cut short (--no-wait, Ctrl-C): the VM is stopping, so the second
    command sends nothing and only waits (here the stop never completes, so the wait ends in a timeout)."""
    from vmops.sim.common import Fault

    crusoe_sim.faults.add(Fault(endpoint="patch_instance", kind="never_complete", times=1))
    assert vm(["stop", "gpu-worker-1", "--no-wait"], vm_env).code == 0
    sent = crusoe_sim.requests.mutating_count()
    dry = vm(["stop", "gpu-worker-1", "--dry-run"], vm_env)
    assert dry.code == 0 and "is already stopping; nothing to send" in dry.err, dry.err
    waited = vm(["stop", "gpu-worker-1"], {**vm_env, "VMOPS_OP_TIMEOUT": "0.5"})
    assert "is already stopping; waiting until it is stopped" in waited.err, waited.err
    assert waited.code == 11, waited.err  # the stop never completes: the wait times out, as the first one's would
    assert crusoe_sim.requests.mutating_count() == sent
