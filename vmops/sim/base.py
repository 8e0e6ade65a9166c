"""The base every simulator shares: options, counters, faults, scheduler, start/stop/reset."""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from typing import ClassVar, Mapping

from vmops.catalogue import PROVIDERS
from vmops.sim.common import Fault, FaultSet, RequestLog, Scheduler, SimOptions


class Simulator(ABC):
    """One provider simulator. Subclasses implement the provider's state and its server.

    Life cycle: ``start(port=0)`` binds 127.0.0.1 (0 = any free port) and returns the bound port;
    ``reset()`` restores the seed state (fresh ids), cancels pending transitions, clears counters and
    faults added at run time (faults given in the options are re-armed); ``stop()`` shuts the server.
    """

    name: ClassVar[str]
    default_port: ClassVar[int]
    dialect: ClassVar[str] = "reference"  # the API dialect it answers (vmops.catalogue.DIALECTS)
    #: endpoint name -> is it mutating? (see vmops.sim.common for naming)
    ENDPOINTS: ClassVar[Mapping[str, bool]]

    def __init__(self, options: SimOptions | None = None) -> None:
        self.options = options or SimOptions()
        self.rng = random.Random(self.options.seed)
        self.requests = RequestLog()
        self.faults = FaultSet([Fault(**{**f.__dict__, "fired": 0}) for f in self.options.faults], rng=self.rng)
        self.scheduler = Scheduler(self.options.time_scale)
        self.lock = threading.RLock()
        self.port: int | None = None
        self.seed_state()

    # -- state -----------------------------------------------------------------------------------
    @abstractmethod
    def seed_state(self) -> None:
        """(Re)build the seed state, applying ``self.options.scenario`` overrides."""

    def reset(self) -> None:
        self.scheduler.cancel_all()
        with self.lock:
            self.requests.reset()
            self.faults.clear()
            for f in self.options.faults:
                self.faults.add(Fault(**{**f.__dict__, "fired": 0}))
            self.seed_state()

    @property
    def time_scale(self) -> float:
        return self.options.time_scale

    @property
    def tls(self) -> tuple[str, str] | None:
        """(certificate file, key file) when the options ask for TLS, else None (plaintext, the default)."""
        o = self.options
        if o.tls_certfile or o.tls_keyfile:
            if not (o.tls_certfile and o.tls_keyfile):
                raise ValueError("TLS needs both tls_certfile and tls_keyfile")
            return o.tls_certfile, o.tls_keyfile
        return None

    @property
    def scheme(self) -> str:
        """URL scheme of a REST simulator's address."""
        return "https" if self.tls else "http"

    # -- server ----------------------------------------------------------------------------------
    @abstractmethod
    def start(self, port: int = 0, host: str = "127.0.0.1") -> int: ...

    @abstractmethod
    def stop(self) -> None: ...

    @property
    @abstractmethod
    def address(self) -> str:
        """What a client is pointed at: a base URL for REST, ``host:port`` for gRPC."""

    def client_env(self) -> dict[str, str]:
        """Variables that point vmops at this simulator. The reference dialect's test keys and projects are
        vmops' defaults, and so is its default port: only an address elsewhere (``vm sim up --crusoe-port 0``)
        needs its variable (``VMOPS_CRUSOE_URL``, ``VMOPS_NEBIUS_ENDPOINT`` ...)."""
        entry = PROVIDERS[self.name]
        if self.address == entry.default_url:
            return {}
        return {f"VMOPS_{self.name.upper()}_{entry.url_var}": self.address}

    def __enter__(self) -> "Simulator":
        if self.port is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
