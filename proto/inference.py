"""The Open Inference Protocol's messages and service, from a private descriptor pool.

Why a private pool: protobuf registers every generated `_pb2` module in one default
descriptor pool per process and refuses a second file that defines the same symbols
("duplicate symbol"). tritonclient ships its own `inference.*` definitions in that pool,
so a generated copy of ours would break every application that imports both. Loading
`inference.binpb` (made by `scripts/generate_proto.py` from `inference.proto`) into a
pool of our own gives message classes with the published names and field numbers that
never meet tritonclient's, in either import order. On the wire the two are identical.

The service itself needs no descriptor at run time: gRPC routes by method path, so the
server registers handlers and the client builds stubs from `METHODS` below.

Message classes are built at import and typed `Any`, because they have no generated
stubs; their fields are those of `inference.proto`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE_NAME = "inference.GRPCInferenceService"
DESCRIPTOR_RESOURCE = "inference.binpb"


def _load_pool() -> descriptor_pool.DescriptorPool:
    data = resources.files(__package__).joinpath(DESCRIPTOR_RESOURCE).read_bytes()
    file_set = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for file_proto in file_set.file:
        pool.Add(file_proto)
    return pool


POOL = _load_pool()
FILE_NAME = "activeserve/proto/inference.proto"


def _message(name: str) -> Any:
    descriptor = POOL.FindMessageTypeByName(f"inference.{name}")
    return message_factory.GetMessageClass(descriptor)


ServerLiveRequest: Any = _message("ServerLiveRequest")
ServerLiveResponse: Any = _message("ServerLiveResponse")
ServerReadyRequest: Any = _message("ServerReadyRequest")
ServerReadyResponse: Any = _message("ServerReadyResponse")
ModelReadyRequest: Any = _message("ModelReadyRequest")
ModelReadyResponse: Any = _message("ModelReadyResponse")
ServerMetadataRequest: Any = _message("ServerMetadataRequest")
ServerMetadataResponse: Any = _message("ServerMetadataResponse")
ModelMetadataRequest: Any = _message("ModelMetadataRequest")
ModelMetadataResponse: Any = _message("ModelMetadataResponse")
InferParameter: Any = _message("InferParameter")
InferTensorContents: Any = _message("InferTensorContents")
ModelInferRequest: Any = _message("ModelInferRequest")
ModelInferResponse: Any = _message("ModelInferResponse")
RepositoryIndexRequest: Any = _message("RepositoryIndexRequest")
RepositoryIndexResponse: Any = _message("RepositoryIndexResponse")
RepositoryModelLoadRequest: Any = _message("RepositoryModelLoadRequest")
RepositoryModelLoadResponse: Any = _message("RepositoryModelLoadResponse")
RepositoryModelUnloadRequest: Any = _message("RepositoryModelUnloadRequest")
RepositoryModelUnloadResponse: Any = _message("RepositoryModelUnloadResponse")


@dataclass(frozen=True)
class Method:
    """One unary RPC of the service: its name and message classes."""

    name: str
    request: Any
    response: Any

    @property
    def path(self) -> str:
        return f"/{SERVICE_NAME}/{self.name}"


METHODS: tuple[Method, ...] = (
    Method("ServerLive", ServerLiveRequest, ServerLiveResponse),
    Method("ServerReady", ServerReadyRequest, ServerReadyResponse),
    Method("ModelReady", ModelReadyRequest, ModelReadyResponse),
    Method("ServerMetadata", ServerMetadataRequest, ServerMetadataResponse),
    Method("ModelMetadata", ModelMetadataRequest, ModelMetadataResponse),
    Method("ModelInfer", ModelInferRequest, ModelInferResponse),
    Method("RepositoryIndex", RepositoryIndexRequest, RepositoryIndexResponse),
    Method(
        "RepositoryModelLoad", RepositoryModelLoadRequest, RepositoryModelLoadResponse
    ),
    Method(
        "RepositoryModelUnload",
        RepositoryModelUnloadRequest,
        RepositoryModelUnloadResponse,
    ),
)


def add_servicer(server: Any, handlers: Mapping[str, Callable[..., Any]]) -> None:
    """Register `handlers` (method name -> `async def handler(request, context)` or a
    plain function) for the service on a `grpc.Server` or `grpc.aio.Server`.

    Methods of `METHODS` missing from `handlers` are left unregistered, so gRPC answers
    them UNIMPLEMENTED, like every RPC this module does not define.
    """
    unknown = set(handlers) - {method.name for method in METHODS}
    if unknown:
        raise ValueError(
            f"no such method in {SERVICE_NAME}: {sorted(unknown)!r}; "
            f"expected some of {[method.name for method in METHODS]!r}"
        )

    method_handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            handlers[method.name],
            request_deserializer=method.request.FromString,
            response_serializer=_serialize,
        )
        for method in METHODS
        if method.name in handlers
    }
    # Registered methods take gRPC's faster lookup path; the generic handler is what
    # older servers and some interceptors expect.
    generic = grpc.method_handlers_generic_handler(SERVICE_NAME, method_handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(SERVICE_NAME, method_handlers)


def _serialize(response: Any) -> bytes:
    # A handler may answer with bytes it has already encoded (ModelInfer does).
    if type(response) is bytes:
        return response
    encoded: bytes = response.SerializeToString()
    return encoded


class InferenceStub:
    """Client stub: one callable attribute per method, e.g. `stub.ModelInfer(request)`.

    Works with `grpc.Channel` (blocking calls) and `grpc.aio.Channel` (awaitables).
    """

    def __init__(self, channel: grpc.Channel | grpc.aio.Channel) -> None:
        for method in METHODS:
            callable_ = channel.unary_unary(
                method.path,
                request_serializer=method.request.SerializeToString,
                response_deserializer=method.response.FromString,
                _registered_method=True,
            )
            setattr(self, method.name, callable_)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names __init__ did not set: a clear error, not a KeyError.
        raise AttributeError(
            f"{SERVICE_NAME} has no method {name!r}; "
            f"expected one of {[method.name for method in METHODS]!r}"
        )
