"""Turns exceptions raised by a handler into the gRPC status `status_of` names."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from activeserve.server.errors import status_of

_Response = TypeVar("_Response")


def unary(
    handler: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[_Response]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[_Response]]:
    """Wrap a unary handler so that its errors reach the caller as gRPC statuses."""

    @functools.wraps(handler)
    async def guarded(
        self: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> _Response:
        try:
            return await handler(self, request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as error:
            code, message = status_of(error)
            await context.abort(code, message)
            raise  # unreachable: abort raises

    return guarded


def streaming(
    handler: Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[_Response]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[_Response]]:
    """Wrap a server-streaming (or stream-stream) handler the same way."""

    @functools.wraps(handler)
    async def guarded(
        self: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[_Response]:
        try:
            async for item in handler(self, request, context):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as error:
            code, message = status_of(error)
            await context.abort(code, message)

    return guarded
