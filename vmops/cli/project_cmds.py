"""Project tasks for a clone of the repo (`inv test`, `inv demo`, `inv proto`); not part of `vm`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from invoke import task
from invoke.exceptions import Exit

ROOT = Path(__file__).resolve().parents[2]


@task(help={"args": "Extra pytest arguments, e.g. \"-k fleet -x\"", "workers": "pytest-xdist workers (0 = serial)"})
def test(c: Any, args: str = "", workers: int = 2) -> None:
    """Run the whole test suite (the simulators are started by the tests themselves).

    First makes sure the system tools the rendered-notebook test needs are installed (Debian's chromium,
    the widget JavaScript from npm), and the PostgreSQL server the state tests start a throwaway cluster of
    (Debian's postgresql): a fresh machine needs nothing done by hand.
    """
    sys.path.insert(0, str(ROOT))
    from tests.notebooks.render import RenderToolsMissing, ensure_render_tools
    from tests.pgserver import PostgresMissing, ensure_postgres

    try:
        print(f"postgresql: {ensure_postgres()}", flush=True)
    except PostgresMissing as e:  # the PostgreSQL tests will fail and say why; run everything else
        print(f"warning: {e}", file=sys.stderr, flush=True)

    try:
        tools = ensure_render_tools()
        print(f"render tools: {tools.chromium}, {tools.embed_js.name}", flush=True)
    except RenderToolsMissing as e:  # the dashboard test will fail and say why; run everything else
        print(f"warning: {e}", file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider"]
    if workers:
        cmd += ["-n", str(workers)]
    cmd += shlex.split(args)
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc == 5:
        raise Exit("no tests ran", code=5)
    if rc:
        raise Exit(code=rc)


@task(help={"budget": "full (the figures in the README) or ci (what `inv test` runs)",
            "args": "Extra pytest arguments"})
def stress(c: Any, budget: str = "full", args: str = "") -> None:
    """The reliability suite (faults, crashes, hostile input, secrets) with its full trial budget.

    Prints the scoreboard (scenario, trials, passed, VMs leaked, duplicates) and keeps it in
    docs/reliability-latest.md. `inv test` runs the same tests with the smaller `ci` budget.
    """
    if budget not in ("full", "ci"):
        raise Exit("--budget must be full or ci", code=2)
    env = {**os.environ, "VMOPS_STRESS_BUDGET": budget,
           "VMOPS_RELIABILITY_SUMMARY": str(ROOT / "docs" / "reliability-latest.md")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", "-n", "2", "tests/reliability",
           *shlex.split(args)]
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    if rc:
        raise Exit(code=rc)


@task
def proto(c: Any) -> None:
    """Regenerate the Nebius Python stubs in vmops/_gen from proto/ (they are committed)."""
    from vmops import protogen

    protogen.main()


DEMO_STEPS = (
    ("What can the three providers supply now?", ["capacity", "--gpu", "h100:8"]),
    ("Plan a 6-VM H100x8 fleet across providers (dry run: nothing is created)",
     ["fleet", "create", "--gpu", "h100:8", "--count", "6", "--name", "demo", "--dry-run"]),
    ("Create it: members are made in parallel, recorded as they are made", 
     ["fleet", "create", "--gpu", "h100:8", "--count", "6", "--name", "demo"]),
    ("Fleet status, refreshed from the providers", ["fleet", "status", "demo"]),
    ("Everything running at every provider", ["list"]),
    ("Destroy the fleet", ["fleet", "destroy", "demo"]),
    ("Nothing of the fleet is left", ["fleet", "list"]),
)


@task(help={"scale": "Simulator time scale (1 = the reference timings)", "keep": "Leave the simulators running"})
def demo(c: Any, scale: float = 0.25, keep: bool = False) -> None:
    """The main job end to end against the bundled simulators: up, plan, create, show, destroy, down."""
    home = Path(tempfile.mkdtemp(prefix="vmops-demo-"))
    env = {**os.environ, "VMOPS_HOME": str(home)}
    for k in list(env):
        if k.startswith(("VMOPS_CRUSOE_", "VMOPS_LAMBDA_", "VMOPS_NEBIUS_")) or k == "VMOPS_PROVIDERS":
            env.pop(k)
    vm = [sys.executable, "-m", "vmops.cli.main"]

    def run(args: list[str], check: bool = True) -> int:
        print(f"\n$ vm {' '.join(args)}", flush=True)
        rc = subprocess.call(vm + args, env=env)
        if check and rc:
            raise Exit(f"demo step `vm {' '.join(args)}` failed with exit code {rc}", code=rc)
        return rc

    import json as jsonlib

    print(f"# VMOPS_HOME={home} (state and simulator logs)")
    run(["sim", "up", "--scale", str(scale), "--crusoe-port", "0", "--lambda-port", "0", "--nebius-port", "0"])
    state = jsonlib.loads((home / "sim.json").read_text())
    from vmops.catalogue import PROVIDERS

    for name, address in state["addresses"].items():  # point vmops at the ephemeral ports just bound
        env[f"VMOPS_{name.upper()}_{PROVIDERS[name].url_var}"] = address
    env["VMOPS_POLL_INTERVAL"] = str(max(0.05, 0.5 * scale))
    try:
        for title, args in DEMO_STEPS:
            print(f"\n# {title}")
            run(args)
    finally:
        if not keep:
            run(["sim", "down"], check=False)
    print("\n# demo finished: the fleet was planned, created across providers, shown and destroyed")


@task(help={"only": "Comma list of groups: fleet, cli, faults, inventory, state (default: all)",
            "sizes": "Fleet sizes N (default 1,8,32,128,512)", "runs": "Runs per CLI command (median; default 10)",
            "rounds": "Rounds per fleet size (median; default 3)"})
def bench(c: Any, only: str = "", sizes: str = "", runs: int = 0, rounds: int = 0) -> None:
    """The benchmark suite (bench/): fleet latency and calls per VM against N, CLI overhead, inventory and
    state store at scale, each as a ratio to a floor measured in the same run.

    Writes bench/results/latest.json, latest.md and latest.png. The simulators run as a background process
    on ephemeral loopback ports and are stopped at the end, on errors and on Ctrl-C.
    """
    cmd = [sys.executable, "-m", "bench"]
    if only:
        cmd += ["--only", only]
    if sizes:
        cmd += ["--sizes", sizes]
    if runs:
        cmd += ["--runs", str(runs)]
    if rounds:
        cmd += ["--rounds", str(rounds)]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # the benchmark got the Ctrl-C too: let it stop its simulators first
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    if rc:
        raise Exit(code=rc)


TASKS = (test, stress, proto, demo, bench)
