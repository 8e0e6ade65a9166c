"""Nebius cloud: the boot disk's image family, configured or discovered from ImageService/ListPublic for the
project's region (vmops.providers.nebius_images), against the Nebius cloud simulator (no mocks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import cloud_env, sim_env
from vmops.config import load_config
from vmops.doctor import run_doctor
from vmops.errors import InvalidArgument, UsageError
from vmops.model import CreateRequest
from vmops.providers import get_provider
from vmops.providers.base import Timing
from vmops.providers.nebius_cloud import NebiusCloudProvider
from vmops.sim.common import SimOptions
from vmops.sim.nebius_cloud import NebiusCloudSim

TIMING = Timing(poll_interval=0.02, op_timeout=10, retry_base_delay=0.01)
H100_1 = "gpu-h100-sxm/1gpu-16vcpu-200gb"
H200_1 = "gpu-h200-sxm/1gpu-20vcpu-256gb"
H100, H200 = "gpu-h100-sxm", "gpu-h200-sxm"


@pytest.fixture
def world(tmp_path: Path, public_key_file: str) -> Iterator[Any]:
    """``world(scenario, **env)`` -> (simulator, adapter built from the environment as `vm` builds it)."""
    made: list[tuple[NebiusCloudSim, NebiusCloudProvider]] = []

    def make(scenario: dict[str, Any] | None = None, **env: str) -> tuple[NebiusCloudSim, NebiusCloudProvider]:
        sim = NebiusCloudSim(SimOptions(time_scale=0.05, scenario=scenario or {}))
        sim.start(0)
        variables = {**sim_env(tmp_path, {"nebius": sim}), **cloud_env({"nebius": sim}, public_key_file), **env}
        p = get_provider("nebius", load_config(variables), TIMING)
        assert isinstance(p, NebiusCloudProvider)
        made.append((sim, p))
        return sim, p

    yield make
    for sim, p in made:
        p.close()
        sim.stop()


def _boot_family(sim: NebiusCloudSim, vm_name: str) -> str:
    with sim.lock:
        (disk,) = [d for d in sim.disks.values() if d.metadata.name == f"{vm_name}-boot"]
        return disk.spec.source_image_family.image_family


def _images(*rows: tuple[str, tuple[str, ...]], state: str = "READY") -> list[dict[str, Any]]:
    return [{"family": f, "platforms": list(p), "state": state, "version": "1"} for f, p in rows]


def test_discovered_default_family_in_the_projects_region_once_per_adapter(world: Any) -> None:
    sim, p = world()
    choice = p.image_family(H100)
    assert (choice.family, choice.source) == ("ubuntu22.04-cuda12", "discovered in eu-north1")
    vm = p.create(CreateRequest("img-a", H100_1), wait=False)
    p.create(CreateRequest("img-b", H200_1), wait=False)
    assert _boot_family(sim, "img-a") == _boot_family(sim, "img-b") == "ubuntu22.04-cuda12"
    assert sim.requests.count("ProjectService/Get") == 1  # the region, asked once
    assert sim.requests.count("ImageService/ListPublic") == 2  # 6 images in pages of 3, listed once
    assert vm.id


def test_the_only_candidate_is_taken_and_the_choice_follows_the_platform(world: Any) -> None:
    sim, p = world({"images": _images(("ubuntu24.04-cuda12", (H100,)), ("ubuntu24.04-cuda13.0", (H200,)),
                                      ("ubuntu22.04-driverless", ()))})
    p.create(CreateRequest("one-h100", H100_1), wait=False)
    p.create(CreateRequest("one-h200", H200_1), wait=False)
    assert _boot_family(sim, "one-h100") == "ubuntu24.04-cuda12"
    assert _boot_family(sim, "one-h200") == "ubuntu24.04-cuda13.0"


def test_without_recommendations_every_ready_gpu_family_is_a_candidate(world: Any) -> None:
    sim, p = world({"images": _images(("ubuntu22.04-cuda12", ()), ("ubuntu24.04-cuda12", ()),
                                      ("ubuntu22.04-driverless", ()))})
    assert p.image_family(H100).family == "ubuntu22.04-cuda12"  # the default, being a candidate


def test_ambiguous_families_are_a_configuration_error_listing_them(world: Any) -> None:
    sim, p = world({"images": _images(("ubuntu24.04-cuda12", (H100,)), ("ubuntu24.04-cuda13.0", (H100,)))})
    with pytest.raises(UsageError, match="2 candidates.*ubuntu24.04-cuda12, ubuntu24.04-cuda13.0") as e:
        p.create(CreateRequest("amb", H100_1), wait=False)
    assert "VMOPS_NEBIUS_IMAGE_FAMILY" in (e.value.hint or "")
    assert not any(r.mutating for r in sim.requests.records())  # refused before any disk was made


def test_no_ready_gpu_family_is_a_configuration_error(world: Any) -> None:
    sim, p = world({"images": _images(("ubuntu22.04-driverless", ()))
                    + _images(("ubuntu24.04-cuda12", (H100,)), state="CREATING")})
    with pytest.raises(UsageError, match="no public image family in eu-north1") as e:
        p.create(CreateRequest("none", H100_1), wait=False)
    assert "VMOPS_NEBIUS_IMAGE_FAMILY" in (e.value.hint or "")
    assert not any(r.mutating for r in sim.requests.records())


def test_configured_family_is_used_without_discovery(world: Any) -> None:
    sim, p = world(VMOPS_NEBIUS_IMAGE_FAMILY="ubuntu24.04-cuda12")
    assert (p.image_family(H100).family, p.image_family().source) == ("ubuntu24.04-cuda12", "config")
    p.create(CreateRequest("cfg", H100_1), wait=False)
    assert _boot_family(sim, "cfg") == "ubuntu24.04-cuda12"
    assert sim.requests.count("ImageService/ListPublic") == sim.requests.count("ProjectService/Get") == 0
    _, bad = world(VMOPS_NEBIUS_IMAGE_FAMILY="no-such-family")
    with pytest.raises(InvalidArgument, match="no-such-family") as e:  # the service's NOT_FOUND, explained
        bad.create(CreateRequest("bad", H100_1), wait=False)
    assert "VMOPS_NEBIUS_IMAGE_FAMILY" in (e.value.hint or "")


def test_configured_region_skips_the_project_lookup(world: Any) -> None:
    sim, p = world(VMOPS_NEBIUS_REGION="us-central1")
    assert p.image_family(H100).source == "discovered in us-central1"
    assert sim.requests.count("ProjectService/Get") == 0


def test_simulator_rejects_unknown_family_and_list_without_region(world: Any) -> None:
    import grpc

    from vmops._gen.cloud.nebius.compute.v1 import image_service_pb2 as isvc
    from vmops._gen.cloud.nebius.compute.v1 import image_service_pb2_grpc

    sim, _ = world()
    md = (("authorization", "Bearer nebius-iam-token-001"),)
    with grpc.insecure_channel(sim.address) as ch:
        stub = image_service_pb2_grpc.ImageServiceStub(ch)
        latest = stub.GetLatestByFamily(isvc.GetImageLatestByFamilyRequest(image_family="ubuntu22.04-cuda12"),
                                        metadata=md)
        assert (latest.spec.image_family, latest.spec.version) == ("ubuntu22.04-cuda12", "20261115")
        with pytest.raises(grpc.RpcError) as e:
            stub.GetLatestByFamily(isvc.GetImageLatestByFamilyRequest(image_family="nope"), metadata=md)
        assert e.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as e:
            stub.ListPublic(isvc.ListPublicRequest(), metadata=md)
        assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_doctor_says_which_subnet_and_image_family_and_from_where(tmp_path: Path, public_key_file: str) -> None:
    sim = NebiusCloudSim(SimOptions(time_scale=0.05))
    sim.start(0)
    try:
        env = {**sim_env(tmp_path, {"nebius": sim}), **cloud_env({"nebius": sim}, public_key_file)}
        (check,) = run_doctor(load_config(env), ["nebius"]).checks
        assert check.ok, check.result
        got = {r.setting: (r.value, r.source) for r in check.resolved}
        assert got["image_family"] == ("ubuntu22.04-cuda12", "discovered in eu-north1")
        assert got["subnet"][1] == "discovered" and got["subnet"][0].startswith("vpcsubnet-")
        assert "image_family ubuntu22.04-cuda12 (discovered in eu-north1)" in check.result
        assert check.to_dict()["resolved"][1]["setting"] == "image_family"
        configured = load_config({**env, "VMOPS_NEBIUS_IMAGE_FAMILY": "ubuntu24.04-cuda12"})
        (check,) = run_doctor(configured, ["nebius"]).checks
        assert ("image_family", "ubuntu24.04-cuda12", "config") in {(r.setting, r.value, r.source)
                                                                    for r in check.resolved}
        assert configured.describe()["providers"]["nebius"]["nebius_cloud"]["image_family_source"] == "config"
    finally:
        sim.stop()


def test_doctor_reports_an_ambiguous_image_family_with_the_hint(tmp_path: Path, public_key_file: str) -> None:
    sim = NebiusCloudSim(SimOptions(time_scale=0.05, scenario={"images": _images(
        ("ubuntu24.04-cuda12", (H100, H200)), ("ubuntu24.04-cuda13.0", (H100, H200)))}))
    sim.start(0)
    try:
        env = {**sim_env(tmp_path, {"nebius": sim}), **cloud_env({"nebius": sim}, public_key_file)}
        (check,) = run_doctor(load_config(env), ["nebius"]).checks
        assert not check.ok and "2 candidates" in check.result
        assert "VMOPS_NEBIUS_IMAGE_FAMILY" in (check.hint or "")
    finally:
        sim.stop()
