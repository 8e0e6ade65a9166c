"""The `vm` program: invoke's Program with vmops' namespace, `vm fleet create` spelled with a space,
usage errors as exit code 2 with a hint, and no traceback unless --debug."""

from __future__ import annotations

import os
import re
import sys

from invoke import Collection, Program
from invoke.exceptions import Exit, ParseError, UnexpectedExit

from vmops import __version__
from vmops.cli.namespace import vm_namespace

USAGE_EXIT = 2


def describe_parse_error(e: Exception, argv: list[str]) -> str:
    """A readable sentence for invoke's parse errors (``--count x`` -> "--count takes a number, not 'x'")."""
    text = str(e).rstrip(".!")
    m = re.search(r"invalid literal for (int|float)\(\)[^:]*: '(.*)'", text)
    if m:
        kind = "a whole number" if m.group(1) == "int" else "a number"
        bad = m.group(2)
        for i, tok in enumerate(argv):
            if tok.startswith("-") and "=" in tok and tok.split("=", 1)[1] == bad:
                return f"{tok.split('=', 1)[0]} takes {kind}, not {bad!r}"
            if tok == bad and i > 0 and argv[i - 1].startswith("-"):
                return f"{argv[i - 1]} takes {kind}, not {bad!r}"
        return f"a flag takes {kind}, not {bad!r}"
    m = re.match(r"'(.+)' did not receive required positional arguments: (.+)", text)
    if m:
        args = " and ".join(a.strip(" '").upper() for a in m.group(2).split(","))
        return f"`vm {m.group(1).replace('.', ' ')}` needs {args}"
    m = re.match(r"No idea what '(.*)' is", text)
    if m:
        return f"unknown command or argument {m.group(1)!r}"
    return text


def debug_requested(argv: list[str]) -> bool:
    """--debug anywhere, or -d among the global flags before the command (a command's -d is its own flag)."""
    if "--debug" in argv:
        return True
    for a in argv[1:]:
        if not a.startswith("-"):
            return False
        if a == "-d":
            return True
    return False


def fill_optional_positionals(argv: list[str], ns: Collection) -> list[str]:
    """invoke requires every positional argument; a task may mark some optional (``optional_positionals``),
    and when the user gives none, it receives an empty value (`vm fleet reconcile --all`)."""
    if len(argv) < 2 or argv[1].startswith("-"):
        return argv
    try:
        t = ns[argv[1]]
    except (KeyError, ValueError):
        return argv
    optional = getattr(t, "optional_positionals", ())
    if optional and not any(not a.startswith("-") for a in argv[2:]):
        return argv + [f"--{name.replace('_', '-')}=" for name in optional]
    return argv


def help_first(argv: list[str]) -> list[str]:
    """`vm get --help` -> `vm --help get`: otherwise a task with a positional argument takes "--help" as it."""
    if len(argv) > 2 and not argv[1].startswith("-") and any(a in ("-h", "--help") for a in argv[2:]):
        return [argv[0], "--help", argv[1]]
    return argv


def collection_only(argv: list[str], collections: set[str]) -> str | None:
    """The collection name when argv is just `vm fleet` or `vm fleet --help`."""
    rest = [a for a in argv[1:] if a not in ("-h", "--help")]
    return rest[0] if len(rest) == 1 and rest[0] in collections else None


def rewrite_argv(argv: list[str], collections: set[str]) -> list[str]:
    """`vm fleet create ...` -> `vm fleet.create ...`; `vm fleet` / `vm fleet --help` -> `vm --list fleet`."""
    args = list(argv)
    # skip core flags before the command
    i = 1
    while i < len(args) and args[i].startswith("-"):
        i += 1
    if i < len(args) and args[i] in collections:
        if i + 1 < len(args) and not args[i + 1].startswith("-"):
            args[i : i + 2] = [f"{args[i]}.{args[i + 1]}"]
        else:
            rest = args[i + 1 :]
            args[i:] = ["--list", args[i]] + [a for a in rest if a not in ("-h", "--help")]
    return args


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


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if debug_requested(argv):
        os.environ["VMOPS_DEBUG"] = "1"
    if os.environ.get("VMOPS_DEBUG", "") not in ("", "0"):
        from vmops.cli import debug

        debug.enable()  # request logging and tracebacks, keys redacted
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


if __name__ == "__main__":
    main()
