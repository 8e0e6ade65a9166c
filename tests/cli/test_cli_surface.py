"""What a person meets before any VM exists: help pages with real positionals and examples, `vm help CMD`,
"did you mean", one meaning per short flag, version, `vm types`, GPU names, completion, config sources,
and the `inv` tasks that run the same commands. Real `vm` and `inv` processes throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import vm

REPO = Path(__file__).resolve().parents[2]
INV = [sys.executable, "-m", "invoke"]


@pytest.fixture
def env(tmp_path):
    return {"VMOPS_HOME": str(tmp_path / "home")}


def test_help_shows_positionals_examples_and_exit_codes(env):
    r = vm(["fleet", "create", "--help"], env)
    assert r.code == 0
    assert r.out.startswith("Usage: vm fleet create [OPTIONS]")
    assert "Examples:" in r.out and "vm fleet create -g h100:8" in r.out
    assert "Exit codes:" in r.out
    for leak in ("--core-opts", "Docstring", "inv", "--pty", "--echo"):
        assert leak not in r.out, leak
    assert vm(["get", "--help"], env).out.startswith("Usage: vm get [OPTIONS] ID")
    assert vm(["fleet", "status", "--help"], env).out.startswith("Usage: vm fleet status [OPTIONS] FLEET")
    assert "--scale NUMBER" in vm(["sim", "up", "--help"], env).out  # a value, not a switch


def test_vm_help_command(env):
    assert vm(["help", "fleet", "create"], env).out == vm(["fleet", "create", "--help"], env).out
    top = vm(["help"], env)
    assert top.code == 0 and "fleet create" in top.out and top.out.startswith("Usage: vm [OPTIONS] COMMAND")
    codes = vm(["help", "exit-codes"], env)
    assert codes.code == 0 and "partial failure" in codes.out and "130" in codes.out
    bad = vm(["help", "fleet", "craete"], env)
    assert bad.code == 2 and "did you mean 'create'" in bad.err


@pytest.mark.parametrize("args,suggestion", [
    (["lst"], "'list'"),
    (["fleet", "craete"], "'create'"),
    (["list", "--jsn"], "'--json'"),
    (["create", "--provder", "crusoe"], "'--provider'"),
    (["typs"], "'types'"),
])
def test_did_you_mean_and_usage_exit_2(env, args, suggestion):
    r = vm(args, env)
    assert r.code == 2, r.err
    assert f"did you mean {suggestion}" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "COMMAND --help" not in r.err and "Traceback" not in r.err


def test_ls_alias_and_no_invoke_flags(env):
    assert vm(["fleet", "create", "--pty", "-g", "h100", "-c", "1"], env).code == 2
    assert "unknown option '--pty'" in vm(["fleet", "create", "--pty"], env).err


def test_short_flags_mean_one_thing_everywhere(env):
    """-p provider, -n name, -o output, -y yes, -q quiet, -g gpu, -c count, -r region, -w wide."""
    from vmops.cli.app import cli

    meaning = {"-p": "--provider", "-n": "--name", "-o": "--output", "-y": "--yes", "-q": "--quiet", "-g": "--gpu",
               "-c": "--count", "-r": "--region", "-w": "--wide", "-h": "--help", "-e": "--extra", "-v": "--verbose",
               "-d": "--debug", "-V": "--version"}
    from vmops.cli.inv import walk

    seen = 0
    for path, cmd in [((), cli), *walk(cli)]:
        for p in cmd.get_params(cmd.make_context(path[-1] if path else "vm", [], resilient_parsing=True)):
            longs = [o for o in p.opts if o.startswith("--")]
            for s in (o for o in p.opts if len(o) == 2):
                seen += 1
                assert s in meaning and meaning[s] in longs, (path, p.opts)
    assert seen > 30


def test_version(env):
    r = vm(["--version"], env)
    assert r.code == 0 and r.out.strip().startswith("vm 0.")
    j = vm(["version", "--json"], env).json()
    assert j["vmops"] and j["state_schema"] >= 1 and "click" in j["dependencies"] and j["python"]


def test_types_lists_shapes_native_names_and_prices(env):
    rows = vm(["types", "-o", "json"], env).json()
    natives = {(r["provider"], r["native_type"]) for r in rows}
    assert ("lambda", "gpu_8x_h100") in natives and ("crusoe", "h100.8x") in natives
    assert all(r["list_price_per_hour"] > 0 and r["price_source"] for r in rows)
    h = vm(["types", "-g", "gpu_8x_h100", "--json"], env).json()
    assert {r["shape"] for r in h} == {"h100:8"} and len(h) == 3
    assert [r["list_price_per_hour"] for r in h] == sorted(r["list_price_per_hour"] for r in h)
    neb = vm(["types", "-p", "nebius", "-o", "csv"], env)
    assert neb.code == 0 and neb.out.splitlines()[0].startswith("shape,") and "lambda" not in neb.out


@pytest.mark.parametrize("args,needle", [
    (["capacity", "-g", "h100x8"], "known shapes: a100:1"),
    (["fleet", "create", "-g", "b200:8", "-c", "1"], "known shapes"),
    (["create", "-p", "crusoe", "-g", "gpu_8x_h100"], "at crusoe write h100:8 or h100.8x"),
    (["create", "-p", "lambda", "-g", "gpu-h200-sxm/8gpu-160vcpu-2048gb"], "lambda does not offer h200:8"),
    (["types", "-g", "nonsense"], "known shapes"),
])
def test_unknown_or_foreign_gpu_names_are_usage_errors(env, args, needle):
    r = vm(args, env)
    assert r.code == 2, (r.code, r.err)
    assert needle in r.err and "vm types" in r.err


def _complete(words: str, env: dict[str, str]) -> list[str]:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}, **env,
            "_VM_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    p = subprocess.run([sys.executable, "-m", "vmops.cli.main"], env=full, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return [ln.split(",", 1)[1] for ln in p.stdout.splitlines() if "," in ln]


def test_completion_scripts_and_values(env, tmp_path):
    for shell in ("bash", "zsh", "fish"):
        r = vm(["completion", shell], env)
        assert r.code == 0 and "_VM_COMPLETE" in r.out
    assert _complete("vm fleet ", env) == ["create", "destroy", "list", "reconcile", "start", "status", "stop"]
    assert "--provider" in _complete("vm create --p", env) and "--pty" not in _complete("vm create --p", env)
    assert _complete("vm create --provider ", env) == ["crusoe", "lambda", "nebius"]
    gpus = _complete("vm create -p lambda --gpu ", env)
    assert "h100:8" in gpus and "gpu_8x_h100" in gpus and "h100.8x" not in gpus
    assert "us-east1" in _complete("vm create -p crusoe -r ", env)
    # fleet names come from the state file
    from vmops.state import Store

    with Store(Path(env["VMOPS_HOME"]) / "state.db") as st:
        st.claim_fleet("train-a", gpu="h100:1", count=1, min_count=1, policy="spread")
    assert _complete("vm fleet status tr", env) == ["train-a"]
    # VM names come from the cache `vm list` keeps (never a provider call per TAB)
    from vmops.cli import cache

    os.environ["VMOPS_HOME"], old = env["VMOPS_HOME"], os.environ.get("VMOPS_HOME")
    try:
        cache.remember([("crusoe", "id-123", "gpu-box")])
    finally:
        os.environ.pop("VMOPS_HOME") if old is None else os.environ.__setitem__("VMOPS_HOME", old)
    assert "gpu-box" in _complete("vm destroy gpu", env)


def test_config_show_says_where_each_setting_came_from(env, tmp_path):
    home = Path(env["VMOPS_HOME"])
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[lambda]\nurl = "http://127.0.0.1:9"\n')
    e = {**env, "VMOPS_CRUSOE_PROJECT": "proj-x"}
    j = vm(["config", "show", "--json"], e).json()
    src = {(r["provider"], r["setting"]): r["source"] for r in j["settings"]}
    assert src[("crusoe", "scope")] == "environment"
    assert src[("lambda", "url")] == "config file"
    assert src[("nebius", "url")] == "default"
    table = vm(["config", "show"], e)
    assert table.code == 0 and "SOURCE" in table.out and "config file" in table.out
    assert "terminate_batch" not in table.out  # tuning settings are shown once set, not at their defaults
    tuned = vm(["config", "show", "--json"], {**e, "VMOPS_LAMBDA_TERMINATE_BATCH": "20"}).json()
    row = next(r for r in tuned["settings"] if (r["provider"], r["setting"]) == ("lambda", "terminate_batch"))
    assert (row["value"], row["source"], row["variable"]) == (20, "environment", "VMOPS_LAMBDA_TERMINATE_BATCH")


def test_real_endpoint_without_key_is_an_error_naming_the_variable(env):
    e = {**env, "VMOPS_LAMBDA_URL": "https://cloud.example.invalid"}
    r = vm(["list", "-p", "lambda"], e)
    assert r.code == 2 and "VMOPS_LAMBDA_API_KEY" in r.err and "lambda-test-key" not in r.err
    assert vm(["fleet", "create", "-g", "h100", "-c", "1", "--dry-run"], e).code == 2  # the planner asks lambda
    other = vm(["list", "-p", "crusoe"], {**e, "VMOPS_CRUSOE_URL": "http://127.0.0.1:9"})
    assert other.code == 12 and "API_KEY" not in other.err  # crusoe is not lambda: its own error
    show = vm(["config", "show", "--json"], e).json()
    row = next(x for x in show["settings"] if x["provider"] == "lambda" and x["setting"] == "api_key")
    assert "VMOPS_LAMBDA_API_KEY" in row["value"]


def _inv(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}, **env}
    return subprocess.run(INV + args, cwd=REPO, env=full, capture_output=True, text=True, timeout=120)


def test_inv_tasks_run_the_same_commands(env):
    lst = _inv(["--list"], env)
    assert lst.returncode == 0
    for t in ("vm.list", "vm.config.show", "fleet.create", "fleet.reconcile", "sim.up", "test", "demo", "bench",
              "stress", "proto", "vm.types"):
        assert t in lst.stdout, t
    types = _inv(["vm.types", "--gpu", "h100:8", "--json"], env)
    assert types.returncode == 0, types.stderr
    assert json.loads(types.stdout) == vm(["types", "-g", "h100:8", "--json"], env).json()
    bad = _inv(["vm.capacity", "--gpu", "h100x8"], env)
    assert bad.returncode == 2 and "known shapes" in bad.stderr
    assert _inv(["fleet.reconcile", "--all", "--json"], env).stdout.strip() == "[]"


def test_inv_output_into_a_closed_pipe_is_quiet(env):
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("VMOPS_")}, **env}
    for args in (["vm.config.show"], ["--list"], ["vm.types"]):
        p = subprocess.run(" ".join([*INV, *args]) + " | head -1", shell=True, cwd=REPO, env=full,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and p.stdout.strip(), (args, p.stderr)
        assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, (args, p.stderr)


@pytest.mark.parametrize("args,line", [
    (["create", "-g", "h100"], "error: missing option --provider. See `vm create --help`."),
    (["fleet", "reconcile"], "error: give a fleet NAME or --all. See `vm fleet reconcile --help`."),
    (["list", "-o", "xml"], "error: invalid value for --output: 'xml' is not one of 'table', 'json', 'csv'. "
                            "See `vm list --help`."),
    (["list", "-p", "amazon"], "error: unknown provider 'amazon'; use one of: crusoe, lambda, nebius. "
                               "See `vm list --help`."),
])
def test_usage_errors_name_the_command(env, args, line):
    r = vm(args, env)
    assert r.code == 2 and r.err.strip() == line


def test_create_dry_run_sends_nothing(vm_env, lambda_sim):
    r = vm(["create", "-p", "lambda", "-g", "h100:8", "-c", "2", "-n", "job", "-r", "us-east", "--dry-run"], vm_env)
    assert r.code == 0, r.err
    assert "would create job-0, job-1 (h100:8, lambda type gpu_8x_h100) at lambda in us-east-1" in r.err
    assert r.out == "" and lambda_sim.requests.mutating_count() == 0
    dead = {**vm_env, "VMOPS_LAMBDA_URL": "http://127.0.0.1:9"}  # nothing listens: the create could not run either
    r = vm(["create", "-p", "lambda", "-g", "h100:8", "-n", "job", "--dry-run"], dead)
    assert r.code == 12 and "would create" not in r.err, r.err


def test_a_name_a_vm_at_the_provider_already_has_is_refused_by_the_create_and_its_dry_run(vm_env, crusoe_sim):
    """A repeated `vm create -n NAME` (after a lost answer, a Ctrl-C, a second terminal) must not make a second
    billing VM that `vm destroy NAME` can no longer tell apart; its dry run says so too."""
    made = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "solo", "--json"], vm_env)
    assert made.code == 0, made.err
    sent = crusoe_sim.requests.mutating_count()
    for extra in ([], ["--dry-run"]):
        again = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "solo"] + extra, vm_env)
        assert again.code == 8, again.err
        assert f"a VM called solo ({made.json()[0]['id']}, running) already exists" in again.err
        assert f"vm destroy {made.json()[0]['id']} -p crusoe" in again.err
    batch = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "solo", "-c", "2"], vm_env)  # solo-0, solo-1: free
    assert batch.code == 0, batch.err
    clash = vm(["create", "-p", "crusoe", "-g", "h100", "-n", "solo", "-c", "3"], vm_env)  # solo-2 is free, not 0/1
    assert clash.code == 8 and "VMs called solo-0" in clash.err and "solo-1" in clash.err, clash.err
    assert crusoe_sim.requests.mutating_count() == sent + 2
    assert vm(["create", "-p", "lambda", "-g", "h100", "-n", "solo"], vm_env).code == 0  # unique per provider


def test_option_without_value_names_the_command(env):
    r = vm(["fleet", "create", "-g"], env)
    assert r.code == 2 and r.err.strip() == "error: -g needs a value. See `vm fleet create --help`."


def test_every_command_has_examples_that_fit_80_columns():
    from vmops.cli.app import cli
    from vmops.cli.base import VmCommand
    from vmops.cli.inv import walk

    commands = [(p, c) for p, c in walk(cli) if isinstance(c, VmCommand)]
    assert len(commands) >= 25
    for path, cmd in commands:
        assert len(cmd.examples) >= 2, path
        assert all(len(e) + 2 <= 80 for e in cmd.examples), path
