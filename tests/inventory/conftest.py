"""Fixtures for the inventory tests: a Session on the test simulators, and a fleet left with orphans by a
simulated crash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pytest

from vmops.fleet.naming import member_name
from vmops.model import CreateRequest, Instance, ReservationPolicy
from vmops.providers.base import Timing
from vmops.session import Session
from vmops.state import MemberStatus, open_store

#: Fast and with few retries, so a provider that is down is reported quickly.
FAST = Timing(poll_interval=0.02, op_timeout=30, retry_attempts=2, retry_base_delay=0.01, retry_max_delay=0.05,
              request_timeout=10)


@pytest.fixture
def session(vm_env) -> Iterator[Session]:
    s = Session(env=vm_env, timing=FAST)
    yield s
    s.close()


@dataclass
class CrashedFleet:
    name: str
    recorded: Instance  # at crusoe, recorded with its id: a normal member
    unrecorded: Instance  # at lambda, created but the process "crashed" before its id was recorded
    vanished_name: str  # at nebius, recorded with its id, then deleted outside vmops
    vanished_id: str


def make_crashed_fleet(session: Session, name: str = "crashy") -> CrashedFleet:
    """Write-ahead records exactly as the fleet manager writes them, with a crash in the middle."""
    store = open_store(session.config.state_path)
    try:
        fleet, _ = store.claim_fleet(name, gpu="h100:1", count=3, min_count=3, policy="spread")

        def member(provider: str, native: str):
            return store.add_member(fleet.id, name=None, name_for_seq=lambda seq: member_name(name, seq),
                                    provider=provider, region=None, native_type=native,
                                    idempotency_key=f"key-{provider}")

        m1 = member("crusoe", "h100.1x")  # on-demand, as a fleet asks by default (Crusoe's own default may reserve)
        i1 = session.provider("crusoe").create(CreateRequest(name=m1.name, native_type="h100.1x",
                                                             reservation_policy=ReservationPolicy.FORBID))
        store.update_member(m1.id, status=MemberStatus.RUNNING, state=i1.state, instance_id=i1.id,
                            region=i1.region, price_per_hour=i1.price_per_hour, seen=True)
        m2 = member("lambda", "gpu_1x_h100")
        i2 = session.provider("lambda").create(CreateRequest(name=m2.name, native_type="gpu_1x_h100"))
        # -- crash here: the provider answered, the record never got the id --
        m3 = member("nebius", "gpu-h100-sxm/1gpu-16vcpu-200gb")
        i3 = session.provider("nebius").create(
            CreateRequest(name=m3.name, native_type="gpu-h100-sxm/1gpu-16vcpu-200gb", labels={"vmops-fleet": name}))
        store.update_member(m3.id, status=MemberStatus.RUNNING, state=i3.state, instance_id=i3.id,
                            price_per_hour=i3.price_per_hour, seen=True)
        session.provider("nebius").destroy(i3.id)  # deleted outside vmops
        return CrashedFleet(name, i1, i2, m3.name, i3.id)
    finally:
        store.close()


@pytest.fixture
def crashed(session) -> CrashedFleet:
    return make_crashed_fleet(session)


#: Reserved VMs a test starts with (see ``seeded``), per dialect: provider -> the commitment per hour inventory
#: shows for it (None: the provider gives no reservation price). Reference: the simulators' seeds (Crusoe rsv-001:
#: $9.50/GPU-hour x 8); cloud: one 1 x H100 VM in Crusoe's organization reservation ($2.50/GPU-hour).
SEED_RESERVED: dict[str, dict[str, float | None]] = {
    "reference": {"crusoe": 76.0, "lambda": None, "nebius": None},
    "cloud": {"crusoe": 2.5},
}


@pytest.fixture
def seeded(sims, session, dialect) -> dict[str, float | None]:
    """Every provider holds a VM, and some a reserved one, before the test (``SEED_RESERVED[dialect]``): the
    reference simulators seed both; the cloud ones seed no Nebius VM and no VM in Crusoe's reservation, so this
    makes them."""
    if dialect == "cloud":
        neb = CreateRequest(name="seed-nebius", native_type="gpu-h100-sxm/1gpu-16vcpu-200gb")
        session.provider("nebius").create(neb)
        session.provider("crusoe").create(CreateRequest(name="seed-reserved", native_type="h100.1x",
                                                        reservation_policy=ReservationPolicy.STRICT))
    return SEED_RESERVED[dialect]
