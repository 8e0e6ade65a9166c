"""The committed Nebius stubs are current, importable, and describe the wire contract of provider-apis.md §3.2."""

from __future__ import annotations

from pathlib import Path

from vmops import protogen


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    written = protogen.generate(tmp_path)
    assert {p.name for p in written} >= {"instance_pb2.py", "instance_service_pb2.py", "instance_service_pb2_grpc.py"}
    fresh = protogen.generated_files(tmp_path)
    committed = [p for p in protogen.generated_files(protogen.DEFAULT_OUT)]
    assert fresh == committed, "vmops/_gen holds other files than a generation writes; run `python -m vmops.protogen`"
    for rel in fresh:
        a = protogen.normalize_version_stamps((protogen.DEFAULT_OUT / rel).read_text())
        b = protogen.normalize_version_stamps((tmp_path / rel).read_text())
        assert a == b, f"vmops/_gen/{rel} is stale; run `python -m vmops.protogen`"
    assert protogen.stale_files() == []
    assert protogen.main(["--check"]) == 0


def test_check_detects_a_stale_file(tmp_path: Path) -> None:
    protogen.generate(tmp_path)
    target = tmp_path / "nebius/compute/v1/instance_pb2.py"
    target.write_text(target.read_text().replace("ResourceMetadata", "ResourceMetaData"))
    assert protogen.stale_files(tmp_path) == ["nebius/compute/v1/instance_pb2.py"]
    assert protogen.main(["--check", "--out", str(tmp_path)]) == 1


def test_version_stamps_only_are_normalized() -> None:
    text = (
        "# Protobuf Python Version: 7.35.1\n"
        "_runtime_version.ValidateProtobufRuntimeVersion(\n    _runtime_version.Domain.PUBLIC,\n    7,\n    35,\n"
        "    1,\n    '',\n    'nebius/compute/v1/instance.proto'\n)\n"
        "GRPC_GENERATED_VERSION = '1.85.1'\n"
    )
    newer = text.replace("7.35.1", "8.0.0").replace("    7,\n    35,\n    1,", "    8,\n    0,\n    0,").replace(
        "1.85.1", "1.99.0")
    assert protogen.normalize_version_stamps(text) == protogen.normalize_version_stamps(newer)
    assert protogen.normalize_version_stamps(text) != protogen.normalize_version_stamps(text.replace("instance", "x"))
    assert "1.85.1" not in protogen.normalize_version_stamps(text)


def test_imports_rewritten_and_descriptor_names_kept() -> None:
    src = (protogen.DEFAULT_OUT / "nebius/compute/v1/instance_service_pb2_grpc.py").read_text()
    assert "from vmops._gen.nebius.compute.v1 import instance_service_pb2" in src
    assert "\nfrom nebius." not in src
    from vmops._gen.nebius.compute.v1 import instance_pb2, instance_service_pb2

    assert instance_pb2.DESCRIPTOR.name == "nebius/compute/v1/instance.proto"
    assert [d.name for d in instance_pb2.DESCRIPTOR.dependencies] == ["google/protobuf/timestamp.proto"]
    assert instance_service_pb2.DESCRIPTOR.name == "nebius/compute/v1/instance_service.proto"
    assert [d.name for d in instance_service_pb2.DESCRIPTOR.dependencies] == ["nebius/compute/v1/instance.proto"]
    assert instance_pb2.DESCRIPTOR.package == "nebius.compute.v1"


