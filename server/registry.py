"""Which model versions are loaded, which one each model serves, and swapping them.

A version is loaded (ONNX Runtime session built, a warm-up batch run) off the request
path, in a worker thread, and only then made the one served: the swap itself is one
assignment, so a request sees either the old version or the new one, never neither.
Requests already running keep the `LoadedModel` they started with until they finish;
the old version's batcher drains and its session is freed with its last reference.

Versions other than the served one load on first request and stay loaded, at most
`max_loaded_versions` of them per model (least recently used unloaded first).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activeserve.core.config import ModelConfig
from activeserve.server.errors import InvalidRequest, ModelUnavailable
from activeserve.server.repository import ModelRepository
from activeserve.server.runtime.model import LoadedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    state: str
    reason: str


class ModelRegistry:
    """Loaded models by name and version; every method runs on the event loop."""

    def __init__(
        self,
        repository: ModelRepository,
        executor: Executor | None,
        *,
        max_loaded_versions: int = 2,
    ) -> None:
        self.repository = repository
        self._executor = executor
        self._max_loaded_versions = max_loaded_versions
        self._serving: dict[str, LoadedModel] = {}
        self._others: dict[str, collections.OrderedDict[int, LoadedModel]] = {}
        self._failures: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    @property
    def providers(self) -> list[str]:
        """Execution providers the served models run on, as ONNX Runtime reports."""
        return sorted({model.session.provider for model in self._serving.values()})

    def serving(self) -> dict[str, LoadedModel]:
        return dict(self._serving)

    async def load_all(self) -> None:
        """Load the newest version of every model in the repository."""
        for name in self.repository.models():
            try:
                await self.load(name)
            except Exception as error:
                # One broken model must not keep the others from serving.
                self._failures[name] = str(error)
                logger.error("model %s not loaded: %s", name, error)

    async def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Load `version` (default: the newest) of `name` and serve it."""
        async with self._locks[name]:
            if version is None:
                version = self.repository.latest(name)
            model = await self._build(name, version)
            old = self._serving.get(name)
            self._serving[name] = model
            self._failures.pop(name, None)

        if old is not None and old is not model:
            logger.info(
                "model %s: now serving version %d (was %d)", name, version, old.version
            )
            self._retire(name, old)
        return model

    async def unload(self, name: str) -> None:
        self.repository.model_dir(name)
        async with self._locks[name]:
            old = self._serving.pop(name, None)
            others = self._others.pop(name, {})
        for model in [old, *others.values()]:
            if model is not None:
                await model.close()
        logger.info("model %s unloaded", name)

    async def get(self, name: str, version: str = "") -> LoadedModel:
        """The model to serve a request for `name` at `version` ("" = served one)."""
        served = self._serving.get(name)
        if not version:
            if served is None:
                raise self._not_serving(name)
            return served

        number = _parse_version(version)
        if served is not None and served.version == number:
            return served
        cached = self._others.get(name, {}).get(number)
        if cached is not None:
            self._others[name].move_to_end(number)
            return cached

        if served is None:
            raise self._not_serving(name)
        self.repository.version_dir(name, number)
        async with self._locks[name]:
            others = self._others.setdefault(name, collections.OrderedDict())
            if number not in others:
                others[number] = await self._build(name, number)
                while len(others) > self._max_loaded_versions:
                    _, evicted = others.popitem(last=False)
                    await evicted.close()
            return others[number]

    def is_ready(self, name: str, version: str = "") -> bool:
        served = self._serving.get(name)
        if served is None:
            return False
        if not version:
            return True
        number = _parse_version(version)
        return served.version == number or number in self._others.get(name, {})

    def index(self) -> list[IndexEntry]:
        entries = []
        for name in self.repository.models():
            served = self._serving.get(name)
            for version in self.repository.versions(name):
                loaded = (served is not None and served.version == version) or (
                    version in self._others.get(name, {})
                )
                reason = self._failures.get(name, "") if not loaded else ""
                state = "READY" if loaded else "UNAVAILABLE"
                entries.append(IndexEntry(name, str(version), state, reason))
        return entries

    async def close(self) -> None:
        for name in list(self._serving):
            await self.unload(name)

    async def _build(self, name: str, version: int) -> LoadedModel:
        path = self.repository.version_dir(name, version)
        config = self.repository.config(name)
        # Building a session and the warm-up run are seconds of CPU: off the loop.
        return await asyncio.to_thread(
            _build_and_warm, name, version, path, config, self._executor
        )

    def _retire(self, name: str, old: LoadedModel) -> None:
        task = asyncio.get_running_loop().create_task(old.close())
        task.add_done_callback(
            lambda _: logger.info("model %s version %d retired", name, old.version)
        )

    def _not_serving(self, name: str) -> Exception:
        self.repository.model_dir(name)
        failure = self._failures.get(name)
        if failure:
            return ModelUnavailable(f"model {name!r} failed to load: {failure}")
        return ModelUnavailable(f"model {name!r} is not loaded; load it first")


def _build_and_warm(
    name: str,
    version: int,
    path: Path,
    config: ModelConfig,
    executor: Executor | None,
) -> LoadedModel:
    model = LoadedModel(name, version, path, config, executor=executor)
    # One run through the graph so that the first request does not pay for ONNX
    # Runtime's lazy initialisation. Inputs with free inner dimensions cannot be
    # invented, so those models start cold.
    shape = [1 if dim == -1 else dim for dim in model.input.shape]
    if all(dim > 0 for dim in shape) and -1 not in model.input.shape[1:]:
        warm = np.zeros(shape, dtype=model.input_dtype)
        model.session.run({model.input.name: warm})
    return model


def _parse_version(version: str) -> int:
    if not version.isdigit():
        raise InvalidRequest(
            f"model version {version!r} is not a version number; expected digits "
            "such as '3', or empty for the version being served"
        )
    return int(version)
