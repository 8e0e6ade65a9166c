"""A session: the configuration plus one adapter per enabled provider, and the cross-provider reads that
the CLI, inventory, notebooks and playbooks share (fan-out with per-provider failures kept apart)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Generic, Iterable, Mapping, TypeVar

from vmops.catalogue import PROVIDERS, resolve_type
from vmops.config import Config, load_config
from vmops.errors import ProviderUnavailable, Unreachable, UsageError, VmopsError
from vmops.model import GpuShape, Instance, Offer, Reservation

if TYPE_CHECKING:  # the adapters (httpx, grpc) load only when a provider is first used
    from vmops.breaker import Breaker
    from vmops.providers.base import Provider, Timing

T = TypeVar("T")


@dataclass
class FanOut(Generic[T]):
    """Results of one call made at several providers: ``results[provider]`` plus ``failures[provider]``."""

    results: dict[str, list[T]] = field(default_factory=dict)
    failures: dict[str, VmopsError] = field(default_factory=dict)

    def flat(self) -> list[T]:
        return [x for v in self.results.values() for x in v]

    def reasons(self) -> dict[str, str]:
        """Why each failed provider did not answer, without its name (a view shows the name beside it)."""
        return {n: e.render(named=False) for n, e in self.failures.items()}


class Session:
    """Entry point for Python users: ``Session().instances()``."""

    def __init__(self, config: Config | None = None, env: Mapping[str, str] | None = None,
                 timing: "Timing | None" = None) -> None:
        self.config = config or load_config(env)
        self.timing = timing
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()
        self._breaker: "Breaker | None" = None

    @property
    def breaker(self) -> "Breaker":
        if self._breaker is None:
            from vmops.breaker import Breaker

            self._breaker = Breaker(self.config.home, self.config.breaker_seconds)
        return self._breaker

    @property
    def deadline(self) -> float:
        """The longest a fan-out waits for one provider (``VMOPS_DEADLINE``; a given Timing's own value wins)."""
        return self.timing.deadline if self.timing is not None else self.config.deadline

    # -- providers ------------------------------------------------------------------------------
    def check_provider(self, name: str) -> str:
        key = (name or "").strip().lower()
        if key not in PROVIDERS:
            raise UsageError(f"unknown provider {name!r}", hint=f"Use one of: {', '.join(PROVIDERS)}")
        return key

    def provider(self, name: str) -> "Provider":
        key = self.check_provider(name)
        with self._lock:
            if key not in self._providers:
                from vmops.config import check_key
                from vmops.providers import get_provider

                check_key(self.config, key)  # a real endpoint never gets the simulators' test key
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
    def fan_out(self, fn: "Callable[[Provider], list[T]]", providers: Iterable[str] | None = None) -> FanOut[T]:
        """Call ``fn`` at each provider concurrently; a failing provider lands in ``failures``.

        Fail fast: a provider whose breaker is open (it failed to answer moments ago, see vmops.breaker) is
        not asked; a provider that has not answered within the deadline is reported as unavailable and the
        others' results are returned without it (its thread is a daemon, abandoned, bounded by the
        adapter's own read timeout). Either failure opens its breaker; an answer closes it.
        """
        names = list(providers) if providers is not None else self.provider_names()
        result: FanOut[T] = FanOut()
        if not names:
            return result
        breaker = self.breaker
        asked: list[str] = []
        for n in names:
            trip = breaker.open_trip(n, self.config.settings(n).url)
            if trip is None:
                asked.append(n)
                continue
            result.failures[n] = ProviderUnavailable(
                f"skipped: it did not answer at {trip.failed_at_text()} ({trip.reason.rstrip('.')})",
                provider=n, hint=f"vmops asks it again after {trip.retry_at_text()}; "
                                 f"set VMOPS_BREAKER_SECONDS=0 to ask it now")
        outcome: dict[str, list[T] | BaseException] = {}
        done = threading.Condition()

        def run(n: str, adapter: "Provider") -> None:
            try:
                out: list[T] | BaseException = fn(adapter)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread below
                out = e
            with done:
                outcome[n] = out
                done.notify_all()

        # Each provider's call starts as soon as its adapter is made: the first request is on the wire while
        # the next adapter's library (httpx, grpc: tens of ms each) is still being imported.
        until: float | None = None  # the deadline counts from the first call: a command never waits longer
        for n in asked:
            adapter = self.provider(n)  # a bad setting raises here (calls already started are reads, dropped)
            if until is None:
                until = time.monotonic() + self.deadline
            threading.Thread(target=run, args=(n, adapter), name=f"vmops-fanout-{n}", daemon=True).start()
        with done:
            done.wait_for(lambda: len(outcome) == len(asked), timeout=max(0.0, (until or 0.0) - time.monotonic()))
            got = dict(outcome)
        for n in asked:  # in the order asked, so output is stable
            out = got.get(n)
            if out is None:
                err: VmopsError = ProviderUnavailable(
                    f"no answer within {self.deadline:g} s", provider=n,
                    hint="Its results are left out; retry later, or give it longer with VMOPS_DEADLINE (seconds)")
                result.failures[n] = err
                breaker.trip(n, self.config.settings(n).url, err.message)
            elif isinstance(out, BaseException) and not isinstance(out, VmopsError):
                raise out  # a bug or an interrupt, not a provider's failure: as if called here
            elif isinstance(out, VmopsError):
                result.failures[n] = out
                self.remember_failure(n, out)
            else:
                result.results[n] = out
                breaker.close(n)
        result.failures = {n: result.failures[n] for n in names if n in result.failures}
        return result

    def remember_failure(self, name: str, err: VmopsError) -> None:
        """A provider that did not answer (``Unreachable``: refused, hung, or silent this command) opens its
        breaker, so the next commands' reads skip it at once (vmops.breaker). Any other error is an answer."""
        if isinstance(err, Unreachable):
            self.breaker.trip(name, self.config.settings(name).url, err.lasting)

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
