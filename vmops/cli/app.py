"""The `vm` command tree: the root group, its global options, and `vm help`, `vm version`, `vm completion`.

Every command module registers nothing itself; this module assembles them, so the tree is read in one
place. tasks.py (invoke) runs the same tree (vmops.cli.inv). Only click and light vmops modules are
imported at module level (`vm --help` start-up: tests/cli/test_startup.py).
"""

from __future__ import annotations

import os
import sys

import click

from vmops import __version__
from vmops.cli import config_cmds, cost_cmds, fleet_cmds, playbook_cmds, sim_cmds, vm_cmds
from vmops.cli.base import EXIT_CODES, VmGroup, command, make_output, output_options
from vmops.cli.output import print_json

SHELLS = ("bash", "zsh", "fish")


@click.group("vm", cls=VmGroup, no_args_is_help=True)
@click.option("-d", "--debug", is_flag=True, help="Log every request (keys redacted) and show tracebacks")
@click.version_option(__version__, "-V", "--version", prog_name="vm", message="%(prog)s %(version)s")
def cli(debug: bool) -> None:
    """GPU VMs on Crusoe, Lambda and Nebius as one cloud.

    \b
    Examples:
      vm capacity -g h100:8                      # who can supply 8x H100 now, at what price
      vm fleet create -g h100:8 -c 6 -n train    # a fleet across providers (--dry-run: the plan)
      vm list                                    # every VM at every provider
    """
    from vmops.cli.output import config_warnings

    config_warnings()  # loose key-file permissions, plaintext to a remote host: once, on stderr


for _c in vm_cmds.COMMANDS:
    cli.add_command(_c)
cli.add_command(cost_cmds.cost)
for _g in (fleet_cmds.fleet, sim_cmds.sim, config_cmds.config, playbook_cmds.playbook):
    cli.add_command(_g)


@command("help", examples=["vm help fleet create", "vm help exit-codes"])
@click.argument("words", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Show the help of a command (`vm help fleet create` = `vm fleet create --help`), or the exit codes."""
    if list(words) == ["exit-codes"]:
        width = max(len(str(c)) for c, _ in EXIT_CODES)
        for code, meaning in EXIT_CODES:
            print(f"  {str(code).rjust(width)}  {meaning}")
        return
    cur = ctx.find_root().command.make_context("vm", [], resilient_parsing=True)
    for w in words:
        if not isinstance(cur.command, click.Group):
            raise click.UsageError(f"`{cur.command_path}` has no subcommand {w!r}", cur)
        _, found, _ = cur.command.resolve_command(cur, [w])  # unknown: an error with "did you mean"
        assert found is not None
        cur = found.make_context(found.name, [], parent=cur, resilient_parsing=True)
    print(cur.get_help())


@command("version", examples=["vm version", "vm version -o json"])
@output_options(csv=False)
def version(output: str, as_json: bool, wide: bool) -> None:
    """Show the version; -o json adds the libraries and the state file schema."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from vmops.state.migrations import SCHEMA_VERSION

    deps = {}
    for dist in ("click", "rich", "httpx", "grpcio", "protobuf", "sqlite-utils", "invoke"):
        try:
            deps[dist] = dist_version(dist)
        except PackageNotFoundError:
            deps[dist] = None
    info = {"vmops": __version__, "python": sys.version.split()[0], "state_schema": SCHEMA_VERSION,
            "dependencies": deps}
    if make_output(output, as_json, wide).json:
        print_json(info)
        return
    print(f"vm {__version__} (python {info['python']}, state schema {SCHEMA_VERSION})")
    for k, v in deps.items():
        print(f"  {k} {v or '(not installed)'}")


@command("completion", examples=[
    'eval "$(vm completion bash)"                            # in ~/.bashrc',
    'eval "$(vm completion zsh)"                             # in ~/.zshrc',
    "vm completion fish > ~/.config/fish/completions/vm.fish",
])
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script (commands, options, providers, GPU shapes, regions, fleets, VMs)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    comp = cls(ctx.find_root().command, {}, "vm", "_VM_COMPLETE")
    print(comp.source())


for _c in (help_, version, completion):
    cli.add_command(_c)


def complete_env() -> bool:
    """True when the shell asks for completions (``_VM_COMPLETE`` set by the completion script)."""
    return "_VM_COMPLETE" in os.environ
