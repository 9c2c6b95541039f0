"""The Models service (`activeserve.v1.Models`): list, fetch, publish and roll back
versions.

The trainer uses FetchVersion to continue from the served version (its weights, and
the model's config.toml for its [training] settings) and Publish to hand back a new
one; operators use ListVersions and Rollback. File reads run in worker threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from activeserve.proto import models_pb2, models_pb2_grpc
from activeserve.server.publishing import Publisher
from activeserve.server.registry import ModelRegistry
from activeserve.server.repository import (
    CONFIG_FILE,
    METADATA_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
)
from activeserve.server.services.guard import streaming, unary

logger = logging.getLogger(__name__)

# Well under the default 4 MiB gRPC message limit of any client.
FETCH_CHUNK_BYTES = 1024 * 1024
VERSION_FILES = (MODEL_FILE, WEIGHTS_FILE, METADATA_FILE)


class ModelsService(models_pb2_grpc.ModelsServicer):
    """Handlers of `activeserve.v1.Models` over a registry and its repository."""

    def __init__(self, registry: ModelRegistry, publisher: Publisher) -> None:
        self._registry = registry
        self._repository = registry.repository
        self._publisher = publisher

    def add_to(self, server: grpc.aio.Server) -> None:
        models_pb2_grpc.add_ModelsServicer_to_server(self, server)

    @unary
    async def ListVersions(self, request: Any, context: Any) -> Any:
        name = request.model_name
        infos = await asyncio.to_thread(self._version_infos, name)
        served = self._registry.serving().get(name)
        serving = served.version if served is not None else 0
        response = models_pb2.ListVersionsResponse(serving_version=serving)
        for version, metadata_json in infos:
            response.versions.add(
                model_name=name,
                version=version,
                serving=version == serving,
                metadata_json=metadata_json,
            )
        return response

    @streaming
    async def FetchVersion(self, request: Any, context: Any) -> AsyncIterator[Any]:
        name = request.model_name
        version = request.version or await self._serving_version(name)
        folder = await asyncio.to_thread(self._repository.version_dir, name, version)
        paths = [folder / file_name for file_name in VERSION_FILES]
        # The model's config.toml rides along: a trainer on another machine reads
        # its [training] and [uncertainty] tables from it.
        paths.append(self._repository.model_dir(name) / CONFIG_FILE)

        for path in paths:
            offset = 0
            while (
                data := await asyncio.to_thread(_read_chunk, path, offset)
            ) is not None:
                yield models_pb2.FileChunk(
                    file_name=path.name, data=data, version=version
                )
                offset += len(data)
                if len(data) < FETCH_CHUNK_BYTES:
                    break
        logger.info("model %s version %d fetched by %s", name, version, context.peer())

    @unary
    async def Publish(self, request_iterator: Any, context: Any) -> Any:
        outcome = await self._publisher.publish(request_iterator)
        return models_pb2.PublishResponse(
            version=outcome.version, probe_max_abs_diff=outcome.probe_max_abs_diff
        )

    @unary
    async def Rollback(self, request: Any, context: Any) -> Any:
        model = await self._registry.rollback(request.model_name, request.version)
        return models_pb2.RollbackResponse(version=model.version)

    async def _serving_version(self, name: str) -> int:
        served = self._registry.serving().get(name)
        if served is not None:
            return served.version
        # Not loaded (it failed to): the newest on disk is what would serve.
        return await asyncio.to_thread(self._repository.latest, name)

    def _version_infos(self, name: str) -> list[tuple[int, str]]:
        return [
            (version, json.dumps(self._repository.metadata(name, version)))
            for version in self._repository.versions(name)
        ]


def _read_chunk(path: Path, offset: int) -> bytes | None:
    """Up to `FETCH_CHUNK_BYTES` of the file from `offset` (empty at its end); None
    when the file does not exist."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            return file.read(FETCH_CHUNK_BYTES)
    except FileNotFoundError:
        return None
