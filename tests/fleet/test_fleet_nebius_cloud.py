"""Fleets on the Nebius cloud dialect (NebiusCloudProvider against its simulator): the fleet manager works
unchanged, and no boot disk is left behind by a fleet create, a late capacity failure, or a fleet destroy."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from vmops.config import NebiusCloudSettings, Secret, load_config
from vmops.fleet.manager import FleetManager
from vmops.providers.base import Timing
from vmops.providers.nebius_cloud import NebiusCloudProvider
from vmops.session import Session
from vmops.sim.nebius_cloud import NebiusCloudSim
from vmops.state.records import MemberStatus

from tests.fleet.conftest import FAST, spec


@pytest.fixture
def cloud_manager(nebius_cloud_sim: NebiusCloudSim, tmp_path: Path) -> Iterator[FleetManager]:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvmopsFleetTestKey vmops@test\n")
    env = {"VMOPS_HOME": str(tmp_path / "home"), "VMOPS_PROVIDERS": "nebius", "VMOPS_POLL_INTERVAL": "0.02",
           "VMOPS_OP_TIMEOUT": "20", "VMOPS_NEBIUS_ENDPOINT": nebius_cloud_sim.address, "VMOPS_NEBIUS_TLS": "0",
           "VMOPS_NEBIUS_PARENT": nebius_cloud_sim.parent, "VMOPS_NEBIUS_IAM_TOKEN": "nebius-iam-token-001",
           "VMOPS_NEBIUS_SSH_PUBLIC_KEY_FILE": str(key)}
    config = load_config(env)
    assert isinstance(config.settings("nebius").nebius_cloud, NebiusCloudSettings)
    assert config.settings("nebius").nebius_cloud.iam_token == Secret("nebius-iam-token-001")  # type: ignore[union-attr]
    timing = Timing(poll_interval=0.02, op_timeout=20, retry_attempts=3, retry_base_delay=0.01, retry_max_delay=0.05)
    session = Session(config, timing=timing)
    session._providers["nebius"] = NebiusCloudProvider(config.settings("nebius"), timing)  # the dialect seam's job
    m = FleetManager(session, limits=FAST)
    yield m
    m.close()
    session.close()


def test_fleet_create_and_destroy_leave_no_disk(cloud_manager: FleetManager, nebius_cloud_sim: NebiusCloudSim) -> None:
    result = cloud_manager.create(spec("h100", 8, "cf1"))  # the simulator's whole h100:1 capacity
    assert len(result.running) == 8
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (8, 8)
    view = cloud_manager.destroy("cf1")
    assert all(m.status is MemberStatus.DESTROYED for m in view.members)
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (0, 0)
    assert nebius_cloud_sim.requests.count("DiskService/Delete") == 8


def test_late_capacity_failure_in_a_fleet_is_a_failed_member_and_leaves_no_disk(
        cloud_manager: FleetManager, nebius_cloud_sim: NebiusCloudSim) -> None:
    # 2 units of h100:8 in the simulator: the third create is accepted, then falls back to STOPPED
    result = cloud_manager.create(spec("h100:8", 3, "cf2", min_count=2))
    assert len(result.running) == 2 and result.shortfall == 1
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (2, 2)
    cloud_manager.destroy("cf2")
    assert (nebius_cloud_sim.instance_count(), nebius_cloud_sim.disk_count()) == (0, 0)
