"""`inv playbook.run NAME [--check]` / `vm playbook run NAME`: run one of the repo's Ansible playbooks
(playbooks/NAME.yml) with the project's own inventory and ansible.cfg, from this virtualenv.

ansible-core is an optional extra (``pip install -e '.[ansible]'``); nothing here imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from invoke import Collection, task
from invoke.exceptions import Exit

from vmops.cli.output import command, note
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


@task(
    help={
        "playbook": "Playbook name: " + ", ".join(available()) if available() else "Playbook name (playbooks/NAME.yml)",
        "check": "Check mode: show what would change and change nothing (implies --diff)",
        "diff": "Show before/after for each change",
        "extra": "Extra variable KEY=VALUE or JSON, as ansible-playbook -e (repeatable)",
        "verbose": "More ansible output (repeat for more)",
    },
    positional=["playbook"],
    iterable=["extra"],
    incrementable=["verbose"],
)
@command
def run(c: Any, playbook: str, check: bool = False, diff: bool = False, extra: list[str] | None = None,
        verbose: int = 0) -> None:
    """Run playbooks/NAME.yml with the project's inventory and config (try --check first)."""
    d = playbooks_dir()
    if playbook.strip() in ("", "-h", "--help"):
        raise UsageError("give the playbook NAME: playbook run NAME [--check] [-e KEY=VALUE ...]",
                         hint=f"NAME is one of: {', '.join(available(d))}; full help: `inv --help playbook.run`")
    book = resolve_playbook(playbook, d)
    cmd = build_command(book, check=check, diff=diff, extra=extra or (), verbose=verbose)
    note(("check mode: nothing will be changed. " if check else "") + "running " + " ".join(cmd[1:]))
    code = subprocess.call(cmd, env=playbook_env(d), cwd=str(d))
    if code != 0:
        raise Exit(f"error: playbook {book.stem} failed (ansible-playbook exit code {code})", code=code)


@task(name="list")
@command
def list_(c: Any) -> None:
    """List the playbooks `playbook run` can run."""
    for n in available():
        print(n)


ns = Collection("playbook")
ns.add_task(run)
ns.add_task(list_)
