"""Output and error handling shared by every command: aligned tables, JSON, one-line errors with exit codes.

Commands are invoke tasks wrapped with ``@command``: a ``VmopsError`` becomes one line on stderr and the
error class's exit code (a traceback only with ``--debug``); Ctrl-C exits 130.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, TypeVar

from invoke.exceptions import Exit

from vmops.errors import Interrupted, UsageError, VmopsError

F = TypeVar("F", bound=Callable[..., Any])


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


def fail(err: VmopsError) -> Exit:
    """The invoke Exit for an error (message printed by the program, code = the class's exit code).

    The sentence is one line; tables of details (``err.tables``, plain data from the core) follow on real
    lines, whole: only control characters inside their cells are escaped."""
    text = printable(f"error: {err}{simulator_hint(err)}")
    for t in getattr(err, "tables", ()) or ():
        rows = [dict(r) for r in t.rows]
        text += "\n" + (t.title + "\n" if t.title else "") + render_table(rows, [Column(k, h) for k, h in t.columns])
    return Exit(text, code=err.exit_code)


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
    from vmops.config import load_config

    try:
        cfg = load_config()
    except ValueError:
        return
    for w in cfg.warnings:
        warn(w)


def command(fn: F) -> F:
    """Wrap a task body: typed errors -> one stderr line + exit code; bad values -> usage error (exit 2)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            config_warnings()
            return fn(*args, **kwargs)
        except Exit:
            raise
        except VmopsError as e:
            print_traceback()
            raise fail(e) from None
        except KeyboardInterrupt:
            print_traceback()
            raise fail(Interrupted("interrupted", hint="")) from None
        except BrokenPipeError:
            raise  # stdout closed by the reader (`vm list | head`): main() exits quietly
        except Exception as e:  # a bug: still one line, the traceback only with --debug
            print_traceback()
            raise Exit(f"error: internal error ({type(e).__name__}: {printable(str(e), 300)}). "
                       "Rerun with --debug for the traceback and report it.", code=70) from None

    return wrapper  # type: ignore[return-value]


def usage(message: str, hint: str | None = None) -> UsageError:
    return UsageError(message, hint=hint)


def warn(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    """Progress and informational lines go to stderr so stdout stays machine-readable."""
    print(printable(message), file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    align: str = "<"  # "<" or ">"


def _cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return printable(str(v), None)  # a provider may hand back any name


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """An aligned plain-text table (header + rows)."""
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


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], empty: str = "(none)") -> None:
    if not rows:
        print(empty)
        return
    print(render_table(rows, columns))


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))


INSTANCE_COLUMNS = (
    Column("provider", "PROVIDER"),
    Column("id", "ID"),
    Column("name", "NAME"),
    Column("gpu", "GPU"),
    Column("region", "REGION"),
    Column("state", "STATE"),
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
