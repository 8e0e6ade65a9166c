from vmops._gen.cloud.nebius.iam.v1 import token_service_pb2 as _token_service_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
