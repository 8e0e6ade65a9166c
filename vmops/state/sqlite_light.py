"""sqlite-utils' ``Database`` without the half second of pandas/numpy that sqlite-utils imports at start.

``sqlite_utils.db`` imports pandas and numpy at import time when they are installed (only to map their
scalar types to column types). vmops never writes pandas or numpy values to the state store, and every
`vm fleet ...` command imports the store, so this module imports sqlite-utils with those two hidden
(an import of them fails while it loads; afterwards they import normally). When pandas is already loaded
(notebooks, the inventory), sqlite-utils is imported as it is.
"""

from __future__ import annotations

import sys
import threading

_LOCK = threading.Lock()
_HIDDEN = ("pandas", "numpy")


def _import() -> type:
    with _LOCK:
        if "sqlite_utils.db" not in sys.modules:
            hidden = [name for name in _HIDDEN if name not in sys.modules]
            for name in hidden:
                sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
            try:
                import sqlite_utils.db  # noqa: F401 - loaded here, read from sys.modules below
            finally:
                for name in hidden:
                    if sys.modules.get(name, 0) is None:
                        del sys.modules[name]
        return sys.modules["sqlite_utils.db"].Database  # type: ignore[no-any-return]


Database = _import()

__all__ = ["Database"]
