"""The pieces every `vm` command is built from: the command and group classes (help with examples and exit
codes, "did you mean" for commands), the shared options (one meaning per short flag), and the value types
that check a provider, a GPU shape or a count before anything is sent.

Short flags, documented once (README "Using it"): ``-p`` provider, ``-n`` name, ``-o`` output format,
``-y`` yes, ``-q`` quiet, ``-g`` gpu, ``-c`` count, ``-r`` region, ``-w`` wide. A command that has no such
setting leaves the letter unused; no letter means two things.

Only click and vmops' light modules are imported here (`vm --help` start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

import click

from vmops.cli import complete
from vmops.cli.registry import EXIT_CODES_LINE

if TYPE_CHECKING:
    from vmops.config import Config

F = TypeVar("F", bound=Callable[..., Any])

#: The exit code table (README "Exit codes" is this list).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success (a destroy of something already gone is success, with a note)"),
    (1, "other error; also: a confirmation prompt was declined"),
    (2, "usage: unknown command or option, bad value; nothing was sent"),
    (3, "auth: the provider refused the API key"),
    (4, "permission: the key may not do this in that project"),
    (5, "not found"),
    (6, "invalid argument (the provider refused a value)"),
    (7, "insufficient capacity"),
    (8, "failed precondition (e.g. stopping a stopped VM)"),
    (9, "a reserved VM the provider cannot terminate through its API"),
    (10, "unsupported by this provider (e.g. stop on Lambda)"),
    (11, "operation timeout (it may still finish)"),
    (12, "provider unavailable / answer lost / malformed answer"),
    (13, "vmops state file error"),
    (14, "partial failure (some providers or VMs failed; the rest is shown)"),
    (70, "internal error (a bug: rerun with --debug and report it)"),
    (130, "interrupted (Ctrl-C)"),
    (141, "stdout closed by the reader (`vm list | head`)"),
)


_config: "Config | None" = None


def load_cli_config() -> "Config":
    """The configuration, loaded once per `vm` run (vmops.cli.main.run forgets it between runs): one that does
    not load is a usage error naming what to fix (a provider used at a real endpoint without a key is refused
    by the Session, vmops.config.check_key)."""
    global _config
    if _config is None:
        from vmops.config import load_config
        from vmops.errors import UsageError

        try:
            _config = load_config()
        except ValueError as e:  # bad config file / VMOPS_PROVIDERS
            raise UsageError(str(e), hint="Fix the configuration (`vm config show`)") from None
    return _config


def forget_cli_config() -> None:
    global _config
    _config = None


def suggest(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'list'?)`` or ''."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=2, cutoff=0.6)
    if not close and len(word) >= 2:
        close = [c for c in choices if c.startswith(word)][:2]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


#: Parameters listed under "Output" in a command's help.
OUTPUT_PARAMS = frozenset({"output", "as_json", "json", "wide", "quiet", "progress"})


class VmCommand(click.Command):
    """A command whose help ends with its examples and the exit codes."""

    def __init__(self, *args: Any, examples: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        kwargs["context_settings"].setdefault("max_content_width", 100)
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)

    def invoke(self, ctx: click.Context) -> Any:
        from vmops.errors import UsageError

        try:
            return super().invoke(ctx)
        except UsageError as e:  # the generic "See `vm COMMAND --help`" names this command instead
            if e.hint == UsageError.default_hint:
                e.hint = f"See `{ctx.command_path} --help`"
                e.args = (e.render(),)
            raise

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command's own options first, then how it prints (-o, --json, -w, -q, --progress) and --help."""
        own, shown = [], []
        for p in self.get_params(ctx):
            rec = p.get_help_record(ctx)
            if rec is not None:
                (shown if p.name in OUTPUT_PARAMS else own).append(rec)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if shown:
            with formatter.section("Output"):
                formatter.write_dl(shown)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.examples:
            with formatter.section("Examples"):
                for e in self.examples:  # as typed: never wrapped (tests keep them within 80 columns)
                    formatter.write(f"{'':>{formatter.current_indent}}{e}\n")
        super().format_epilog(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(EXIT_CODES_LINE)


class VmGroup(click.Group):
    """A group with "did you mean" for unknown commands, two aliases (`ls`, `rm`), and command summaries
    from vmops.cli.registry."""

    command_class = VmCommand
    aliases = {"ls": "list", "rm": "destroy"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        kwargs["context_settings"].setdefault("max_content_width", 100)
        super().__init__(*args, **kwargs)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in self.aliases:
            cmd = super().get_command(ctx, self.aliases[cmd_name])
        return cmd

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                           list[str]]:
        name = args[0]
        cmd = self.get_command(ctx, name)
        if cmd is None:
            raise click.UsageError(f"unknown command {name!r}{suggest(name, self.list_commands(ctx))}", ctx)
        return cmd.name, cmd, args[1:]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from vmops.cli import registry

        prefix = " ".join(ctx.command_path.split(" ")[1:])
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, registry.summary_of(f"{prefix} {name}".strip()) or summary(cmd)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(f"`{ctx.command_path} COMMAND --help` (or `vm help COMMAND`) shows a command's "
                             "options and examples.")
        formatter.write_text(EXIT_CODES_LINE)


def summary(cmd: click.Command, limit: int = 58) -> str:
    """A command's one-line summary for a command list: its first sentence, without the parenthesis."""
    text = cmd.short_help or (cmd.help or "").strip().splitlines()[0] if (cmd.short_help or cmd.help) else ""
    for stop in (" (", "; ", ": "):
        if stop in text:
            text = text.split(stop, 1)[0]
    text = text.rstrip(".")
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def command(name: str, *, examples: Sequence[str] = (), **kwargs: Any) -> Callable[[Callable[..., Any]], VmCommand]:
    """``@command("list", examples=[...])``: a VmCommand (added to a group by vmops.cli.app)."""
    return click.command(name, cls=VmCommand, examples=examples, **kwargs)  # type: ignore[return-value]


def group(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], VmGroup]:
    return click.group(name, cls=VmGroup, **kwargs)  # type: ignore[return-value]


