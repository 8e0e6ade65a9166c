"""Where each `vm` command lives, with its one-line summary: the source of the top-level help and of the
command lists, so that `vm --help` needs neither click nor the command modules, and `vm list` loads only
the module `list` is in (vmops.cli.app.LazyGroup). Standard library only.

A test (tests/cli/test_startup.py) loads every entry and checks that the tree and this table agree.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):  # (a NamedTuple, not a dataclass: dataclasses imports inspect, ~8 ms of `vm --help`)
    path: str  # "list", "fleet create"
    target: str  # "module:attribute" of the click command (for a group's subcommand: of the group)
    summary: str


_VM, _FLEET, _SIM = "vmops.cli.vm_cmds", "vmops.cli.fleet_cmds:fleet", "vmops.cli.sim_cmds:sim"
_CONFIG, _PLAYBOOK, _APP = "vmops.cli.config_cmds:config", "vmops.cli.playbook_cmds:playbook", "vmops.cli.app"
_STATE = "vmops.cli.state_cmds:state"

ENTRIES: tuple[Entry, ...] = (
    Entry("capacity", f"{_VM}:capacity", "What each provider can supply now, per region and price"),
    Entry("completion", f"{_APP}:completion", "Print the shell completion script (bash, zsh, fish)"),
    Entry("config init", _CONFIG, "Write a commented config.toml template (no keys)"),
    Entry("config show", _CONFIG, "Show the configuration and where each setting came from"),
    Entry("cost", "vmops.cli.cost_cmds:cost", "What the VMs that bill now cost per hour, day, month"),
    Entry("create", f"{_VM}:create", "Create VMs of one GPU shape at one provider"),
    Entry("destroy", f"{_VM}:destroy", "Destroy a VM (by ID or name; already gone = success)"),
    Entry("doctor", "vmops.cli.doctor_cmds:doctor", "Check each provider's endpoint and credentials"),
    Entry("fleet create", _FLEET, "Create a fleet across providers (--dry-run: the plan)"),
    Entry("fleet destroy", _FLEET, "Destroy every VM of a fleet (shown first; --dry-run)"),
    Entry("fleet list", _FLEET, "List the fleets on record (--refresh: ask the providers)"),
    Entry("fleet reconcile", _FLEET, "Bring a fleet's record in line with the providers"),
    Entry("fleet start", _FLEET, "Start every stopped member of a fleet (shown first)"),
    Entry("fleet status", _FLEET, "Show a fleet and its members, refreshed"),
    Entry("fleet stop", _FLEET, "Stop every running member of a fleet (shown first)"),
    Entry("get", f"{_VM}:get", "Show one VM (by ID, or by name when unambiguous)"),
    Entry("help", f"{_APP}:help_", "Show the help of a command, or the exit codes"),
    Entry("list", f"{_VM}:list_", "List VMs at every provider"),
    Entry("playbook list", _PLAYBOOK, "List the playbooks `playbook run` can run"),
    Entry("playbook run", _PLAYBOOK, "Run an Ansible playbook from playbooks/ (try --check)"),
    Entry("reboot", f"{_VM}:reboot", "Reboot a running VM (soft)"),
    Entry("reservations", f"{_VM}:reservations", "List reserved capacity at each provider"),
    Entry("reset", f"{_VM}:reset", "Reset a running VM (hard)"),
    Entry("restart", f"{_VM}:restart", "Restart a running VM (stop + start)"),
    Entry("sim down", _SIM, "Stop the background simulators"),
    Entry("sim reset", _SIM, "Put every simulator back to its seed state"),
    Entry("sim status", _SIM, "Show whether the simulators run, and where"),
    Entry("sim up", _SIM, "Start the three simulators in the background"),
    Entry("start", f"{_VM}:start", "Start a stopped VM"),
    Entry("state check", _STATE, "Compare the record with the providers (exit 14: differ)"),
    Entry("state export", _STATE, "Copy the fleet records to another store"),
    Entry("state import", _STATE, "Copy another store's fleet records into this one"),
    Entry("stop", f"{_VM}:stop", "Stop a VM"),
    Entry("types", f"{_VM}:types", "GPU shapes, each provider's names for them, list prices"),
    Entry("version", f"{_APP}:version", "Show the version (-o json: libraries, state schema)"),
)

#: Group name -> its one-line summary (`vm --help` lists the group's commands, not the group).
GROUPS: dict[str, str] = {
    "config": "Show or start the configuration",
    "fleet": "Fleets: VMs of one GPU shape spread over providers, kept in the state file",
    "playbook": "The repo's Ansible playbooks",
    "sim": "The bundled simulators of the three providers' APIs",
    "state": "The state store: import, export, check against the providers",
}

#: The root's own options as `vm --help` shows them (a test compares them with the click root).
ROOT_OPTIONS: tuple[tuple[str, str], ...] = (
    ("-d, --debug", "Log every request (keys redacted) and show tracebacks"),
    ("-V, --version", "Show the version and exit."),
    ("-h, --help", "Show this message and exit."),
)

ROOT_HELP = """GPU VMs on Crusoe, Lambda and Nebius as one cloud."""
ROOT_EXAMPLES = (
    "vm capacity -g h100:8                      # who can supply 8x H100 now, at what price",
    "vm fleet create -g h100:8 -c 6 -n train    # a fleet across providers (--dry-run: the plan)",
    "vm list                                    # every VM at every provider",
)
EXIT_CODES_LINE = ("Exit codes: 0 ok, 2 usage, 3 auth, 5 not found, 7 no capacity, 8 wrong state, "
                   "12 provider down, 14 partial; all: `vm help exit-codes`.")


def top_names() -> list[str]:
    return sorted({e.path.split(" ")[0] for e in ENTRIES})


def target_of(name: str) -> str | None:
    """The ``module:attribute`` of top-level command or group ``name``."""
    return next((e.target for e in ENTRIES if e.path.split(" ")[0] == name), None)


def summary_of(path: str) -> str | None:
    return next((e.summary for e in ENTRIES if e.path == path), GROUPS.get(path))


def _wrap(text: str, width: int, indent: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=max(20, width - indent)) or [""]


def _dl(rows: list[tuple[str, str]], width: int) -> list[str]:
    first = min(max(len(a) for a, _ in rows), 30) + 2
    out = []
    for a, b in rows:
        lines = _wrap(b, width, 2 + first)
        if len(a) + 2 > first:
            out.append(f"  {a}")
            out.extend(" " * (2 + first) + ln for ln in lines)
        else:
            out.append(f"  {a.ljust(first)}{lines[0]}")
            out.extend(" " * (2 + first) + ln for ln in lines[1:])
    return out


def terminal_width(limit: int = 100) -> int:
    import os
    import sys

    try:
        return min(limit, os.get_terminal_size(sys.stdout.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        return 80


def root_help(width: int = 80) -> str:
    """`vm --help`: usage, description, examples, options, every command (groups' commands spelled out)."""
    lines = ["Usage: vm [OPTIONS] COMMAND [ARGS]...", "", f"  {ROOT_HELP}", "", "Examples:"]
    lines += [f"  {e}" for e in ROOT_EXAMPLES]
    lines += ["", "Options:"] + _dl(list(ROOT_OPTIONS), width)
    lines += ["", "Commands:"] + _dl([(e.path, e.summary) for e in ENTRIES], width)
    lines += [""] + _wrap("`vm COMMAND --help` (or `vm help COMMAND`) shows a command's options and examples.",
                          width, 0)
    lines += _wrap(EXIT_CODES_LINE, width, 0)
    return "\n".join(lines) + "\n"
