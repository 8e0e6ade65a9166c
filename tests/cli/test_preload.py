"""vmops.cli.preload: a module imported on a background thread is the module the command then gets; a failed
import is raised in the caller's thread, where the command can report it."""

from __future__ import annotations

import sys

import pytest

from vmops.cli.preload import preload


def test_the_preloaded_module_is_returned_once_imported() -> None:
    sys.modules.pop("wave", None)  # a standard module nothing in vmops imports
    loaded = preload("wave")
    module = loaded()
    assert module is sys.modules["wave"] and hasattr(module, "open")


def test_a_failed_import_is_raised_where_the_module_is_needed() -> None:
    loaded = preload("vmops.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="vmops.no_such_module"):
        loaded()
