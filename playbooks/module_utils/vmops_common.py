"""Shared code for the vmops Ansible modules (packed into every module by AnsiballZ).

The modules run with the project's virtualenv Python (``ansible_python_interpreter``), so they import
``vmops`` directly and speak only its normalized model. Every vmops error becomes ``fail_json`` with
the error class, its kind and its one-sentence message; nothing here ever prints an API key (vmops'
errors and records never contain one).
"""

from __future__ import annotations

import fnmatch
import os
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

try:
    from vmops.errors import VmopsError
    from vmops.model import Instance
    from vmops.session import Session

    HAS_VMOPS = True
    VMOPS_IMPORT_ERROR = ""
except ImportError:  # pragma: no cover - reported by require_vmops
    HAS_VMOPS = False
    VMOPS_IMPORT_ERROR = traceback.format_exc()
    VmopsError = Exception  # type: ignore[misc,assignment]


def require_vmops(module: Any) -> None:
    if not HAS_VMOPS:
        module.fail_json(
            msg="the vmops package is not importable by the module's Python; run ansible-playbook from the "
                "vmops virtualenv and set ansible_python_interpreter to its python (playbooks/inventory does)",
            error_class="ImportError", error_kind="import", exception=VMOPS_IMPORT_ERROR)


def fail_vmops(module: Any, err: BaseException, **extra: Any) -> None:
    """``fail_json`` for a vmops error (or a ValueError from argument checks): class, kind, message."""
    kind = getattr(err, "kind", "invalid_argument" if isinstance(err, ValueError) else "error")
    module.fail_json(msg=str(err), error_class=type(err).__name__, error_kind=kind, **extra)


def run_module(module: Any, body: Callable[[], dict[str, Any]]) -> None:
    """Run ``body`` and exit with its result; vmops errors become failed tasks with a clear message."""
    require_vmops(module)
    try:
        result = body()
    except VmopsError as e:  # type: ignore[misc]
        fail_vmops(module, e)
        return
    except ValueError as e:
        fail_vmops(module, e)
        return
    module.exit_json(**result)


def open_session() -> "Session":
    """A vmops session configured exactly like the `vm` command (VMOPS_* environment, $VMOPS_HOME)."""
    from vmops.errors import UsageError

    try:
        return Session(env=os.environ)
    except ValueError as e:
        raise UsageError(str(e), hint="Fix the vmops configuration (`vm config show`)") from None


@dataclass(frozen=True)
class ProtectList:
    """Names, ids or shell-style patterns that no playbook may stop or destroy.

    An entry matches an instance's name, its id, ``provider:id``, ``provider:name``, or the name of the
    fleet the instance belongs to (so protecting ``train`` protects every member of fleet ``train``).
    """

    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, items: Iterable[str] | None) -> "ProtectList":
        return cls(tuple(str(p).strip() for p in (items or ()) if str(p).strip()))

    def match(self, inst: "Instance", fleet: str | None = None) -> str | None:
        keys = [inst.name, inst.id, f"{inst.provider}:{inst.id}", f"{inst.provider}:{inst.name}"]
        if fleet:
            keys.append(fleet)
        for pat in self.patterns:
            for k in keys:
                if k and fnmatch.fnmatchcase(k, pat):
                    return pat
        return None

    def match_fleet(self, fleet: str) -> str | None:
        for pat in self.patterns:
            if fnmatch.fnmatchcase(fleet, pat):
                return pat
        return None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def age_hours(when: datetime | None, now: datetime | None = None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return ((now or utc_now()) - when).total_seconds() / 3600.0


def brief(inst: "Instance", **extra: Any) -> dict[str, Any]:
    """The fields a playbook report shows for one instance."""
    d: dict[str, Any] = {
        "provider": inst.provider,
        "id": inst.id,
        "name": inst.name,
        "state": inst.state.value,
        "gpu": str(inst.gpu) if inst.gpu else None,
        "region": inst.region,
        "reserved": inst.reserved,
        "can_terminate": inst.can_terminate,
        "created_at": inst.created_at.isoformat() if inst.created_at else None,
        "price_per_hour": inst.price_per_hour,
    }
    d.update(extra)
    return d


def listing_failures(failures: Mapping[str, BaseException]) -> dict[str, str]:
    return {p: f"{type(e).__name__}: {e}" for p, e in failures.items()}
