"""Helpers for the fleet tests: a manager on the simulators, and the providers' own view of a fleet."""

from __future__ import annotations

import socket
from typing import Callable, Iterator

import pytest

from vmops.config import Config, load_config
from vmops.fleet.manager import FleetManager, FleetSpec, Limits
from vmops.model import GpuShape, Instance
from vmops.providers.base import Timing
from vmops.session import Session
from vmops.fleet.naming import belongs_to

FAST = Limits(retry_delay=0.02)


def dead_url(kind: str = "http") -> str:
    """A loopback address nothing listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}" if kind == "http" else f"127.0.0.1:{port}"


def at_providers(config: Config, fleet: str, providers: list[str] | None = None) -> list[Instance]:
    """Every VM at the (real, simulated) providers (or only ``providers``) whose name says it belongs to ``fleet``."""
    with Session(config) as s:
        out = s.instances(providers)
        assert not out.failures, out.failures
        return [i for i in out.flat() if belongs_to(i.name, fleet)]


def spec(gpu: str, count: int, name: str, **kw) -> FleetSpec:
    return FleetSpec(GpuShape.parse(gpu), count, name, **kw)


@pytest.fixture
def make_manager(config: Config) -> Iterator[Callable[..., FleetManager]]:
    made: list[FleetManager] = []

    def make(env_overrides: dict[str, str] | None = None, cfg: Config | None = None) -> FleetManager:
        c = cfg or config
        if env_overrides:
            from dataclasses import replace

            from tests.conftest import config_env

            env = config_env(config)
            env.update(env_overrides)
            c = load_config(env)
            del replace
        timing = Timing(poll_interval=c.poll_interval, op_timeout=c.op_timeout, retry_attempts=3,
                        retry_base_delay=0.01, retry_max_delay=0.05, request_timeout=5.0)
        m = FleetManager(Session(c, timing=timing), limits=FAST)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()
        m.session.close()
