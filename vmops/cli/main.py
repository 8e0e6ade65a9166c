"""The `vm` program: parse with click (vmops.cli.app), run, and turn every outcome into one exit code.

This is the only place errors become exit codes (README "Exit codes", vmops.cli.base.EXIT_CODES):

* a click usage error (unknown command/option, bad or missing value) -> one ``error:`` line with a
  "did you mean" where there is one and the command's help pointer, exit 2, nothing sent;
* a ``VmopsError`` -> one ``error:`` line (message and hint), the class's exit code;
* Ctrl-C -> 130; a declined confirmation -> 1; stdout closed by the reader -> 141, quietly;
* anything else is a bug: one line, exit 70, the traceback only with ``--debug``.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

USAGE_EXIT = 2


def debug_requested(argv: list[str]) -> bool:
    """--debug anywhere, or -d among the global flags before the command (a command's -d is its own)."""
    if "--debug" in _options(argv):
        return True
    for a in argv[1:]:
        if not a.startswith("-"):
            return False
        if a == "-d":
            return True
    return False


def _options(argv: list[str]) -> list[str]:
    """The words before a ``--`` (after it, everything is an argument)."""
    return argv[: argv.index("--")] if "--" in argv else argv


def debug_first(argv: list[str]) -> list[str]:
    """``argv`` with a --debug given after the command moved before it, where click takes the global flag:
    "rerun with --debug" is usually done by adding it at the end (`vm fleet create ... --debug`)."""
    opts = _options(argv)
    if "--debug" not in opts[2:]:
        return argv
    return [argv[0], "--debug", *(a for a in opts[1:] if a != "--debug"), *argv[len(opts):]]


def command_words(argv: list[str]) -> str:
    """`vm fleet create` for ``["vm", "fleet", "create", "-x"]``: the command path when click has no context."""
    from vmops.cli import registry

    words = []
    for a in argv[1:3]:
        if a.startswith("-") or not any(e.path.split(" ")[: len(words) + 1] == [*words, a] for e in registry.ENTRIES):
            break
        words.append(a)
    return " ".join(["vm", *words])


def usage_message(e: Any, argv: list[str] | None = None) -> str:
    """One sentence for a click usage error."""
    import click

    from vmops.cli.base import SENTENCE_TYPES, suggest

    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else command_words(argv or ["vm"])
    if isinstance(e, click.NoSuchOption):
        choices = sorted({o for p in (ctx.command.params if ctx else []) for o in (*p.opts, *p.secondary_opts)
                          if o.startswith("-")} | {"--help"})
        text = f"unknown option {e.option_name!r}{suggest(e.option_name, choices)}"
    elif isinstance(e, click.BadOptionUsage):
        m = re.match(r"Option '(.+)' requires an argument", e.message)
        text = f"{m.group(1)} needs a value" if m else e.message.rstrip(".")
    elif isinstance(e, click.MissingParameter):
        param = e.param
        if isinstance(param, click.Argument):
            text = f"missing argument {param.human_readable_name}"
        elif param is not None:
            text = f"missing option {max(param.opts, key=len)}"
        else:
            text = e.format_message().rstrip(".")
    elif isinstance(e, click.BadParameter):
        param = e.param
        hint = param.get_error_hint(ctx).replace("'", "") if (param is not None and ctx is not None) else "a value"
        hint = hint.split(" / ")[-1] if "/" in hint else hint
        if param is not None and isinstance(param.type, SENTENCE_TYPES):
            text = e.message if e.message.startswith("unknown ") else f"{hint} {e.message}"
        else:
            text = f"invalid value for {hint}: {e.message}"
    else:
        text = e.format_message()
    from vmops.cli.output import printable

    return printable(f"error: {text.rstrip('.')}. See `{path} --help`.")


def _exit_code(argv: list[str]) -> int:
    if argv[1:] in (["--help"], ["-h"]):  # the top page needs neither click nor a command module
        from vmops.cli import registry

        sys.stdout.write(registry.root_help(registry.terminal_width()))
        sys.stdout.flush()
        return 0
    import click

    from vmops.cli import base, output
    from vmops.errors import INTERNAL_EXIT, VmopsError

    from vmops.cli.app import cli

    output.set_quiet(False)  # per run (tests and tasks.py run several in one process)
    base.forget_cli_config()
    try:
        try:
            try:
                rv = cli.main(args=debug_first(argv)[1:], prog_name="vm", standalone_mode=False)
            except SystemExit:
                if type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):  # click's own answer to EPIPE
                    raise BrokenPipeError from None
                raise
            sys.stdout.flush()
            return rv if isinstance(rv, int) else 0
        except click.exceptions.NoArgsIsHelpError as e:
            print(e.ctx.get_help())  # `vm` or `vm fleet` alone: the help page, not an error
            return 0
        except click.UsageError as e:
            output.print_traceback()
            print(usage_message(e, argv), file=sys.stderr)
            return USAGE_EXIT
        except click.ClickException as e:  # e.g. a file option that cannot be opened
            print(output.printable(f"error: {e.format_message()}"), file=sys.stderr)
            return e.exit_code
        except click.exceptions.Abort as e:
            if isinstance(e.__cause__, KeyboardInterrupt):
                print("error: interrupted.", file=sys.stderr)
                return 130
            print("error: not confirmed; nothing was done.", file=sys.stderr)
            return 1
        except VmopsError as e:
            output.print_traceback()
            print(output.error_text(e), file=sys.stderr, flush=True)
            return e.exit_code
        except KeyboardInterrupt:
            output.print_traceback()
            print("error: interrupted.", file=sys.stderr)
            return 130
    except BrokenPipeError:
        raise
    except Exception as e:  # a bug: still one line, the traceback only with --debug
        output.print_traceback()
        print(f"error: internal error ({type(e).__name__}: {output.printable(str(e), 300)}). "
              "Rerun with --debug for the traceback and report it.", file=sys.stderr)
        return INTERNAL_EXIT


