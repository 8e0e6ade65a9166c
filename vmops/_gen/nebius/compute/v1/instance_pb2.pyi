import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReservationPolicyType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTO: _ClassVar[ReservationPolicyType]
    FORBID: _ClassVar[ReservationPolicyType]
    STRICT: _ClassVar[ReservationPolicyType]

class InstanceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_UNSPECIFIED: _ClassVar[InstanceState]
    CREATING: _ClassVar[InstanceState]
    RUNNING: _ClassVar[InstanceState]
    STOPPING: _ClassVar[InstanceState]
    STOPPED: _ClassVar[InstanceState]
    STARTING: _ClassVar[InstanceState]
    DELETING: _ClassVar[InstanceState]
    ERROR: _ClassVar[InstanceState]

class ReservationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATE_UNSPECIFIED: _ClassVar[ReservationState]
    RESERVATION_ACTIVE: _ClassVar[ReservationState]
    RESERVATION_EXPIRED: _ClassVar[ReservationState]
    RESERVATION_PENDING: _ClassVar[ReservationState]
AUTO: ReservationPolicyType
FORBID: ReservationPolicyType
STRICT: ReservationPolicyType
STATE_UNSPECIFIED: InstanceState
CREATING: InstanceState
RUNNING: InstanceState
STOPPING: InstanceState
STOPPED: InstanceState
STARTING: InstanceState
DELETING: InstanceState
ERROR: InstanceState
RESERVATION_STATE_UNSPECIFIED: ReservationState
RESERVATION_ACTIVE: ReservationState
RESERVATION_EXPIRED: ReservationState
RESERVATION_PENDING: ReservationState

class Instance(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: ResourceMetadata
    spec: InstanceSpec
    status: InstanceStatus
    def __init__(self, metadata: _Optional[_Union[ResourceMetadata, _Mapping]] = ..., spec: _Optional[_Union[InstanceSpec, _Mapping]] = ..., status: _Optional[_Union[InstanceStatus, _Mapping]] = ...) -> None: ...

class ResourceMetadata(_message.Message):
    __slots__ = ("id", "parent_id", "name", "resource_version", "created_at", "updated_at", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    parent_id: str
    name: str
    resource_version: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., parent_id: _Optional[str] = ..., name: _Optional[str] = ..., resource_version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class InstanceSpec(_message.Message):
    __slots__ = ("resources", "network_interfaces", "boot_disk", "cloud_init_user_data", "stopped", "reservation_policy")
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_INTERFACES_FIELD_NUMBER: _ClassVar[int]
    BOOT_DISK_FIELD_NUMBER: _ClassVar[int]
    CLOUD_INIT_USER_DATA_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    resources: ResourcesSpec
    network_interfaces: _containers.RepeatedCompositeFieldContainer[NetworkInterfaceSpec]
    boot_disk: AttachedDiskSpec
    cloud_init_user_data: str
    stopped: bool
    reservation_policy: ReservationPolicy
    def __init__(self, resources: _Optional[_Union[ResourcesSpec, _Mapping]] = ..., network_interfaces: _Optional[_Iterable[_Union[NetworkInterfaceSpec, _Mapping]]] = ..., boot_disk: _Optional[_Union[AttachedDiskSpec, _Mapping]] = ..., cloud_init_user_data: _Optional[str] = ..., stopped: _Optional[bool] = ..., reservation_policy: _Optional[_Union[ReservationPolicy, _Mapping]] = ...) -> None: ...

class ResourcesSpec(_message.Message):
    __slots__ = ("platform", "preset")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    platform: str
    preset: str
    def __init__(self, platform: _Optional[str] = ..., preset: _Optional[str] = ...) -> None: ...

class NetworkInterfaceSpec(_message.Message):
    __slots__ = ("name", "subnet_id", "ip_address")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBNET_ID_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    subnet_id: str
    ip_address: str
    def __init__(self, name: _Optional[str] = ..., subnet_id: _Optional[str] = ..., ip_address: _Optional[str] = ...) -> None: ...

class AttachedDiskSpec(_message.Message):
    __slots__ = ("existing_disk_id", "attach_mode")
    EXISTING_DISK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACH_MODE_FIELD_NUMBER: _ClassVar[int]
    existing_disk_id: str
    attach_mode: str
    def __init__(self, existing_disk_id: _Optional[str] = ..., attach_mode: _Optional[str] = ...) -> None: ...

class ReservationPolicy(_message.Message):
    __slots__ = ("policy", "reservation_ids")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_IDS_FIELD_NUMBER: _ClassVar[int]
    policy: ReservationPolicyType
    reservation_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, policy: _Optional[_Union[ReservationPolicyType, str]] = ..., reservation_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class InstanceStatus(_message.Message):
    __slots__ = ("state", "network_interfaces", "reconciling", "reservation_id")
    STATE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_INTERFACES_FIELD_NUMBER: _ClassVar[int]
    RECONCILING_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    state: InstanceState
    network_interfaces: _containers.RepeatedCompositeFieldContainer[NetworkInterfaceStatus]
    reconciling: bool
    reservation_id: str
    def __init__(self, state: _Optional[_Union[InstanceState, str]] = ..., network_interfaces: _Optional[_Iterable[_Union[NetworkInterfaceStatus, _Mapping]]] = ..., reconciling: _Optional[bool] = ..., reservation_id: _Optional[str] = ...) -> None: ...

class NetworkInterfaceStatus(_message.Message):
    __slots__ = ("name", "ip_address", "public_ip_address")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    ip_address: str
    public_ip_address: str
    def __init__(self, name: _Optional[str] = ..., ip_address: _Optional[str] = ..., public_ip_address: _Optional[str] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: ResourceMetadata
    spec: ReservationSpec
    status: ReservationStatus
    def __init__(self, metadata: _Optional[_Union[ResourceMetadata, _Mapping]] = ..., spec: _Optional[_Union[ReservationSpec, _Mapping]] = ..., status: _Optional[_Union[ReservationStatus, _Mapping]] = ...) -> None: ...

class ReservationSpec(_message.Message):
    __slots__ = ("platform", "preset", "total_units")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_UNITS_FIELD_NUMBER: _ClassVar[int]
    platform: str
    preset: str
    total_units: int
    def __init__(self, platform: _Optional[str] = ..., preset: _Optional[str] = ..., total_units: _Optional[int] = ...) -> None: ...

class ReservationStatus(_message.Message):
    __slots__ = ("state", "used_units", "available_units")
    STATE_FIELD_NUMBER: _ClassVar[int]
    USED_UNITS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_UNITS_FIELD_NUMBER: _ClassVar[int]
    state: ReservationState
    used_units: int
    available_units: int
    def __init__(self, state: _Optional[_Union[ReservationState, str]] = ..., used_units: _Optional[int] = ..., available_units: _Optional[int] = ...) -> None: ...
