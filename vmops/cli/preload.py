"""Load a module on a background thread while the command waits on the network.

A command that lists the providers and then needs a heavy module (`vm cost`: pandas, ~0.3 s) would pay both
one after the other; started together, the import runs while the requests are in flight (and while a hung
provider's deadline runs out). Issue 15, "overlap remaining imports with the first network round trips".
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Callable


def preload(module: str) -> Callable[[], ModuleType]:
    """Start importing ``module`` now on a daemon thread; the returned function waits for that import and
    returns the module. A failed import is raised by the returned function, in the caller's thread (the
    import is simply tried again there)."""
    thread = threading.Thread(target=_quietly, args=(module,), name=f"vmops-preload-{module}", daemon=True)
    thread.start()

    def loaded() -> ModuleType:
        thread.join()
        return importlib.import_module(module)

    return loaded


def _quietly(module: str) -> None:
    try:
        importlib.import_module(module)
    except BaseException:  # raised again where the module is needed, with its traceback there
        pass
