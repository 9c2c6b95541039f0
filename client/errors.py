"""Errors the SDK raises.

ClientError            base; `code` is the gRPC status the server answered with
├── NotFound           no such model, version or sample
├── InvalidArgument    the server refused a value (its message names it)
├── Conflict           lease taken by someone else, or a different label exists
└── Unavailable        the server cannot be reached or is shutting down
"""

from __future__ import annotations

import grpc


class ClientError(Exception):
    """A call failed; `code` is the gRPC status, the message is the server's."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class NotFound(ClientError):
    pass


class InvalidArgument(ClientError):
    pass


class Conflict(ClientError):
    pass


class Unavailable(ClientError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: Conflict,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def from_rpc_error(error: grpc.RpcError) -> ClientError:
    """The SDK error for a failed call."""
    code = error.code() if isinstance(error, grpc.Call) else None
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    kind = _BY_CODE.get(code, ClientError) if code is not None else ClientError
    return kind(f"{details} ({code.name if code else 'no status'})", code)