# ---- value types --------------------------------------------------------------------------------------

class ProviderType(click.ParamType):
    name = "provider"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from vmops.catalogue import PROVIDERS

        key = str(value).strip().lower()
        if key not in PROVIDERS:
            self.fail(f"unknown provider {value!r}{suggest(key, list(PROVIDERS))}; use one of: "
                      f"{', '.join(PROVIDERS)}", param, ctx)
        return key

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        return complete.items(complete.providers(), incomplete)


class WholeNumber(click.ParamType):
    """An integer whose error reads "--count takes a whole number, not 'x'"."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            self.fail(f"takes a whole number, not {value!r}", param, ctx)


class Number(click.ParamType):
    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return float(str(value).strip())
        except ValueError:
            self.fail(f"takes a number, not {value!r}", param, ctx)


#: Types whose messages begin with the verb, written after the flag ("--count takes ...").
SENTENCE_TYPES = (WholeNumber, Number, ProviderType)


class Completing(click.ParamType):
    """A free string with shell completion from ``source()`` (checked by the command, not here)."""

    def __init__(self, name: str, source: Callable[[click.Context], list[tuple[str, str]]]) -> None:
        self.name = name
        self.source = source

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        return complete.items(self.source(ctx), incomplete)


GPU = Completing("gpu", lambda ctx: complete.gpu_shapes(ctx.params.get("provider")))
REGION = Completing("region", lambda ctx: complete.regions(ctx.params.get("provider")))
FLEET = Completing("fleet", lambda ctx: complete.fleet_names())
VM_REF = Completing("vm", lambda ctx: complete.vm_refs(ctx.params.get("provider")))


# ---- shared options -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    """How a command prints its result: ``fmt`` table/json/csv; ``wide`` shows every column."""

    fmt: str = "table"
    wide: bool = False

    @property
    def json(self) -> bool:
        return self.fmt == "json"


def provider_option(help: str = "Provider: crusoe, lambda or nebius", required: bool = False) -> Callable[[F], F]:  # noqa: A002
    extra: dict[str, Any] = {"required": True} if required else {"default": None}  # (a default defeats required)
    return click.option("-p", "--provider", type=ProviderType(), help=help, is_eager=True, **extra)


def output_options(csv: bool = True, table: bool = True) -> Callable[[F], F]:
    """``-o/--output``, ``--json`` (= ``-o json``) and ``-w/--wide``; the command receives ``output: Output``."""
    formats = [f for f in ("table", "json", "csv") if (f != "csv" or csv) and (f != "table" or table)]

    def decorate(fn: F) -> F:
        def to_output(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
            return value

        fn = click.option("-w", "--wide", is_flag=True, help="Show every column (no fitting to the terminal)")(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="Same as -o json")(fn)
        fn = click.option("-o", "--output", type=click.Choice(formats, case_sensitive=False), default=formats[0],
                          show_default=True, callback=to_output, help="Output format")(fn)
        return fn

    return decorate


def make_output(output: str, as_json: bool, wide: bool) -> Output:
    return Output("json" if as_json else output.lower(), wide)


def yes_option(fn: F) -> F:
    return click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation")(fn)


def dry_run_option(fn: F) -> F:
    return click.option("--dry-run", is_flag=True, help="Say what would be done and change nothing")(fn)


def wait_option(fn: F) -> F:
    return click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for the VM to settle")(fn)


def quiet_option(fn: F) -> F:
    return click.option("-q", "--quiet", is_flag=True, help="No progress or notes on stderr (errors still)")(fn)
