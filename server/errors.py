"""The server's errors, and the one table that maps every error to a gRPC status.

    ServerError           base; carries its gRPC status code
    ├── ModelNotFound     NOT_FOUND: no such model or version
    ├── InvalidRequest    INVALID_ARGUMENT: a request that cannot be served
    ├── ModelUnavailable  UNAVAILABLE: known model, not loaded, or shutting down
    ├── ModelLoadError    FAILED_PRECONDITION: a version that cannot be loaded
    ├── PublishRejected   FAILED_PRECONDITION: an upload that fails its checks
    └── RollbackRefused   FAILED_PRECONDITION: no version to roll back to

Errors raised by other packages (`activeserve.core`, the codec, the queue store) are
mapped in `status_of` below and nowhere else; handlers raise, the service layer
converts.
"""

from __future__ import annotations

import logging

import grpc

from activeserve.core.errors import ConfigError, CoreError
from activeserve.proto.codec import TensorError

logger = logging.getLogger(__name__)


class ServerError(Exception):
    """Base of the server's errors; `code` is the gRPC status it becomes."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class ModelNotFound(ServerError):
    code = grpc.StatusCode.NOT_FOUND


class InvalidRequest(ServerError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class ModelUnavailable(ServerError):
    code = grpc.StatusCode.UNAVAILABLE


class ModelLoadError(ServerError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PublishRejected(ServerError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class RollbackRefused(ServerError):
    code = grpc.StatusCode.FAILED_PRECONDITION


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and message that `error` is answered with."""
    if isinstance(error, ServerError):
        return error.code, str(error)
    if isinstance(error, TensorError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, ConfigError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(error)
    if isinstance(error, CoreError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)

    store_status = _store_status(error)
    if store_status is not None:
        return store_status

    # Anything else is a bug: log it whole, tell the caller little.
    logger.exception("unexpected error while serving a request", exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}"


def _store_status(error: BaseException) -> tuple[grpc.StatusCode, str] | None:
    from activeserve.server.queue import errors as store

    table: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
        (store.SampleNotFound, grpc.StatusCode.NOT_FOUND),
        (store.InvalidLabel, grpc.StatusCode.INVALID_ARGUMENT),
        (store.InvalidSample, grpc.StatusCode.INVALID_ARGUMENT),
        (store.InvalidStoreURL, grpc.StatusCode.FAILED_PRECONDITION),
        (store.LeaseConflict, grpc.StatusCode.FAILED_PRECONDITION),
        (store.LabelConflict, grpc.StatusCode.ALREADY_EXISTS),
        (store.StoreError, grpc.StatusCode.UNAVAILABLE),
    )
    for kind, code in table:
        if isinstance(error, kind):
            return code, str(error)
    return None
