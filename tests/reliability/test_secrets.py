"""API keys never leave the places they are read from.

Every `vm` command (single VMs, fleets, cost, config, sim, playbook; with and without --debug; with keys
the simulators accept and with wrong "CANARY-<provider>-<random>" keys; against dead endpoints; with keys
that cannot be sent at all) runs as a real subprocess, and everything written is scanned for every key:
stdout, stderr, the state database (and its -wal/-shm), every other file under VMOPS_HOME (sim.log,
locks, ...), and the outputs of the executed notebooks. The config file and the key file must be
byte-identical after every command (nothing writes a key back).

The simulators accept only their contract test keys, so the success paths use the contract keys that are
not vmops' defaults (``*-test-key-002``) as canaries, each read from a different source (a key in
config.toml, api_key_file, api_key_env); the failure paths use random CANARY keys from the environment.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import nbformat
import pytest

from tests.cli.helpers import Result, vm
from tests.fleet.conftest import dead_url
from tests.reliability.summary import record

ACCEPTED = {"crusoe": "crusoe-test-key-002", "lambda": "lambda-test-key-002", "nebius": "nebius-test-key-002"}
ROOT = Path(__file__).resolve().parents[2]


def wrong_keys() -> dict[str, str]:
    return {p: f"CANARY-{p}-{secrets.token_hex(8)}" for p in ACCEPTED}


def fragments(key: str) -> list[str]:
    """What counts as a leak: the key, or any 8+ character piece of it beyond the 3 characters that
    ``Secret.masked()`` shows on purpose."""
    body = key[:-3]
    return [key, body[-12:], body[:12]] if len(body) >= 12 else [key]


@dataclass
class Scan:
    """Collects every place a key showed up (``leaks``) across all the commands run."""

    keys: list[str]
    home: Path
    protected: list[Path]  # config.toml and key files: must never change
    leaks: list[str] = field(default_factory=list)
    commands: int = 0
    clean: int = 0
    _hashes: dict[Path, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._hashes = {p: _sha(p) for p in self.protected}

    def text(self, where: str, text: str) -> bool:
        found = [f"{where}: contains {frag[:6]}..." for k in self.keys for frag in fragments(k) if frag in text]
        self.leaks.extend(found)
        return not found

    def files(self, where: str) -> bool:
        ok = True
        for path in sorted(self.home.rglob("*")):
            if not path.is_file() or path in self.protected:
                continue
            data = path.read_bytes()
            for k in self.keys:
                for frag in fragments(k):
                    for enc in (frag.encode(), frag.encode("utf-16-le")):
                        if enc in data:
                            self.leaks.append(f"{where}: {path.relative_to(self.home)} holds {frag[:6]}...")
                            ok = False
        for p, h in self._hashes.items():
            if _sha(p) != h:
                self.leaks.append(f"{where}: {p.name} was rewritten")
                ok = False
        return ok

    def run(self, args: list[str], env: Mapping[str, str], expect: int | tuple[int, ...] | None = 0,
            timeout: float = 180) -> Result:
        r = vm(args, env, timeout=timeout)
        label = "vm " + " ".join(args)
        ok = self.text(f"{label} stdout", r.out) & self.text(f"{label} stderr", r.err) & self.files(label)
        if expect is not None:
            codes = (expect,) if isinstance(expect, int) else expect
            assert r.code in codes, f"{label}: exit {r.code}\n{r.out}\n{r.err}"
        assert "Traceback" not in r.err or "--debug" in args, f"{label}:\n{r.err}"
        self.commands += 1
        self.clean += ok
        return r


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def keyed_env(vm_env, tmp_path) -> tuple[dict[str, str], list[Path]]:
    """vm_env with the accepted canaries from three kinds of source: a key in config.toml (crusoe),
    api_key_file (lambda), api_key_env (nebius). Returns (env, files that hold keys)."""
    home = Path(vm_env["VMOPS_HOME"])
    key_file = tmp_path / "lambda.key"
    key_file.write_text(ACCEPTED["lambda"] + "\n")
    key_file.chmod(0o600)
    cfg = home / "config.toml"
    cfg.write_text(f'[crusoe]\napi_key = "{ACCEPTED["crusoe"]}"\n'
                   f'[lambda]\napi_key_file = "{key_file}"\n'
                   f'[nebius]\napi_key_env = "CANARY_NEBIUS_KEY"\n')
    cfg.chmod(0o600)
    env = {**vm_env, "CANARY_NEBIUS_KEY": ACCEPTED["nebius"]}
    return env, [cfg, key_file]


def test_no_command_leaks_a_key(sims, keyed_env, tmp_path):
    env, protected = keyed_env
    home = Path(env["VMOPS_HOME"])
    wrong = wrong_keys()
    scan = Scan(keys=[*ACCEPTED.values(), *wrong.values()], home=home, protected=protected)

    # --- success paths: the accepted keys from config.toml / key file / named variable ---------------------
    shown = scan.run(["config", "show", "--json"], env).json()
    assert {n: p["sources"]["api_key"] for n, p in shown["providers"].items()} == {
        "crusoe": "file", "lambda": f"key-file:{protected[1]}", "nebius": "env:CANARY_NEBIUS_KEY"}
    assert shown["warnings"] == []
    scan.run(["config", "show"], env)
    scan.run(["list"], env)
    scan.run(["list", "--json"], env)
    scan.run(["list", "--output", "csv"], env)
    scan.run(["capacity", "--gpu", "h100:8"], env)
    scan.run(["reservations"], env)
    made = {}
    for provider, gpu in (("crusoe", "h100"), ("lambda", "h100"), ("nebius", "h100")):
        made[provider] = scan.run(["create", "--provider", provider, "--gpu", gpu, "--name", f"canary-{provider}",
                                   "--json"], env).json()[0]["id"]
    scan.run(["get", made["crusoe"], "--provider", "crusoe"], env)
    scan.run(["stop", made["crusoe"], "--provider", "crusoe"], env)
    scan.run(["start", made["crusoe"], "--provider", "crusoe"], env)
    scan.run(["reboot", made["crusoe"], "--provider", "crusoe"], env)
    scan.run(["restart", made["lambda"], "--provider", "lambda"], env)
    scan.run(["--debug", "get", made["nebius"], "--provider", "nebius"], env)
    scan.run(["cost"], env)
    scan.run(["cost", "--by", "provider,fleet", "--json"], env)
    scan.run(["fleet", "create", "--gpu", "h100", "--count", "3", "--name", "canary", "--dry-run"], env)
    scan.run(["fleet", "create", "--gpu", "h100", "--count", "3", "--name", "canary"], env)
    scan.run(["fleet", "list"], env)
    scan.run(["fleet", "status", "canary", "--json"], env)
    scan.run(["fleet", "reconcile", "canary"], env)
    scan.run(["fleet", "reconcile", "--all"], env)
    debug = scan.run(["--debug", "list"], env)
    assert "Authorization" in debug.err and "****" in debug.err, "--debug logs requests (redacted)"
    scan.run(["--debug", "fleet", "status", "canary"], env)
    scan.run(["fleet", "destroy", "canary"], env)
    for provider, iid in made.items():
        scan.run(["destroy", iid, "--provider", provider], env)
    scan.run(["playbook", "list"], env)

    # --- failure paths: wrong CANARY keys (env beats the file), dead endpoints, unsendable keys ------------
    bad = {**env, **{f"VMOPS_{p.upper()}_API_KEY": k for p, k in wrong.items()}}
    scan.run(["list"], bad, expect=3)
    dbg = scan.run(["--debug", "list"], bad, expect=3)
    assert "Traceback" in dbg.err and "AuthError" in dbg.err, dbg.err  # --debug: the traceback, same exit code
    scan.run(["get", "i-nope", "--provider", "crusoe"], bad, expect=3)
    scan.run(["create", "--provider", "lambda", "--gpu", "h100"], bad, expect=3)
    scan.run(["--debug", "create", "--provider", "nebius", "--gpu", "h100"], bad, expect=3)
    scan.run(["fleet", "create", "--gpu", "h100", "--count", "2", "--name", "badkeys"], bad, expect=(3, 7, 14))
    scan.run(["fleet", "destroy", "badkeys"], bad, expect=None)
    scan.run(["cost"], bad, expect=(3,))
    scan.run(["config", "show", "--json"], bad)
    dead = {**bad, "VMOPS_CRUSOE_URL": dead_url(), "VMOPS_LAMBDA_URL": dead_url(),
            "VMOPS_NEBIUS_ENDPOINT": dead_url("grpc"), "VMOPS_OP_TIMEOUT": "5"}
    scan.run(["list"], dead, expect=12)
    scan.run(["--debug", "list"], dead, expect=12)
    scan.run(["create", "--provider", "crusoe", "--gpu", "h100"], dead, expect=12)
    unsendable = {**env, **{f"VMOPS_{p.upper()}_API_KEY": k + suffix
                            for (p, k), suffix in zip(wrong.items(), ("\u00e9", "-\u2603", "\x01x"))}}
    r = scan.run(["list"], unsendable, expect=3)
    assert r.err.count("cannot be sent in a request header") == 3, r.err
    scan.run(["--debug", "list"], unsendable, expect=3)

    # --- the simulator host writes sim.log/sim.json under VMOPS_HOME -----------------------------------------
    ports = ["--crusoe-port", "0", "--lambda-port", "0", "--nebius-port", "0"]
    try:
        scan.run(["sim", "up", "--scale", "0.05", *ports], env)
        scan.run(["sim", "status"], env)
        scan.run(["sim", "reset"], env)
    finally:
        scan.run(["sim", "down"], env)

    # the state database and everything else under VMOPS_HOME, once more at the end
    assert (home / "state.db").exists()
    scan.files("final")
    nothing_left = [i for i in vm(["list", "--json"], env).json() if i["name"].startswith(("canary", "vmops-"))]
    record("secrets: every vm command scanned for keys", trials=scan.commands, passed=scan.clean,
           leaked=len(nothing_left), detail="; ".join(scan.leaks[:3]))
    assert not scan.leaks, scan.leaks
    assert not nothing_left, nothing_left
    assert scan.commands >= 45


DRIVE = """
dash.gpu.value = "h100:1"
dash.count.value = 2
dash.name.value = "nbcanary"
dash.plan_button.click()
dash.create_button.click()
print(dash.message.value, dash.last_error)
if dash.fleet_select.value == "nbcanary":
    dash.destroy_button.click()
    dash.confirm_button.click()