def test_wire_contract_numbers_types_and_enums() -> None:
    from google.protobuf.descriptor import FieldDescriptor as F

    from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
    from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc

    def fields(msg: object) -> dict[str, tuple[int, int, bool]]:
        d = msg.DESCRIPTOR  # type: ignore[attr-defined]
        return {f.name: (f.number, f.type, f.is_repeated) for f in d.fields}

    assert fields(pb.ResourceMetadata) == {
        "id": (1, F.TYPE_STRING, False), "parent_id": (2, F.TYPE_STRING, False), "name": (3, F.TYPE_STRING, False),
        "resource_version": (4, F.TYPE_INT64, False), "created_at": (5, F.TYPE_MESSAGE, False),
        "updated_at": (6, F.TYPE_MESSAGE, False), "labels": (7, F.TYPE_MESSAGE, True)}
    assert fields(pb.InstanceSpec) == {
        "resources": (1, F.TYPE_MESSAGE, False), "network_interfaces": (2, F.TYPE_MESSAGE, True),
        "boot_disk": (3, F.TYPE_MESSAGE, False), "cloud_init_user_data": (4, F.TYPE_STRING, False),
        "stopped": (5, F.TYPE_BOOL, False), "reservation_policy": (6, F.TYPE_MESSAGE, False)}
    assert fields(pb.InstanceStatus) == {
        "state": (1, F.TYPE_ENUM, False), "network_interfaces": (2, F.TYPE_MESSAGE, True),
        "reconciling": (3, F.TYPE_BOOL, False), "reservation_id": (4, F.TYPE_STRING, False)}
    assert fields(pb.ReservationStatus) == {
        "state": (1, F.TYPE_ENUM, False), "used_units": (2, F.TYPE_INT32, False),
        "available_units": (3, F.TYPE_INT32, False)}
    assert fields(pb.ReservationSpec)["total_units"] == (3, F.TYPE_INT32, False)
    assert fields(pb.ReservationPolicy) == {"policy": (1, F.TYPE_ENUM, False),
                                            "reservation_ids": (2, F.TYPE_STRING, True)}
    assert fields(svc.Operation) == {
        "id": (1, F.TYPE_STRING, False), "parent_id": (2, F.TYPE_STRING, False),
        "resource_id": (3, F.TYPE_STRING, False), "description": (4, F.TYPE_STRING, False),
        "done": (5, F.TYPE_BOOL, False), "metadata": (6, F.TYPE_MESSAGE, False)}
    assert fields(svc.ListInstancesRequest) == {"parent_id": (1, F.TYPE_STRING, False),
                                                "page_size": (2, F.TYPE_INT32, False),
                                                "page_token": (3, F.TYPE_STRING, False)}
    assert dict(pb.InstanceState.items()) == {"STATE_UNSPECIFIED": 0, "CREATING": 1, "RUNNING": 2, "STOPPING": 3,
                                              "STOPPED": 4, "STARTING": 5, "DELETING": 6, "ERROR": 7}
    assert dict(pb.ReservationPolicyType.items()) == {"AUTO": 0, "FORBID": 1, "STRICT": 2}
    assert dict(pb.ReservationState.items()) == {"RESERVATION_STATE_UNSPECIFIED": 0, "RESERVATION_ACTIVE": 1,
                                                 "RESERVATION_EXPIRED": 2, "RESERVATION_PENDING": 3}
    services = svc.DESCRIPTOR.services_by_name
    assert {m.name: (m.input_type.name, m.output_type.name) for m in services["InstanceService"].methods} == {
        "Get": ("GetInstanceRequest", "Instance"), "List": ("ListInstancesRequest", "ListInstancesResponse"),
        "Create": ("CreateInstanceRequest", "Operation"), "Delete": ("DeleteInstanceRequest", "Operation"),
        "Start": ("StartInstanceRequest", "Operation"), "Stop": ("StopInstanceRequest", "Operation")}
    assert {m.name: (m.input_type.name, m.output_type.name) for m in services["ReservationService"].methods} == {
        "Get": ("GetReservationRequest", "Reservation"),
        "List": ("ListReservationsRequest", "ListReservationsResponse")}


