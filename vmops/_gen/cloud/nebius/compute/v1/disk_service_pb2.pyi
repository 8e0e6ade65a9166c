from vmops._gen.cloud.nebius.common.v1 import metadata_pb2 as _metadata_pb2
from vmops._gen.cloud.nebius.common.v1 import operation_pb2 as _operation_pb2
from vmops._gen.cloud.nebius.common.v1 import operation_service_pb2 as _operation_service_pb2
from vmops._gen.cloud.nebius.compute.v1 import disk_pb2 as _disk_pb2
from vmops._gen.cloud.nebius.compute.v1 import operation_service_pb2 as _operation_service_pb2_1
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDiskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListDisksRequest(_message.Message):
    __slots__ = ("parent_id", "page_size", "page_token")
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent_id: str
    page_size: int
    page_token: str
    def __init__(self, parent_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDisksResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_disk_pb2.Disk]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[_disk_pb2.Disk, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateDiskRequest(_message.Message):
    __slots__ = ("metadata", "spec")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    metadata: _metadata_pb2.ResourceMetadata
    spec: _disk_pb2.DiskSpec
    def __init__(self, metadata: _Optional[_Union[_metadata_pb2.ResourceMetadata, _Mapping]] = ..., spec: _Optional[_Union[_disk_pb2.DiskSpec, _Mapping]] = ...) -> None: ...

class UpdateDiskRequest(_message.Message):
    __slots__ = ("metadata", "spec")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    metadata: _metadata_pb2.ResourceMetadata
    spec: _disk_pb2.DiskSpec
    def __init__(self, metadata: _Optional[_Union[_metadata_pb2.ResourceMetadata, _Mapping]] = ..., spec: _Optional[_Union[_disk_pb2.DiskSpec, _Mapping]] = ...) -> None: ...

class DeleteDiskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
