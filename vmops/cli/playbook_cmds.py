"""`vm playbook run NAME [--check]` / `inv playbook.run NAME`: run one of the repo's Ansible playbooks
(playbooks/NAME.yml) with the project's own inventory and ansible.cfg, from this virtualenv.

ansible-core is an optional extra (``pip install -e '.[ansible]'``); nothing here imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import click

from vmops.cli.base import command, group
from vmops.cli.output import note
from vmops.errors import UsageError

#: Where the playbooks live: $VMOPS_PLAYBOOKS, else the repo checkout this package is installed from.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "playbooks"


def playbooks_dir() -> Path:
    env = os.environ.get("VMOPS_PLAYBOOKS")
    return Path(env).expanduser() if env else DEFAULT_DIR


def available(directory: Path | None = None) -> list[str]:
    d = directory or playbooks_dir()
    return sorted(p.stem for p in d.glob("*.yml")) if d.is_dir() else []


def resolve_playbook(name: str, directory: Path | None = None) -> Path:
    """playbooks/NAME.yml for a bare playbook name (``nightly-cleanup`` or ``nightly-cleanup.yml``); no paths."""
    d = directory or playbooks_dir()
    stem = name.strip()
    if stem.endswith(".yml"):
        stem = stem[:-4]
    names = available(d)
    if not stem or "/" in stem or stem.startswith(".") or stem not in names:
        raise UsageError(f"there is no playbook {name!r} in {d}",
                         hint=f"Use one of: {', '.join(names) or '(none found; set VMOPS_PLAYBOOKS)'}")
    return d / f"{stem}.yml"


def ansible_playbook() -> str:
    """The ansible-playbook of this virtualenv (so modules run with the same Python and vmops)."""
    local = Path(sys.executable).parent / "ansible-playbook"
    if local.exists():
        return str(local)
    found = shutil.which("ansible-playbook")
    if found:
        return found
    raise UsageError("ansible-playbook is not installed in this environment",
                     hint="Install the extra: pip install -e '.[ansible]'")


def build_command(playbook: Path, *, check: bool = False, diff: bool = False,
                  extra: Sequence[str] = (), verbose: int = 0) -> list[str]:
    cmd = [ansible_playbook(), str(playbook)]
    if check:
        cmd.append("--check")
    if diff or check:
        cmd.append("--diff")
    for e in extra:
        cmd += ["-e", e]
    if verbose:
        cmd.append("-" + "v" * min(verbose, 4))
    return cmd


def playbook_env(directory: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["ANSIBLE_CONFIG"] = str(directory / "ansible.cfg")
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    return env


def _playbook_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [n for n in available() if n.startswith(incomplete)]


@group("playbook")
def playbook() -> None:
    """The repo's Ansible playbooks, run with the project's inventory and config."""


@command("run", examples=["vm playbook run nightly-cleanup --check   # what would change",
                          "vm playbook run fleet-up -e fleet_name=train -e count=4"])
@click.argument("playbook", metavar="NAME", shell_complete=_playbook_names)
@click.option("--check", is_flag=True, help="Check mode: show what would change and change nothing (implies --diff)")
@click.option("--diff", is_flag=True, help="Show before/after for each change")
@click.option("-e", "--extra", multiple=True, help="Extra variable KEY=VALUE or JSON, as ansible-playbook -e (repeatable)")
@click.option("-v", "--verbose", count=True, help="More ansible output (repeat for more)")
def run(playbook: str, check: bool, diff: bool, extra: tuple[str, ...], verbose: int) -> None:
    """Run playbooks/NAME.yml (try --check first); the project's inventory and config."""
    d = playbooks_dir()
    if playbook.strip() == "":
        raise UsageError("give the playbook NAME: vm playbook run NAME [--check] [-e KEY=VALUE ...]",
                         hint=f"NAME is one of: {', '.join(available(d))}")
    book = resolve_playbook(playbook, d)
    cmd = build_command(book, check=check, diff=diff, extra=extra or (), verbose=verbose)
    note(("check mode: nothing will be changed. " if check else "") + "running " + " ".join(cmd[1:]))
    code = subprocess.call(cmd, env=playbook_env(d), cwd=str(d))
    if code != 0:
        print(f"error: playbook {book.stem} failed (ansible-playbook exit code {code})", file=sys.stderr)
        raise click.exceptions.Exit(code)


@command("list", examples=["vm playbook list",
                           "vm playbook run \"$(vm playbook list | head -1)\" --check"])
def list_() -> None:
    """List the playbooks `playbook run` can run."""
    for n in available():
        print(n)


playbook.add_command(run)
playbook.add_command(list_)
