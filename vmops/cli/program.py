"""The invoke side of `vm`: the Program subclass, the command list, and running a parsed command line.

Imported by ``vmops.cli.main.main`` only when a command actually runs (not for `vm --help`, which is served
from ``vmops.cli.help_text``).
"""

from __future__ import annotations

import os
import sys

from invoke import Collection, Program
from invoke.exceptions import Exit, ParseError, UnexpectedExit

from vmops import __version__
from vmops.cli.main import (
    USAGE_EXIT,
    collection_only,
    describe_parse_error,
    fill_optional_positionals,
    help_first,
    rewrite_argv,
)
from vmops.cli.namespace import vm_namespace

HELP_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "help_text.py")

SHOWN_CORE_FLAGS = ("--debug", "--help", "--version", "--print-completion-script")


def command_list(ns: Collection) -> list[tuple[str, str]]:
    """(``"fleet create"``, first docstring line) for every task, top-level first."""
    rows = []
    for name in sorted(ns.tasks):
        rows.append((name, _first_line(ns.tasks[name].__doc__)))
    for cname in sorted(ns.collections):
        coll = ns.collections[cname]
        for name in sorted(coll.tasks):
            rows.append((f"{cname} {name}", _first_line(coll.tasks[name].__doc__)))
    return rows


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


def print_commands(rows: list[tuple[str, str]]) -> None:
    width = max(len(n) for n, _ in rows) + 2
    for n, d in rows:
        print(f"  {n.ljust(width)}{d}")


class VmProgram(Program):
    def print_help(self) -> None:
        print("Usage: vm COMMAND [OPTIONS]      (`vm COMMAND --help` for a command's options)")
        print()
        print("GPU VMs on Crusoe, Lambda and Nebius as one cloud. Commands:")
        print()
        print_commands(command_list(self.namespace))
        print()
        print("Global options:")
        tuples = [t for t in self.initial_context.help_tuples() if any(f in t[0] for f in SHOWN_CORE_FLAGS)]
        self.print_columns(tuples)

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:  # noqa: A002 - invoke's signature
        try:
            self.create_config()
            self.parse_core(argv)
            self.parse_collection()
            self.parse_tasks()
            self.parse_cleanup()
            self.update_config()
            self.execute()
        except (ParseError, ValueError) as e:  # ValueError: a flag value that does not convert (--count x)
            print(f"error: {describe_parse_error(e, argv or sys.argv)}. See `vm COMMAND --help`.", file=sys.stderr)
            if exit:
                sys.exit(USAGE_EXIT)
        except (Exit, UnexpectedExit) as e:
            if isinstance(e, Exit) and e.message:
                print(e.message, file=sys.stderr)
            if exit:
                sys.exit(e.code if isinstance(e, Exit) else e.result.exited)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            if exit:
                sys.exit(130)



def run(argv: list[str]) -> None:
    """Parse ``argv`` (``vm ...``) and run the command, exiting like invoke does."""
    ns = vm_namespace()
    coll = collection_only(argv, set(ns.collections))
    if coll:
        print(f"Usage: vm {coll} COMMAND [OPTIONS]      (`vm {coll} COMMAND --help` for options)\n")
        print_commands([r for r in command_list(ns) if r[0].startswith(coll + " ")])
        sys.exit(0)
    argv = rewrite_argv(argv, set(ns.collections))
    argv = help_first(argv)
    argv = fill_optional_positionals(argv, ns)
    argv[0] = "vm"
    try:
        VmProgram(name="vmops", binary="vm", version=__version__, namespace=ns).run(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # `vm list | head`: the reader left; not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


def render_help() -> str:
    """What `vm --help` prints, rendered by the real program (the source of vmops.cli.help_text)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        VmProgram(name="vmops", binary="vm", version=__version__, namespace=vm_namespace()).run(
            ["vm", "--help"], exit=False)
    return buf.getvalue()


def help_module_source() -> str:
    return ('"""`vm --help`, rendered from the real program by `python -m vmops.cli.program` (generated: do not\n'
            'edit; tests/cli/test_help_fast.py checks it is current)."""\n\n'
            f"TEXT = {render_help()!r}\n")


if __name__ == "__main__":
    with open(HELP_MODULE, "w") as f:
        f.write(help_module_source())
    print(f"wrote {HELP_MODULE}")
