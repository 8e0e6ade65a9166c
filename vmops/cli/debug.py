"""`vm --debug` (or ``VMOPS_DEBUG=1``): debug logging of every request to stderr and the traceback of an
unexpected error, with API keys and Authorization values redacted from every line (``vmops.config.redact``).

Only the standard library and vmops.config are imported here (the CLI's light-import rule).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from types import TracebackType

from vmops.config import redact

_installed = False


class RedactingFormatter(logging.Formatter):
    """Formats a record (message, arguments, exception) and then masks keys in the finished text."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))
    sys.stderr.flush()


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    sys.stderr.write(f"exception in thread {args.thread.name if args.thread else '?'}:\n")
    _excepthook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)


def enable() -> None:
    """Debug logging on stderr (redacted) for vmops and the HTTP/gRPC libraries; redacted tracebacks.

    Installed on the root logger before invoke's own ``--debug`` handling, so invoke's basicConfig finds
    a handler and adds no unredacted one of its own.
    """
    global _installed
    if _installed:
        return
    _installed = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        h.setFormatter(RedactingFormatter(h.formatter._fmt if h.formatter else None))  # noqa: SLF001
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for chatty in ("invoke", "httpcore", "hpack"):  # parser states and socket steps bury the request lines
        logging.getLogger(chatty).setLevel(logging.INFO)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
