from activeserve.proto import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionInfo(_message.Message):
    __slots__ = ("model_name", "version", "serving", "metadata_json")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    serving: bool
    metadata_json: str
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., serving: _Optional[bool] = ..., metadata_json: _Optional[str] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("model_name",)
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    def __init__(self, model_name: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "serving_version")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[VersionInfo]
    serving_version: int
    def __init__(self, versions: _Optional[_Iterable[_Union[VersionInfo, _Mapping]]] = ..., serving_version: _Optional[int] = ...) -> None: ...

class FetchVersionRequest(_message.Message):
    __slots__ = ("model_name", "version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("file_name", "data", "version")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    data: bytes
    version: int
    def __init__(self, file_name: _Optional[str] = ..., data: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class PublishHeader(_message.Message):
    __slots__ = ("model_name", "parent_version", "metadata_json", "probe_input", "probe_expected", "probe_atol", "sha256")
    class Sha256Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    PROBE_INPUT_FIELD_NUMBER: _ClassVar[int]
    PROBE_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    PROBE_ATOL_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    parent_version: int
    metadata_json: str
    probe_input: _tensor_pb2.Tensor
    probe_expected: _tensor_pb2.Tensor
    probe_atol: float
    sha256: _containers.ScalarMap[str, str]
    def __init__(self, model_name: _Optional[str] = ..., parent_version: _Optional[int] = ..., metadata_json: _Optional[str] = ..., probe_input: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., probe_expected: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., probe_atol: _Optional[float] = ..., sha256: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PublishChunk(_message.Message):
    __slots__ = ("header", "file")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    header: PublishHeader
    file: FileChunk
    def __init__(self, header: _Optional[_Union[PublishHeader, _Mapping]] = ..., file: _Optional[_Union[FileChunk, _Mapping]] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("version", "probe_max_abs_diff")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROBE_MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    version: int
    probe_max_abs_diff: float
    def __init__(self, version: _Optional[int] = ..., probe_max_abs_diff: _Optional[float] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("model_name", "version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...
