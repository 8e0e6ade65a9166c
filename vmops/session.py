"""A session: the configuration plus one adapter per enabled provider, and the cross-provider reads that
the CLI, inventory, notebooks and playbooks share (fan-out with per-provider failures kept apart)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, Mapping, TypeVar

from vmops.catalogue import PROVIDERS, resolve_type
from vmops.config import Config, load_config
from vmops.errors import UsageError, VmopsError
from vmops.model import GpuShape, Instance, Offer, Reservation
from vmops.providers import get_provider
from vmops.providers.base import Provider, Timing

T = TypeVar("T")


@dataclass
class FanOut(Generic[T]):
    """Results of one call made at several providers: ``results[provider]`` plus ``failures[provider]``."""

    results: dict[str, list[T]] = field(default_factory=dict)
    failures: dict[str, VmopsError] = field(default_factory=dict)

    def flat(self) -> list[T]:
        return [x for v in self.results.values() for x in v]


class Session:
    """Entry point for Python users: ``Session().instances()``."""

    def __init__(self, config: Config | None = None, env: Mapping[str, str] | None = None,
                 timing: Timing | None = None) -> None:
        self.config = config or load_config(env)
        self.timing = timing
        self._providers: dict[str, Provider] = {}

    # -- providers ------------------------------------------------------------------------------
    def check_provider(self, name: str) -> str:
        key = (name or "").strip().lower()
        if key not in PROVIDERS:
            raise UsageError(f"unknown provider {name!r}", hint=f"Use one of: {', '.join(PROVIDERS)}")
        return key

    def provider(self, name: str) -> Provider:
        key = self.check_provider(name)
        if key not in self._providers:
            self._providers[key] = get_provider(key, self.config, self.timing)
        return self._providers[key]

    def provider_names(self, only: str | Iterable[str] | None = None) -> list[str]:
        if only is None or only == "":
            return list(self.config.enabled)
        names = [only] if isinstance(only, str) else list(only)
        return [self.check_provider(n) for n in names]

    def close(self) -> None:
        for p in self._providers.values():
            p.close()
        self._providers.clear()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fan-out reads --------------------------------------------------------------------------
    def fan_out(self, fn: Callable[[Provider], list[T]], providers: Iterable[str] | None = None) -> FanOut[T]:
        """Call ``fn`` at each provider concurrently; a failing provider lands in ``failures``."""
        names = list(providers) if providers is not None else self.provider_names()
        result: FanOut[T] = FanOut()
        if not names:
            return result
        adapters = {n: self.provider(n) for n in names}

        def run(n: str) -> tuple[str, list[T] | VmopsError]:
            try:
                return n, fn(adapters[n])
            except VmopsError as e:
                return n, e

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            for n, out in pool.map(run, names):
                if isinstance(out, VmopsError):
                    result.failures[n] = out
                else:
                    result.results[n] = out
        return result

    def instances(self, providers: Iterable[str] | None = None) -> FanOut[Instance]:
        return self.fan_out(lambda p: p.list_instances(), providers)

    def reservations(self, providers: Iterable[str] | None = None) -> FanOut[Reservation]:
        return self.fan_out(lambda p: p.reservations(), providers)

    def offers(self, shape: GpuShape | None = None, providers: Iterable[str] | None = None) -> FanOut[Offer]:
        names = list(providers) if providers is not None else self.provider_names()
        if shape is not None:
            names = [n for n in names if PROVIDERS[n].type_for(shape) is not None]
        return self.fan_out(lambda p: p.offers(shape), names)


def parse_shape_for(provider: str | None, gpu: str) -> GpuShape:
    """Validate a --gpu value before any network call (canonical shape, or a native name of ``provider``)."""
    if provider:
        try:
            return resolve_type(provider, gpu).shape
        except ValueError as e:
            raise UsageError(str(e), hint="`vm capacity` lists what each provider offers now") from None
    try:
        return GpuShape.parse(gpu)
    except ValueError as e:
        raise UsageError(str(e)) from None
