"""Output shared by every command: tables (plain and aligned when piped; fitted to the terminal and coloured
with rich when stdout is one), JSON, CSV, and the one-line ``error:`` / ``warning:`` / note lines on stderr.

Errors are turned into exit codes in one place, ``vmops.cli.main``. rich is imported only when a table is
drawn on a terminal.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from vmops.errors import UsageError, VmopsError


def debug_enabled() -> bool:
    return os.environ.get("VMOPS_DEBUG", "") not in ("", "0")


#: Unicode categories never written to a terminal as they are: controls (newline, ESC sequences), format
#: characters (bidi overrides, zero-width), line/paragraph separators, lone surrogates.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
MAX_MESSAGE = 2000


def printable(text: str, limit: int | None = MAX_MESSAGE) -> str:
    """``text`` safe for a terminal line: ids, names and provider messages are untrusted, so control and
    format characters are shown escaped (``\\x1b``, ``\\u202e``) and a huge message is cut short."""
    import unicodedata

    if text.isprintable() and (limit is None or len(text) <= limit):
        return text
    out = "".join(c if unicodedata.category(c) not in _UNPRINTABLE else
                  (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in text)
    if limit is not None and len(out) > limit:
        out = out[:limit] + f"... ({len(out) - limit} more characters)"
    return out


def error_text(err: VmopsError) -> str:
    """What `vm` prints for a typed error: one sentence (control characters escaped, long ones cut), then
    the tables of details the core attaches as plain data (``err.tables``) on real lines, whole: only
    control characters inside their cells are escaped."""
    text = printable(f"error: {err}{simulator_hint(err)}")
    for t in getattr(err, "tables", ()) or ():
        rows = [dict(r) for r in t.rows]
        text += "\n" + (t.title + "\n" if t.title else "") + render_table(rows, [Column(k, h) for k, h in t.columns])
    return text


def simulator_hint(err: VmopsError) -> str:
    """When a provider that vmops reaches at its default address (the bundled simulator) is down, say how
    to start the simulators: the most likely 3 a.m. cause on a fresh machine."""
    from vmops.errors import ProviderUnavailable

    if not isinstance(err, ProviderUnavailable) or err.kind != "provider_unavailable":
        return ""
    try:
        from vmops.config import load_config

        cfg = load_config()
        names = [err.provider] if err.provider else list(cfg.enabled)
        if names and all(cfg.settings(n).sources.get("url") == "default" for n in names):
            return " (vmops points at the bundled simulators by default: `vm sim up` starts them)"
    except (ValueError, KeyError):
        pass
    return ""


def print_traceback() -> None:
    """With --debug: the traceback of the exception being handled, keys redacted, on stderr (the exit
    code stays the error's own)."""
    if not debug_enabled():
        return
    import traceback

    from vmops.config import redact

    print(redact(traceback.format_exc()).rstrip(), file=sys.stderr, flush=True)


_warned = False


def config_warnings() -> None:
    """Print the configuration's security warnings (loose key-file permissions, plaintext to a remote
    host) on stderr, once per process; a configuration that does not load is the command's to report."""
    global _warned
    if _warned:
        return
    _warned = True
    from vmops.cli.base import load_cli_config

    try:
        cfg = load_cli_config()
    except UsageError:
        return
    for w in cfg.warnings:
        warn(w)


def usage(message: str, hint: str | None = None) -> UsageError:
    return UsageError(message, hint=hint)


_quiet = False


def set_quiet(quiet: bool) -> None:
    """``-q``: notes and progress are not written (warnings and errors still are)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def warn(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    """Progress and informational lines go to stderr so stdout stays machine-readable. One write per line, so
    lines noted from several threads (a destroy's per-provider lanes) never run into each other."""
    if not _quiet:
        sys.stderr.write(printable(message) + "\n")
        sys.stderr.flush()


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    align: str = "<"  # "<" or ">"
    keep: bool = False  # never hidden when the table is fitted to a narrow terminal
    prose: bool = False  # free text (a reason, a note): cut first, so names and ids stay whole


def _cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return printable(str(v), None)  # a provider may hand back any name


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """An aligned plain-text table (header + rows): what a pipe or a file gets, every column, never cut."""
    cells = [[_cell(r.get(c.key)) for c in columns] for r in rows]
    widths = [max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    def line(values: Iterable[str]) -> str:
        parts = []
        for (v, w, c) in zip(values, widths, columns):
            parts.append(v.rjust(w) if c.align == ">" else v.ljust(w))
        return "  ".join(parts).rstrip()
    out = [line(c.header for c in columns)]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


GAP = 2
MIN_CUT = 8  # a truncated column keeps at least this many characters


def _natural_widths(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> dict[str, int]:
    return {c.key: max([len(c.header)] + [len(_cell(r.get(c.key))) for r in rows]) for c in columns}


def fit_columns(rows: Sequence[dict[str, Any]], columns: Sequence[Column], width: int) -> tuple[list[Column], int]:
    """The columns shown in ``width`` characters: the rightmost columns not marked ``keep`` are hidden first
    until the natural widths fit (or only kept ones are left; the renderer then cuts cells: see
    ``prose_widths``). Returns (shown columns, number hidden)."""
    natural = _natural_widths(rows, columns)
    shown = list(columns)

    def total(cols: Sequence[Column]) -> int:
        return sum(natural[c.key] for c in cols) + GAP * (len(cols) - 1)

    while total(shown) > width:
        droppable = [c for c in shown if not c.keep]
        if not droppable or len(shown) <= 1:
            break
        shown.remove(droppable[-1])
    return shown, len(columns) - len(shown)


def prose_widths(rows: Sequence[dict[str, Any]], shown: Sequence[Column], width: int) -> dict[str, int]:
    """When the shown columns are still too wide: the width of each prose column (free text) such that only
    they are cut and every other column stays whole (a decision whose NAME reads "vmops-r…" is no use);
    {} when the table fits, or when cutting the prose alone is not enough (every column is then cut evenly)."""
    natural = _natural_widths(rows, shown)
    gaps = GAP * (len(shown) - 1)
    prose = sorted((c for c in shown if c.prose), key=lambda c: natural[c.key])
    spare = width - gaps - sum(natural[c.key] for c in shown if not c.prose)
    if sum(natural.values()) + gaps <= width or not prose or spare < MIN_CUT * len(prose):
        return {}
    out: dict[str, int] = {}
    for i, c in enumerate(prose):  # the narrowest first: one that needs less than its share leaves the rest
        out[c.key] = min(natural[c.key], spare // (len(prose) - i))
        spare -= out[c.key]
    return out


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def colour_wanted() -> bool:
    return stdout_is_terminal() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


STATE_STYLES = {"running": "green", "active": "green", "stopped": "yellow", "provisioning": "cyan",
                "pending": "cyan", "starting": "cyan", "stopping": "yellow", "deleting": "magenta",
                "deleted": "dim", "gone": "dim", "error": "red", "failed": "red", "partial": "yellow"}


def _terminal_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], width: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    shown, hidden = fit_columns(rows, columns, width)
    cut = prose_widths(rows, shown, width)
    console = Console(width=width, no_color=not colour_wanted(), highlight=False, soft_wrap=False)
    table = Table(box=None, padding=(0, GAP, 0, 0), pad_edge=False, show_edge=False, expand=False,
                  header_style="bold" if colour_wanted() else "")
    for c in shown:
        table.add_column(c.header, justify="right" if c.align == ">" else "left", no_wrap=True,
                         overflow="ellipsis", min_width=min(MIN_CUT, len(c.header)), width=cut.get(c.key))
    for r in rows:
        cells = []
        for c in shown:
            text = _cell(r.get(c.key))
            style = STATE_STYLES.get(text.lower(), "") if c.key in ("state", "status") else ""
            cells.append(Text(text, style=style))
        table.add_row(*cells)
    console.print(table)
    if hidden:
        names = [c.header for c in columns if c not in shown]
        text = f"(hidden to fit: {', '.join(names)}; --wide shows all)"
        while len(text) > width and len(names) > 1:
            names = names[:-1]
            text = f"(hidden to fit: {', '.join(names)}, +{hidden - len(names)} more; --wide shows all)"
        note(text)


def terminal_width() -> int:
    import shutil

    return max(20, shutil.get_terminal_size((80, 24)).columns)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], empty: str = "(none)",
                wide: bool = False) -> None:
    """Plain aligned text when piped or with ``wide``; on a terminal, fitted to its width (rich)."""
    if not rows:
        print(empty)
        return
    if wide or not stdout_is_terminal():
        print(render_table(rows, columns))
        return
    sys.stdout.flush()
    _terminal_table(rows, columns, terminal_width())


def print_csv(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    import csv

    w = csv.DictWriter(sys.stdout, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[Column], fmt: str, *, wide: bool = False,
               empty: str = "(none)", fields: Sequence[str] | None = None) -> None:
    """A list result in the chosen format: table, json (every field) or csv (``fields``, default the
    table's columns)."""
    if fmt == "json":
        print_json(list(rows))
    elif fmt == "csv":
        print_csv(rows, fields or [c.key for c in columns])
    else:
        print_table(rows, columns, empty=empty, wide=wide)


def print_json(obj: Any) -> None:
    import json  # here: a table or plain output never needs it

    print(json.dumps(obj, indent=2, sort_keys=False, default=str))


INSTANCE_COLUMNS = (
    Column("provider", "PROVIDER", keep=True),
    Column("id", "ID", keep=True),
    Column("name", "NAME", keep=True),
    Column("gpu", "GPU"),
    Column("region", "REGION"),
    Column("state", "STATE", keep=True),
    Column("public_ip", "PUBLIC IP"),
    Column("private_ip", "PRIVATE IP"),
    Column("reserved", "RESERVED"),
    Column("price_per_hour", "$/HR", ">"),
)

#: Fields every instance JSON object carries (the documented interface).
INSTANCE_JSON_FIELDS = (
    "provider", "id", "name", "gpu", "region", "state", "native_state", "native_type", "public_ip", "private_ip",
    "reserved", "reservation_id", "price_per_hour", "price_source", "created_at", "labels",
)


def instance_json(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d.get(k) for k in INSTANCE_JSON_FIELDS}