print(dash.message.value, dash.last_error)
"""


def test_notebook_outputs_hold_no_key(sims, keyed_env, tmp_path):
    """Both notebooks, the dashboard driven through plan, create and destroy, with the accepted keys and with
    wrong ones: cell outputs, tracebacks, widget state and the saved notebook hold no key."""
    from tests.notebooks.test_notebooks import NOTEBOOKS, Kernel, kernel_env, open_kernel, text_of

    env, protected = keyed_env
    home = Path(env["VMOPS_HOME"])
    wrong = wrong_keys()
    scan = Scan(keys=[*ACCEPTED.values(), *wrong.values()], home=home, protected=protected)
    runs = {"accepted keys": env,
            "wrong keys": {**env, **{f"VMOPS_{p.upper()}_API_KEY": k for p, k in wrong.items()}}}
    for label, run_env in runs.items():
        for name in ("inventory.ipynb", "fleet_dashboard.ipynb"):
            nb, client = open_kernel(NOTEBOOKS / name, tmp_path)
            client.allow_errors = True
            with client.setup_kernel(env=kernel_env(run_env)):
                k = Kernel(nb, client)
                k.run_all()
                if name == "fleet_dashboard.ipynb":
                    k.run(DRIVE)
                client.set_widgets_metadata()  # the dashboard's widget state (its HTML tables) goes in the file
            text = "\n".join(text_of(c) for c in nb.cells if c.cell_type == "code")
            saved = nbformat.writes(nb)
            assert text.strip(), f"{name} produced no output"
            scan.commands += 1
            scan.clean += scan.text(f"{name} ({label}) outputs", text) & scan.text(f"{name} ({label}) saved", saved)
            scan.files(f"{name} ({label})")
            if label == "accepted keys":
                assert "providers: crusoe, lambda, nebius" in text or name != "inventory.ipynb", text[:2000]
                assert "is destroyed" in text or name != "fleet_dashboard.ipynb", text[-2000:]
            else:  # the failures are shown (so the scan did see error text), without the keys
                assert "API key" in saved or "Invalid" in saved or "rejected" in saved, saved[:3000]
    left = [i for i in vm(["list", "--json"], env).json() if i["name"].startswith("vmops-nbcanary")]
    record("secrets: notebook outputs scanned for keys", trials=scan.commands, passed=scan.clean,
           leaked=len(left), detail="; ".join(scan.leaks[:3]))
    assert not scan.leaks, scan.leaks
    assert not left, left


# ---- the config file and key files: 0600, warnings, nothing written back ---------------------------------


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_config_init_writes_a_0600_template_without_keys(tmp_path):
    home = tmp_path / "fresh" / "home"
    env = {"VMOPS_HOME": str(home)}
    old = os.umask(0o022)
    try:
        r = vm(["config", "init"], env)
    finally:
        os.umask(old)
    assert r.code == 0, r.err
    cfg = home / "config.toml"
    assert _mode(cfg) == 0o600 and _mode(home) == 0o700
    text = cfg.read_text()
    assert "api_key =" not in text and "api_key_env" in text and "api_key_file" in text
    import tomllib

    tomllib.loads(text)  # a valid file: every setting commented out
    cfg.write_text(text + '\n# edited by hand\n')
    before = cfg.read_bytes()
    again = vm(["config", "init"], env)
    assert again.code == 8 and "already exists" in again.err
    assert cfg.read_bytes() == before
    shown = vm(["config", "show", "--json"], env)
    assert shown.code == 0 and "warning" not in shown.err
    record("config init: 0600 template, never overwritten", passed=True)


def test_loose_permissions_warn_once(sims, vm_env, tmp_path):
    home = Path(vm_env["VMOPS_HOME"])
    key_file = tmp_path / "crusoe.key"
    key_file.write_text(ACCEPTED["crusoe"])
    key_file.chmod(0o644)
    cfg = home / "config.toml"
    cfg.write_text(f'[crusoe]\napi_key_file = "{key_file}"\n[lambda]\napi_key = "{ACCEPTED["lambda"]}"\n')
    cfg.chmod(0o640)
    r = vm(["list"], vm_env)
    assert r.code == 0, r.err
    warnings = [ln for ln in r.err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 2, r.err
    assert any(str(cfg) in w and "0640" in w and "chmod 600" in w for w in warnings), warnings
    assert any(str(key_file) in w and "0644" in w for w in warnings), warnings
    assert not any(k in r.err + r.out for k in ACCEPTED.values())
    cfg.chmod(0o600)
    key_file.chmod(0o600)
    quiet = vm(["list"], vm_env)
    assert quiet.code == 0 and "warning" not in quiet.err, quiet.err
    # a 0644 config file without keys is fine
    cfg.write_text('[crusoe]\napi_key_env = "SOME_VAR"\n')
    cfg.chmod(0o644)
    assert "warning" not in vm(["config", "show"], vm_env).err
    record("loose permissions on key-holding files warn once", passed=True)


def test_unreadable_key_file_is_a_usage_error_naming_the_path(vm_env, tmp_path):
    missing = tmp_path / "missing.key"
    r = vm(["list"], {**vm_env, "VMOPS_CRUSOE_API_KEY_FILE": str(missing)})
    assert r.code == 2 and str(missing) in r.err and "cannot be read" in r.err, r.err
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    r = vm(["list"], {**vm_env, "VMOPS_CRUSOE_API_KEY_FILE": str(empty)})
    assert r.code == 2 and "is empty" in r.err, r.err


def test_redaction_of_debug_text():
    from vmops.config import Secret, redact

    key = f"CANARY-x-{secrets.token_hex(6)}"
    Secret(key).reveal()
    text = redact(f"boom {key}; Authorization: Bearer abc123; {{'authorization': 'Bearer zz9'}} Bearer q-1")
    assert key not in text and "abc123" not in text and "zz9" not in text and "q-1" not in text
    assert text.count("****") == 4


DEBUG_SNIPPET = r"""
import logging, sys, threading
from vmops.cli import debug
from vmops.config import Secret
Secret(sys.argv[1]).reveal()
debug.enable()
t = threading.Thread(target=lambda: (_ for _ in ()).throw(RuntimeError("thread saw " + sys.argv[1])))
t.start(); t.join()
logging.getLogger("vmops.test").debug("headers %s", {"Authorization": "Bearer " + sys.argv[1]})
raise RuntimeError("main saw " + sys.argv[1])
"""


def test_debug_logs_and_tracebacks_are_redacted():
    import subprocess
    import sys

    key = f"CANARY-debug-{secrets.token_hex(8)}"
    p = subprocess.run([sys.executable, "-c", DEBUG_SNIPPET, key], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "thread saw ****" in p.stderr and "main saw ****" in p.stderr and "Bearer ****" in p.stderr, p.stderr
    assert not any(frag in p.stderr + p.stdout for frag in fragments(key)), p.stderr
