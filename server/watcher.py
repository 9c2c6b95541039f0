"""Picking up versions and models dropped into the repository by hand.

Every `poll_interval_s` the watcher scans the repository. A version number higher
than every version of its model known to the registry is loaded and served (and
recorded in `serving.json`); a new model folder is loaded the same way. A rollback
does not lower the known number, so the watcher never undoes one.

A folder being copied may be incomplete: the version is served only once its
model.onnx loads. Until then each poll tries again, logging the first failure at
WARNING and the rest at DEBUG; the version served meanwhile keeps serving. The same
poll removes staging folders left by uploads that died (older than `stale_staging_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from activeserve.server.errors import ModelNotFound
from activeserve.server.registry import ModelRegistry

logger = logging.getLogger(__name__)


class RepositoryWatcher:
    """Polls the registry's repository; `start()` on the event loop, `stop()` at the
    end."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        poll_interval_s: float,
        stale_staging_s: float,
    ) -> None:
        if poll_interval_s <= 0:
            raise ValueError(
                f"poll_interval_s is {poll_interval_s!r}; expected seconds > 0"
            )
        self._registry = registry
        self._repository = registry.repository
        self._poll_interval_s = poll_interval_s
        self._stale_staging_s = stale_staging_s
        self._reported: set[tuple[str, int]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="repository-watcher"
        )
        logger.info(
            "watching %s for new versions every %ss",
            self._repository.root,
            self._poll_interval_s,
        )

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def poll(self) -> None:
        """One scan: adopt every new version and model, clean stale staging."""
        newest = await asyncio.to_thread(self._scan)
        for name, version in newest.items():
            if version <= self._registry.newest_known(name):
                continue
            await self._adopt(name, version)

        await asyncio.to_thread(
            self._repository.remove_stale_staging, self._stale_staging_s
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                await self.poll()
            except Exception:
                # The filesystem can fail a scan (a folder removed mid-scan); the next
                # poll starts afresh, and serving never depends on it.
                logger.exception("repository poll failed; retrying next poll")

    async def _adopt(self, name: str, version: int) -> None:
        try:
            model = await self._registry.adopt(name, version)
        except Exception as error:
            first = (name, version) not in self._reported
            self._reported.add((name, version))
            logger.log(
                logging.WARNING if first else logging.DEBUG,
                "model %s version %d found but not loaded (retrying every poll): %s",
                name,
                version,
                error,
            )
            return
        self._reported.discard((name, version))
        if model is not None:
            logger.info(
                "model %s version %d picked up from the repository", name, version
            )

    def _scan(self) -> dict[str, int]:
        """The highest version with a model file, per model that has one."""
        newest = {}
        for name in self._repository.models():
            try:
                versions = self._repository.versions(name)
            except ModelNotFound:
                continue  # removed since models() listed it
            if versions:
                newest[name] = versions[-1]
        return newest
