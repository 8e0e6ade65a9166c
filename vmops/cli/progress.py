"""Rendering the fleet progress events (vmops.fleet.progress: a Listener gets a snapshot of per-provider
counters on every change) on stderr.

* ``plain``: a line per provider when its counters change (at most one a second while they keep changing),
  with the elapsed time; what a pipe, a log file or ``--progress plain`` gets.
* ``live``: on a terminal, a rich live table, one row per provider (requested, accepted, running, failed,
  creates of unknown outcome, and how long a provider with VMs still pending has gone without news: what is slow), redrawn in place and
  never wider than the terminal; its final frame is the final counts.
* ``none`` (``-q``): nothing.

Counters only grow, so a snapshot with a smaller total than one already shown arrived late (listeners are
called outside the counters' lock) and is dropped: the last frame is never behind the one before it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from vmops.fleet.progress import ProviderProgress

MODES = ("auto", "live", "plain", "none")


def _total(p: "ProviderProgress") -> int:
    return p.requested + p.accepted + p.running + p.failed + p.unknown


#: Plain progress writes a provider's line at most this often (seconds) while its counts keep changing.
PLAIN_EVERY = 1.0


def _settled(p: "ProviderProgress") -> bool:
    return p.requested > 0 and p.pending <= 0


class PlainProgress:
    """Lines like ``[  1.2s] crusoe: requested 3, accepted 2, running 1, failed 0``.

    A provider's line is written when its counts change, at most once every ``every`` seconds while they keep
    changing (a 512-VM fleet would otherwise put ~1,500 lines in a log). Its first line, a line with a new
    failure and its line once nothing is pending are written at once; a line held back is written when its
    interval ends, or at ``finish``, so the last line per provider is always its last counts."""

    def __init__(self, stream: TextIO | None = None, every: float = PLAIN_EVERY) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._shown: dict[str, ProviderProgress] = {}
        self._held: dict[str, ProviderProgress] = {}
        self._written_at: dict[str, float] = {}
        self._timer: threading.Timer | None = None

    def __call__(self, snap: list["ProviderProgress"]) -> None:
        with self._lock:
            now = time.monotonic()
            for p in snap:
                newest = self._held.get(p.provider) or self._shown.get(p.provider)
                if newest is not None and _total(p) <= _total(newest):
                    continue  # unchanged, or a late (older) snapshot
                shown = self._shown.get(p.provider)
                if (shown is None or _settled(p) or p.failed > shown.failed or p.unknown > shown.unknown
                        or now - self._written_at[p.provider] >= self.every):
                    self._write(p, now)
                else:
                    self._held[p.provider] = p
                    self._arm(self._written_at[p.provider] + self.every - now)
            self.stream.flush()

    def _write(self, p: "ProviderProgress", now: float) -> None:
        self._held.pop(p.provider, None)
        self._shown[p.provider] = p
        self._written_at[p.provider] = now
        self.stream.write(f"[{now - self.t0:6.1f}s] {p.render()}\n")

    def _arm(self, delay: float) -> None:
        if self._timer is None:
            self._timer = threading.Timer(max(0.0, delay), self._release)
            self._timer.daemon = True
            self._timer.start()

    def _release(self) -> None:
        """Write the held lines whose interval has ended; wait again for the others."""
        with self._lock:
            self._timer = None
            now = time.monotonic()
            for name in sorted(self._held):
                if now - self._written_at[name] >= self.every:
                    self._write(self._held[name], now)
            if self._held:
                self._arm(min(self._written_at[n] for n in self._held) + self.every - now)
            self.stream.flush()

    def finish(self, final: list["ProviderProgress"] | None = None) -> None:
        if final:
            self(final)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            now = time.monotonic()
            for name in sorted(self._held):
                self._write(self._held[name], now)
            self.stream.flush()


class LiveProgress:
    """A live per-provider table on a terminal (rich), fitted to its width."""

    def __init__(self, title: str = "", stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.stream = stream or sys.stderr
        self.title = title
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._by: dict[str, ProviderProgress] = {}
        self._changed_at: dict[str, float] = {}
        self.console = Console(file=self.stream, highlight=False)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False, get_renderable=self._render)
        self._started = False

    def __call__(self, snap: list["ProviderProgress"]) -> None:
        with self._lock:
            now = time.monotonic()
            for p in snap:
                old = self._by.get(p.provider)
                if old is None or _total(p) > _total(old):
                    self._by[p.provider] = p
                    self._changed_at[p.provider] = now
            start = not self._started
            self._started = True
        if start:  # drawn from the first event on, so nothing flickers for a command that fails early
            self.live.start()

    def _render(self) -> Any:
        from rich.table import Table

        width = self.console.width
        elapsed = time.monotonic() - self.t0
        table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, show_edge=False,
                      title=None, expand=False)
        narrow = width < 60
        table.add_column("PROVIDER", no_wrap=True, overflow="ellipsis")
        for h in ("REQ", "ACCEPTED", "RUNNING", "FAILED"):
            table.add_column(h if not narrow else h[:3], justify="right", no_wrap=True)
        table.add_column("", no_wrap=True, overflow="ellipsis")
        with self._lock:
            rows = [self._by[k] for k in sorted(self._by)]
            changed = dict(self._changed_at)
        tot = [0, 0, 0, 0]
        for p in rows:
            pending = p.pending
            quiet_for = time.monotonic() - changed.get(p.provider, self.t0)
            status = ("done" if pending <= 0 and p.requested else
                      f"{pending} pending, {quiet_for:.0f}s since last change" if quiet_for >= 5 else f"{pending} pending")
            if p.unknown:  # they may exist and bill: never hidden in the FAILED count
                status = f"{p.unknown} unknown" + ("" if status == "done" else f", {status}")
            style = "red" if p.failed or p.unknown else ("green" if pending <= 0 else "")
            table.add_row(p.provider, str(p.requested), str(p.accepted), f"[{style}]{p.running}[/]" if style else
                          str(p.running), str(p.failed), status)
            tot = [tot[0] + p.requested, tot[1] + p.accepted, tot[2] + p.running, tot[3] + p.failed]
        if len(rows) > 1:
            table.add_row("all", *(str(x) for x in tot), "")
        table.caption = f"{self.title}  {elapsed:.1f}s".strip()
        table.caption_justify = "left"
        return table

    def finish(self, final: list["ProviderProgress"] | None = None) -> None:
        if final:
            self(final)
        if self._started:
            self.live.refresh()  # the final frame: the final counts
            self.live.stop()


def make_progress(mode: str, quiet: bool, title: str = "") -> Any:
    """The listener for ``--progress MODE`` (auto: live on a terminal, plain otherwise); None when quiet."""
    if quiet or mode == "none":
        return None
    if mode == "auto":
        try:
            mode = "live" if sys.stderr.isatty() else "plain"
        except (AttributeError, ValueError):
            mode = "plain"
    return LiveProgress(title) if mode == "live" else PlainProgress()
