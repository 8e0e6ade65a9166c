"""The CLI's small cache of VMs it has seen (``$VMOPS_HOME/cache/vms.json``): provider, id, name, when seen,
and whether vmops destroyed it.

Two readers: shell completion of VM names (entries seen in the last ``FRESH_S`` seconds; completion never
calls a provider), and `vm destroy`, which treats an id vmops has seen but the provider no longer has as
already gone (success with a note) rather than "not found". An id never seen stays "not found" (exit 5): a
typo is not a success. The cache is best effort: unreadable or unwritable means empty, never an error.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

FRESH_S = 300.0
MAX_ENTRIES = 2000


@dataclass(frozen=True)
class Seen:
    provider: str
    id: str
    name: str
    seen_at: float
    gone: bool = False


def _path() -> Path:
    from vmops.config import default_home

    return default_home(os.environ) / "cache" / "vms.json"


def _load() -> dict[tuple[str, str], Seen]:
    try:
        raw = json.loads(_path().read_text())
        return {(e["provider"], e["id"]): Seen(**e) for e in raw}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def _save(entries: dict[tuple[str, str], Seen]) -> None:
    keep = sorted(entries.values(), key=lambda e: e.seen_at)[-MAX_ENTRIES:]
    path = _path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps([asdict(e) for e in keep]))
        os.replace(tmp, path)
    except OSError:
        pass


def remember(vms: Iterable[tuple[str, str, str]], *, replace_provider: Iterable[str] = ()) -> None:
    """Record (provider, id, name) triples as seen now; for each provider in ``replace_provider`` (a full
    listing), entries not in ``vms`` are dropped from the completion list but kept as known."""
    entries = _load()
    now = time.time()
    listed = set(replace_provider)
    fresh = {(p, i) for p, i, _ in vms}
    for key, e in list(entries.items()):
        if e.provider in listed and key not in fresh and not e.gone:
            entries[key] = Seen(e.provider, e.id, e.name, e.seen_at, gone=True)
    for p, i, n in vms:
        entries[(p, i)] = Seen(p, i, n, now)
    _save(entries)


def mark_gone(provider: str, iid: str, name: str = "") -> None:
    entries = _load()
    old = entries.get((provider, iid))
    entries[(provider, iid)] = Seen(provider, iid, name or (old.name if old else ""), time.time(), gone=True)
    _save(entries)


def known(provider: str, iid: str) -> Seen | None:
    return _load().get((provider, iid))


def gone_matching(ref: str) -> Seen | None:
    """A VM vmops saw go (destroyed, or missing from a full listing) whose id or name is ``ref``."""
    return next((e for e in _load().values() if e.gone and ref in (e.id, e.name)), None)


def recent(max_age: float = FRESH_S) -> list[Seen]:
    cutoff = time.time() - max_age
    return [e for e in _load().values() if not e.gone and e.seen_at >= cutoff]
