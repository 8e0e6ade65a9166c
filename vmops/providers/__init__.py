"""Provider registry: adapters are found through the catalogue (``ProviderEntry.adapters``, one per dialect)
and imported lazily, so nothing above this module names a concrete provider or looks at a dialect."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vmops.catalogue import PROVIDERS, provider_entry

if TYPE_CHECKING:
    from vmops.config import Config
    from vmops.providers.base import Provider, Timing


def provider_names() -> list[str]:
    return list(PROVIDERS)


def adapter_class(name: str, dialect: str = "reference") -> "type[Provider]":
    """The adapter class speaking ``dialect`` to provider ``name``."""
    module_name, _, cls_name = provider_entry(name).adapter_for(dialect).partition(":")
    return getattr(importlib.import_module(module_name), cls_name)


def timing_for(config: "Config") -> "Timing":
    """The adapters' timing from the configuration: polling, the operation timeout, and the command's
    deadline (VMOPS_DEADLINE) as the longest wait for an answer."""
    from vmops.providers.base import Timing as _Timing

    return _Timing(poll_interval=config.poll_interval, poll_min=config.poll_min, op_timeout=config.op_timeout,
                   request_timeout=config.deadline, connect_timeout=min(1.0, config.deadline),
                   deadline=config.deadline)


def get_provider(name: str, config: "Config", timing: "Timing | None" = None) -> "Provider":
    """An adapter for ``name`` configured from ``config`` (the adapter of the configured dialect)."""
    timing = timing or timing_for(config)
    settings = config.settings(name)
    return adapter_class(name, settings.dialect)(settings, timing)