def test_cloud_stubs_follow_the_public_api_numbers_and_coexist_with_the_reference() -> None:
    """The cloud dialect's stubs (../shared/cloud-apis.md section 3.8) load beside the reference ones, in their
    own descriptor pool, with the official field numbers."""
    from google.protobuf.descriptor import FieldDescriptor as F

    from vmops._gen.cloud._pool import POOL
    from vmops._gen.cloud.nebius.common.v1 import error_pb2, operation_pb2
    from vmops._gen.cloud.nebius.compute.v1 import disk_pb2, instance_pb2, instance_service_pb2
    from vmops._gen.cloud.nebius.iam.v1 import token_service_pb2
    from vmops._gen.nebius.compute.v1 import instance_pb2 as reference

    def numbers(msg: object) -> dict[str, int]:
        return {f.name: f.number for f in msg.DESCRIPTOR.fields}  # type: ignore[attr-defined]

    assert instance_pb2.Instance.DESCRIPTOR.full_name == reference.Instance.DESCRIPTOR.full_name
    assert instance_pb2.Instance.DESCRIPTOR.file.pool is POOL
    assert numbers(instance_pb2.InstanceSpec) == {
        "service_account_id": 1, "resources": 2, "gpu_cluster": 3, "network_interfaces": 4, "boot_disk": 5,
        "secondary_disks": 6, "cloud_init_user_data": 8, "stopped": 13, "recovery_policy": 15, "preemptible": 19,
        "hostname": 20, "reservation_policy": 23}
    assert numbers(instance_pb2.InstanceStatus) == {"state": 1, "network_interfaces": 2, "reconciling": 5,
                                                    "maintenance_event_id": 7, "reservation_id": 12,
                                                    "disk_attachments": 13}
    assert dict(instance_pb2.InstanceStatus.InstanceState.items()) == {
        "UNSPECIFIED": 0, "CREATING": 1, "UPDATING": 2, "STARTING": 3, "RUNNING": 4, "STOPPING": 5, "STOPPED": 6,
        "DELETING": 7, "ERROR": 8}
    assert numbers(instance_pb2.AttachedDiskSpec) == {"attach_mode": 1, "existing_disk": 2, "device_id": 3,
                                                      "managed_disk": 4}
    assert numbers(operation_pb2.Operation) == {"id": 1, "description": 2, "created_at": 3, "created_by": 4,
                                                "finished_at": 5, "request": 6, "resource_id": 7, "status": 10}
    assert numbers(disk_pb2.DiskSpec)["source_image_family"] == 10
    assert numbers(disk_pb2.DiskStatus)["managed_by"] == 12
    assert numbers(error_pb2.ServiceError)["retry_type"] == 30
    assert numbers(error_pb2.ServiceError)["not_enough_resources"] == 142
    assert numbers(token_service_pb2.CreateTokenResponse) == {"access_token": 1, "issued_token_type": 2,
                                                              "token_type": 3, "expires_in": 4, "scopes": 5}
    lists = instance_service_pb2.ListInstancesRequest.DESCRIPTOR.fields_by_name
    assert lists["page_size"].type == F.TYPE_INT64
    methods = {m.name for m in instance_service_pb2.DESCRIPTOR.services_by_name["InstanceService"].methods}
    assert methods >= {"Get", "GetByName", "List", "Create", "Delete", "Start", "Stop"}


def test_image_and_project_stubs_follow_the_official_descriptors() -> None:
    """ImageService and ProjectService (outside cloud-apis.md's subset): the numbers of the official serialized
    descriptors (the `nebius` PyPI package 0.6.29, generated from github.com/nebius/api), copied by hand."""
    from vmops._gen.cloud._pool import POOL
    from vmops._gen.cloud.nebius.compute.v1 import image_pb2, image_service_pb2
    from vmops._gen.cloud.nebius.iam.v1 import container_pb2, project_service_pb2

    def numbers(msg: object) -> dict[str, int]:
        return {f.name: f.number for f in msg.DESCRIPTOR.fields}  # type: ignore[attr-defined]

    assert image_pb2.Image.DESCRIPTOR.file.pool is POOL
    assert numbers(image_pb2.Image) == {"metadata": 1, "spec": 2, "status": 3}
    assert numbers(image_pb2.ImageSpec) == {"description": 1, "image_family": 2, "version": 3, "cpu_architecture": 6,
                                            "image_family_human_readable": 7, "recommended_platforms": 8}
    assert numbers(image_pb2.ImageStatus) == {"state": 1, "state_description": 2, "storage_size_bytes": 3,
                                              "min_disk_size_bytes": 4, "reconciling": 5}
    assert dict(image_pb2.ImageStatus.State.items()) == {"UNSPECIFIED": 0, "CREATING": 1, "READY": 2,
                                                         "UPDATING": 3, "DELETING": 4, "ERROR": 5}
    assert numbers(image_service_pb2.GetImageLatestByFamilyRequest) == {"image_family": 1, "parent_id": 2}
    assert numbers(image_service_pb2.ListPublicRequest) == {"region": 1, "page_size": 2, "page_token": 3}
    assert numbers(image_service_pb2.ListImagesResponse) == {"items": 1, "next_page_token": 2}
    service = image_service_pb2.DESCRIPTOR.services_by_name["ImageService"]
    assert service.full_name == "nebius.compute.v1.ImageService"
    assert {m.name: (m.input_type.name, m.output_type.name) for m in service.methods} == {
        "GetLatestByFamily": ("GetImageLatestByFamilyRequest", "Image"),
        "ListPublic": ("ListPublicRequest", "ListImagesResponse")}
    assert numbers(container_pb2.ContainerStatus) == {"region": 4}
    assert numbers(project_service_pb2.GetProjectRequest) == {"id": 1}