def run(argv: list[str]) -> int:
    """Run `vm` with ``argv`` (``["vm", ...]``) and return its exit code (tasks.py runs commands this way)."""
    # httpx imports its own command line (rich, pygments) when click and rich are installed; vm never runs
    # it, and it would double the start-up of every command that talks to a provider.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if debug_requested(argv):
        os.environ["VMOPS_DEBUG"] = "1"
    if os.environ.get("VMOPS_DEBUG", "") not in ("", "0"):
        from vmops.cli import debug

        debug.enable()  # request logging and tracebacks, keys redacted
    try:
        code = _exit_code(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # `vm list | head`: the reader left; not an error worth a traceback
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (captured in process)
            pass
        code = 141
    return code


def exit_now(code: int) -> None:
    """End the `vm` process with ``code``, skipping the interpreter's teardown when nothing is left to wait for.

    Tearing down every loaded module costs ~10 ms of each command (more with grpc loaded) and does nothing a
    finished command needs. So when no thread but daemons is left, the standard streams are flushed, the
    exit handlers run (logging's flush among them) and the process ends at once. A command that left a
    non-daemon thread running (a thread pool still working) exits the normal way, which joins it.
    """
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a stream the reader closed: let the normal exit deal with it
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    os._exit(code)


#: Allocations between two young-generation collections while `vm` runs (CPython's default is 700).
GC_THRESHOLD = 50_000


def _quiet_collector() -> None:
    """Collect garbage less often for the life of a `vm` process.

    Loading a command's modules (click, the adapters, grpc) creates ~100,000 objects that live until the
    process ends; at CPython's default threshold the collector walks them over and over while they load,
    ~10 ms of every command (`vm fleet list`: 80 ms -> 70 ms). Cycles are still collected, only in bigger
    batches; a command that runs for minutes (a 512-VM fleet) keeps a bounded heap. Only the program does
    this: a test or a notebook calling ``main(argv)`` keeps its own collector settings."""
    import gc

    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)


def main(argv: list[str] | None = None) -> None:
    """Run `vm`. Ctrl-C at any moment (also while modules are still loading) is exit 130, one line.

    As the program (``argv`` None: the console script) it ends the process at once (``exit_now``); called
    in process with an ``argv`` (tests, embedding) it raises SystemExit like any click program."""
    program = argv is None
    if program:
        _quiet_collector()
    try:
        code = run(list(sys.argv if argv is None else argv))
    except KeyboardInterrupt:
        try:
            print("error: interrupted.", file=sys.stderr, flush=True)
        finally:
            if program:
                os._exit(130)
        raise SystemExit(130) from None
    if program:
        exit_now(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
