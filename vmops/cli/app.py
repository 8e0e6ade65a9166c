"""The `vm` command tree: the root group (commands loaded on demand from where vmops.cli.registry says
they live), its global options, and `vm help`, `vm version`, `vm completion`.

tasks.py (invoke) runs the same tree (vmops.cli.inv). Only click and light vmops modules are imported at
module level, and `vm list` imports only the module `list` is in (tests/cli/test_startup.py).
"""

from __future__ import annotations

import importlib
import sys

import click

from vmops import __version__
from vmops.cli import registry
from vmops.cli.base import EXIT_CODES, VmGroup, command, make_output, output_options
from vmops.cli.output import print_json

SHELLS = ("bash", "zsh", "fish")


class LazyGroup(VmGroup):
    """The root: command names and summaries from the registry; a command's module is imported when the
    command is used (or its help shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return registry.top_names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = registry.target_of(self.aliases.get(cmd_name, cmd_name))
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def get_help(self, ctx: click.Context) -> str:
        return registry.root_help(registry.terminal_width()).rstrip("\n")


@click.group("vm", cls=LazyGroup, no_args_is_help=True)
@click.option("-d", "--debug", is_flag=True, help="Log every request (keys redacted) and show tracebacks")
@click.version_option(__version__, "-V", "--version", prog_name="vm", message="%(prog)s %(version)s")
def cli(debug: bool) -> None:
    """GPU VMs on Crusoe, Lambda and Nebius as one cloud (the top help page is vmops.cli.registry's)."""
    from vmops.cli.output import config_warnings

    config_warnings()  # loose key-file permissions, plaintext to a remote host: once, on stderr


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
