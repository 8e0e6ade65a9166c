"""`vm sim up|down|status|reset`: the bundled simulators as one background process.

The process (vmops.sim.host) records itself in ``$VMOPS_HOME/sim.json``; every command here reads that
file, so they are idempotent: `up` twice says it is already up, `down` twice says it is already down.
"""

from __future__ import annotations

import json as jsonlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from vmops.cli.base import Number, WholeNumber, command, group
from vmops.cli.output import Column, note, print_json, print_table
from vmops.errors import ProviderUnavailable, UsageError
from vmops.procs import pid_alive

def _home() -> Path:
    from vmops.config import default_home

    home = default_home(os.environ)
    home.mkdir(parents=True, exist_ok=True)
    return home


def _state_file() -> Path:
    return _home() / "sim.json"


def running_state() -> dict[str, Any] | None:
    """The recorded simulator host if its process is alive, else None (and a stale record is removed)."""
    path = _state_file()
    if not path.exists():
        return None
    try:
        state = jsonlib.loads(path.read_text())
    except ValueError:
        path.unlink(missing_ok=True)
        return None
    if not pid_alive(int(state.get("pid", 0))):
        path.unlink(missing_ok=True)
        return None
    return state


def _port_free(port: int) -> bool:
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(address: str) -> bool:
    hostport = address.split("://", 1)[-1].split("/", 1)[0]  # a cloud simulator's URL has a path (/v1alpha5)
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@group("sim")
def sim() -> None:
    """The bundled simulators of the three providers' APIs, as one background process on 127.0.0.1."""


@command("up", examples=[
    "vm sim up                         # ports 8001, 8002, 50051",
    "vm sim up --crusoe-port 0 --lambda-port 0 --nebius-port 0  # prints exports",
    "vm sim up --scale 0.05 --crusoe-port 0 --lambda-port 0 --nebius-port 0 -o json",
    "vm sim up --scenario big.yaml     # capacity overrides and injected faults",
    "vm sim up --dialect cloud         # the real APIs' dialect; prints the env",
])
@click.option("--scale", type=Number(), default=1.0, show_default=True,
              help="Multiply every simulated delay by this (1 = reference timings; 0.05 = 20x faster)")
@click.option("--scenario", default="", help="Scenario file (JSON/YAML) with capacity/seed overrides and faults")
@click.option("--crusoe-port", type=WholeNumber(), default=8001, show_default=True, help="Crusoe port (0 = any free)")
@click.option("--lambda-port", type=WholeNumber(), default=8002, show_default=True, help="Lambda port (0 = any free)")
@click.option("--nebius-port", type=WholeNumber(), default=50051, show_default=True, help="Nebius port (0 = any free)")
@click.option("--dialect", type=click.Choice(["reference", "cloud"], case_sensitive=False), default="reference",
              show_default=True, help="reference: the providers' reference test servers; cloud: their real public "
                                      "APIs (signatures, operations, pages, rate limits); prints the variables to use")
@click.option("-o", "--output", type=click.Choice(["table", "json"], case_sensitive=False), default="table",
              help="Output format")
