"""Which model versions are loaded, which one each model serves, and swapping them.

A version is loaded (ONNX Runtime session built, a warm-up batch run) off the request
path, in a worker thread, and only then made the one served (`swap_in`): the swap
itself is one assignment, so a request sees either the old version or the new one,
never neither. Requests already running keep the `LoadedModel` they started with until
they finish; the old version's batcher drains and its session is freed with its last
reference.

Every change of the served version (load, publish, rollback, a version dropped in by
hand) happens under the model's `lock`, so two of them never interleave. Publish,
rollback and adopting a new version record the choice in the repository's
`serving.json`, which `load_all` honours at start-up.

Versions other than the served one load on first request and stay loaded, at most
`max_loaded_versions` of them per model (least recently used unloaded first).
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from activeserve.core.config import ModelConfig
from activeserve.server.errors import (
    InvalidRequest,
    ModelUnavailable,
    RollbackRefused,
)
from activeserve.server.repository import ModelRepository, ServingChoice
from activeserve.server.runtime.model import LoadedModel

logger = logging.getLogger(__name__)

_NONE_LOADED: Mapping[int, LoadedModel] = {}


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
        # Per model, the highest version number accounted for: served, or passed
        # over by a choice made since (a rollback). Higher ones are new.
        self._newest_known: dict[str, int] = {}

    @property
    def providers(self) -> list[str]:
        """Execution providers the served models run on, as ONNX Runtime reports."""
        return sorted({model.session.provider for model in self._serving.values()})

    def serving(self) -> dict[str, LoadedModel]:
        return dict(self._serving)

    def lock(self, name: str) -> asyncio.Lock:
        """The lock every change of `name`'s served version holds."""
        return self._locks[name]

    def newest_known(self, name: str) -> int:
        """The highest version of `name` accounted for; 0 when none is."""
        return self._newest_known.get(name, 0)

    async def load_all(self) -> None:
        """Load every model in the repository: the version `serving.json` names, or
        the newest (see `activeserve.server.repository`)."""
        for name in self.repository.models():
            try:
                await self._load_at_start(name)
            except Exception as error:
                # One broken model must not keep the others from serving.
                self._failures[name] = str(error)
                logger.error("model %s not loaded: %s", name, error)

    async def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Load `version` (default: the newest) of `name` and serve it."""
        async with self._locks[name]:
            if version is None:
                version = self.repository.latest(name)
            model = await self._take_or_build(name, version)
            self.swap_in(model)
        return model

    def swap_in(self, model: LoadedModel) -> None:
        """Serve `model`, already built and warmed, from now on; the caller holds
        `lock(model.name)`. The version served before is retired: it finishes the
        calls in flight on it, then its batcher stops and its session is freed."""
        name = model.name
        old = self._serving.get(name)
        self._serving[name] = model
        self._failures.pop(name, None)
        self._newest_known[name] = max(self.newest_known(name), model.version)

        if old is not None and old is not model:
            logger.info(
                "model %s: now serving version %d (was %d)",
                name,
                model.version,
                old.version,
            )
            self._retire(name, old)

    async def build(
        self, name: str, version: int, path: Path, config: ModelConfig
    ) -> LoadedModel:
        """Build and warm `version` of `name` from the files in `path`, off the event
        loop, without serving it."""
        # Building a session and the warm-up run are seconds of CPU: off the loop.
        return await asyncio.to_thread(
            _build_and_warm, name, version, path, config, self._executor
        )

    async def record_serving(self, name: str) -> None:
        """Write the served version of `name` to `serving.json`; the caller holds
        `lock(name)`."""
        served = self._serving[name]
        choice = ServingChoice(served.version, self.newest_known(name))
        await asyncio.to_thread(self.repository.write_serving, name, choice)

    async def adopt(self, name: str, version: int) -> LoadedModel | None:
        """Serve `version`, a version newer than every one known, and record it.

        Returns None when it is known by now (published meanwhile). Raises when it
        does not load; the version served until then keeps serving.
        """
        async with self._locks[name]:
            if version <= self.newest_known(name):
                return None
            served = self._serving.get(name)
            if served is None or served.version != version:
                served = await self._take_or_build(name, version)
                self.swap_in(served)
            self._newest_known[name] = version
            await self.record_serving(name)
        return served

    async def rollback(self, name: str, version: int = 0) -> LoadedModel:
        """Serve `version` of `name` again (0: the highest below the served one),
        and record the choice so that it survives a restart and new polls."""
        self.repository.model_dir(name)
        async with self._locks[name]:
            served = self._serving.get(name)
            if served is None:
                raise self._not_serving(name)
            if version == 0:
                version = self._version_before(name, served.version)
            self.repository.version_dir(name, version)

            if version != served.version:
                self.swap_in(await self._take_or_build(name, version))
            await self.record_serving(name)
            logger.info("model %s: rolled back to version %d", name, version)
            return self._serving[name]

    async def unload(self, name: str) -> None:
        self.repository.model_dir(name)
        async with self._locks[name]:
            old = self._serving.pop(name, None)
            others: Mapping[int, LoadedModel] = self._others.pop(name, _NONE_LOADED)
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
        cached = self._others.get(name, _NONE_LOADED).get(number)
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
        return await self.build(name, version, path, self.repository.config(name))

    async def _take_or_build(self, name: str, version: int) -> LoadedModel:
        """`version` of `name` ready to serve: the copy already loaded for requests
        naming it, or a new one."""
        others = self._others.get(name)
        cached = others.pop(version, None) if others is not None else None
        if cached is not None:
            return cached
        return await self._build(name, version)

    async def _load_at_start(self, name: str) -> None:
        versions = await asyncio.to_thread(self.repository.versions, name)
        newest = versions[-1] if versions else self.repository.latest(name)
        choice = await asyncio.to_thread(self.repository.read_serving, name)
        pinned = (
            choice is not None
            and choice.version in versions
            and newest <= choice.newest_known
        )

        # The chosen version first; should it not load, the pinned one, then the
        # others from the newest down, so that one broken folder stops nothing.
        first = choice.version if pinned and choice is not None else newest
        order = [first]
        if choice is not None and choice.version in versions:
            order.append(choice.version)
        order.extend(reversed(versions))
        errors = []
        for version in dict.fromkeys(order):
            try:
                model = await self.load(name, version)
            except Exception as error:
                logger.error("model %s version %d not loaded: %s", name, version, error)
                errors.append(error)
                continue
            if pinned and choice is not None:
                self._newest_known[name] = max(choice.newest_known, model.version)
            return
        raise errors[0]

    def _version_before(self, name: str, version: int) -> int:
        earlier = [v for v in self.repository.versions(name) if v < version]
        if not earlier:
            raise RollbackRefused(
                f"model {name!r} serves version {version}, its oldest; there is no "
                "earlier version to roll back to (name one with --to N)"
            )
        return earlier[-1]

    def _retire(self, name: str, old: LoadedModel) -> None:
        loop = asyncio.get_running_loop()
        version = old.version
        task = loop.create_task(old.close())

        def retired(_: asyncio.Task[None]) -> None:
            logger.info("model %s version %d retired", name, version)
            # By the next loop turn the last reference to the old session is gone.
            loop.call_soon(release_free_memory)

        task.add_done_callback(retired)

    def _not_serving(self, name: str) -> Exception:
        self.repository.model_dir(name)
        failure = self._failures.get(name)
        if failure:
            return ModelUnavailable(f"model {name!r} failed to load: {failure}")
        return ModelUnavailable(f"model {name!r} is not loaded; load it first")


def release_free_memory() -> None:
    """Hand memory freed by a retired session back to the operating system.

    glibc keeps freed heap pages in its arenas; after many swaps of large models a
    server's resident memory would creep up although nothing leaks. `malloc_trim`
    returns them. Elsewhere (no glibc) this does nothing.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


def _build_and_warm(
    name: str,
    version: int,
    path: Path,
    config: ModelConfig,
    executor: Executor | None,
) -> LoadedModel:
    model = LoadedModel(name, version, path, config, executor=executor)
    model.warm_up()
    return model


def _parse_version(version: str) -> int:
    if not version.isdigit():
        raise InvalidRequest(
            f"model version {version!r} is not a version number; expected digits "
            "such as '3', or empty for the version being served"
        )
    return int(version)
