"""The `vm` program: invoke's Program with vmops' namespace, `vm fleet create` spelled with a space,
usage errors as exit code 2 with a hint, and no traceback unless --debug.

This module only turns argv around (standard library only); invoke and the commands are imported by
``vmops.cli.program`` when a command runs. `vm --help` prints ``vmops.cli.help_text`` (rendered from the
real program, committed, checked current by a test) without importing invoke at all: invoke's own import
(importlib.metadata, unittest.mock, yaml) was three quarters of `vm --help`.
"""

from __future__ import annotations

import os
import re
import sys

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoke import Collection

USAGE_EXIT = 2
HELP_FLAGS = (["--help"], ["-h"])


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


def main(argv: list[str] | None = None) -> None:
    """Run `vm`. Ctrl-C at any moment (also while modules are still loading) is exit 130, one line."""
    try:
        _main(argv)
    except KeyboardInterrupt:
        try:
            print("error: interrupted.", file=sys.stderr, flush=True)
        finally:
            os._exit(130)


def _main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if debug_requested(argv):
        os.environ["VMOPS_DEBUG"] = "1"
    if os.environ.get("VMOPS_DEBUG", "") not in ("", "0"):
        from vmops.cli import debug

        debug.enable()  # request logging and tracebacks, keys redacted
    if argv[1:] in HELP_FLAGS:
        from vmops.cli.help_text import TEXT

        try:
            sys.stdout.write(TEXT)
            sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        sys.exit(0)
    from vmops.cli.program import run

    run(argv)


def __getattr__(name: str) -> Any:
    """Names that used to live here (the namespace, the Program subclass) load the invoke side on demand."""
    if name == "vm_namespace":
        from vmops.cli.namespace import vm_namespace

        return vm_namespace
    if name in ("VmProgram", "command_list", "print_commands", "SHOWN_CORE_FLAGS"):
        from vmops.cli import program

        return getattr(program, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
