"""Shell completion sources: provider names, GPU shapes (canonical and native), regions, fleet names from the
state file, and VM names/ids from the short-lived cache (vmops.cli.cache) - never a provider call per TAB.

Each source returns ``(value, help)`` pairs; a failing source completes nothing rather than printing an error
into the user's shell.
"""

from __future__ import annotations

import os
from typing import Any, Iterable


def items(pairs: Iterable[tuple[str, str]], incomplete: str) -> list[Any]:
    from click.shell_completion import CompletionItem

    return [CompletionItem(v, help=h or None) for v, h in pairs if v.startswith(incomplete)]


def providers() -> list[tuple[str, str]]:
    from vmops.catalogue import PROVIDERS

    return [(n, e.title) for n, e in PROVIDERS.items()]


def gpu_shapes(provider: str | None = None) -> list[tuple[str, str]]:
    """Canonical shapes, then native type names (of ``provider`` only, when one is given)."""
    from vmops.catalogue import PROVIDERS

    entries = [PROVIDERS[provider]] if provider in PROVIDERS else list(PROVIDERS.values())
    shapes = sorted({str(t.shape) for e in entries for t in e.types})
    out = [(s, "GPU shape") for s in shapes]
    out += [(t.name, f"{e.name} native type for {t.shape}") for e in entries for t in e.types]
    return out


def regions(provider: str | None = None) -> list[tuple[str, str]]:
    from vmops.catalogue import PROVIDERS

    entries = [PROVIDERS[provider]] if provider in PROVIDERS else list(PROVIDERS.values())
    seen: dict[str, str] = {}
    for e in entries:
        for r in e.regions:
            seen.setdefault(r, f"{e.name} region")
        for alias, native in e.region_aliases.items():
            seen.setdefault(alias, "alias" if len(entries) > 1 else f"alias of {native}")
    return sorted(seen.items())


def fleet_names() -> list[tuple[str, str]]:
    """Fleets on record (the state file is read only when it exists; nothing is created)."""
    try:
        from vmops.config import default_home

        path = default_home(os.environ) / "state.db"
        if not path.exists():
            return []
        from vmops.state.store import Store

        with Store(path) as store:
            return [(f.name, f"{f.state.value}, {f.count} x {f.gpu}") for f in store.list_fleets()]
    except Exception:  # noqa: BLE001 - completion must never break the shell
        return []


def vm_refs(provider: str | None = None) -> list[tuple[str, str]]:
    """VM names and ids from the cache `vm list` keeps (fresh for a few minutes)."""
    try:
        from vmops.cli.cache import recent

        out = []
        for e in recent():
            if provider and e.provider != provider:
                continue
            out.append((e.name, f"{e.provider} {e.id}"))
            out.append((e.id, f"{e.provider} {e.name}"))
        return out
    except Exception:  # noqa: BLE001
        return []
