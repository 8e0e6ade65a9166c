"""Shared glue for the vmops Ansible modules (packed into every module by AnsiballZ). No policy lives here:
what cleanup may touch is decided in the package (``vmops.cleanup``, ``vmops.fleet``); see docs/design.md,
section 10.

The modules run with the project's virtualenv Python (``ansible_python_interpreter``), so they import
``vmops`` directly. Every vmops error becomes ``fail_json`` with the error class, its kind and its
one-sentence message; nothing here ever prints an API key (vmops' errors and records never contain one).
"""

from __future__ import annotations

import os
import traceback
from typing import Any, Callable

try:
    from vmops.errors import VmopsError
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