@click.option("--json", "json", is_flag=True, help="Same as -o json")
def up(scale: float, scenario: str, crusoe_port: int, lambda_port: int, nebius_port: int, dialect: str,
       output: str, json: bool) -> None:
    """Start the three simulators in the background on 127.0.0.1 (idempotent)."""
    state = running_state()
    if state is None:
        ports = {"crusoe": crusoe_port, "lambda": lambda_port, "nebius": nebius_port}
        taken = [f"{n} port {p}" for n, p in ports.items() if not _port_free(p)]
        if taken:
            raise UsageError(
                f"cannot start the simulators: {', '.join(taken)} already in use by another program",
                hint="Stop that program, or pick other ports (e.g. --crusoe-port 0) and point vmops at them "
                     "with VMOPS_CRUSOE_URL / VMOPS_LAMBDA_URL / VMOPS_NEBIUS_ENDPOINT",
            )
        if scenario and not Path(scenario).exists():
            raise UsageError(f"scenario file {scenario} does not exist")
        path = _state_file()
        path.unlink(missing_ok=True)
        log = open(_home() / "sim.log", "ab")
        cmd = [sys.executable, "-m", "vmops.sim.host", "--state-file", str(path), "--scale", str(scale),
               "--crusoe-port", str(crusoe_port), "--lambda-port", str(lambda_port),
               "--nebius-port", str(nebius_port), "--dialect", dialect.lower()]
        if scenario:
            cmd += ["--scenario", str(Path(scenario).resolve())]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while not path.exists():
            if proc.poll() is not None:
                tail = (_home() / "sim.log").read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise ProviderUnavailable(f"the simulators did not start ({tail[0]})",
                                          hint=f"See {_home() / 'sim.log'}")
            if time.monotonic() > deadline:
                proc.terminate()
                raise ProviderUnavailable("the simulators did not start within 30s", hint=f"See {_home() / 'sim.log'}")
            time.sleep(0.05)
        state = jsonlib.loads(path.read_text())
        note(f"simulators up (pid {state['pid']}, time scale {scale:g})")
    else:
        note(f"simulators already up (pid {state['pid']}); `vm sim down` stops them")
    _print_state(state, json or output.lower() == "json")
    env = state.get("client_env") or {}
    if env and not (json or output.lower() == "json"):
        print("# point vmops at these simulators:")
        for k, v in sorted(env.items()):
            print(f"export {k}={v}")


def _print_state(state: dict[str, Any], as_json: bool) -> None:
    rows = [{"provider": n, "address": a, "answers": _answers(a)} for n, a in state["addresses"].items()]
    if as_json:
        print_json({"pid": state["pid"], "control": state["control"], "simulators": rows,
                    "env": state.get("client_env") or {}})
    else:
        print_table(rows, (Column("provider", "SIMULATOR"), Column("address", "ADDRESS"), Column("answers", "UP")))


@command("down", examples=["vm sim down", "vm sim down && vm sim up --scale 0.05   # again, 20x faster"])
def down() -> None:
    """Stop the background simulators (idempotent)."""
    state = running_state()
    if state is None:
        note("simulators are not running")
        return
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    note(f"simulators stopped (pid {pid})")


@command("status", examples=["vm sim status", "vm sim status -o json   # exit code 3 when not running"])
@click.option("-o", "--output", type=click.Choice(["table", "json"], case_sensitive=False), default="table",
              help="Output format")
@click.option("--json", "json", is_flag=True, help="Same as -o json")
def status(output: str, json: bool) -> None:
    """Show the simulators: running or not, where; requests served (exit 3: not running)."""
    json = json or output.lower() == "json"
    state = running_state()
    if state is None:
        if json:
            print_json({"running": False})
        else:
            print("simulators are not running (`vm sim up` starts them)")
        raise click.exceptions.Exit(3)  # like `systemctl status` for an inactive unit
    import urllib.request

    try:
        with urllib.request.urlopen(state["control"] + "/status", timeout=5) as r:
            counts = jsonlib.loads(r.read())
    except OSError:
        counts = {}
    rows = [{"provider": n, "address": a, "answers": _answers(a),
             "requests": counts.get(n, {}).get("requests", {}).get("total"),
             "mutating": counts.get(n, {}).get("requests", {}).get("mutating")}
            for n, a in state["addresses"].items()]
    if json:
        print_json({"running": True, "pid": state["pid"], "control": state["control"], "simulators": rows})
    else:
        print(f"simulators running (pid {state['pid']})")
        print_table(rows, (Column("provider", "SIMULATOR"), Column("address", "ADDRESS"), Column("answers", "UP"),
                           Column("requests", "REQUESTS", ">"), Column("mutating", "MUTATING", ">")))


@command("reset", examples=["vm sim reset", "vm sim reset && vm list   # the seeded VMs only"])
def reset_() -> None:
    """Put every running simulator back to its seed state."""
    import urllib.request

    state = running_state()
    if state is None:
        raise UsageError("simulators are not running", hint="`vm sim up` starts them")
    req = urllib.request.Request(state["control"] + "/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=10).read()
    note("simulators reset to seed state")


for _c in (up, down, status, reset_):
    sim.add_command(_c)
