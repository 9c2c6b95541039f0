"""Group commit: many concurrent writes, one transaction, one flush to disk.

A durable write costs one fsync (SQLite) or one WAL flush (PostgreSQL), far more than
the write itself. :class:`GroupCommitter` runs one writer thread; callers from any
thread hand it an item and get a ``concurrent.futures.Future``. The writer takes
everything queued so far (up to ``max_batch``), commits it in a single transaction
and resolves every future only after that commit returned. While one batch is being
flushed, the next one accumulates, so batching grows with load and adds no delay
when idle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from activeserve.server.queue.errors import StoreClosed

__all__ = ["GroupCommitStats", "GroupCommitter"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class GroupCommitStats:
    """Work done so far: ``batches`` commits carried ``items`` writes in total."""

    batches: int
    items: int


class GroupCommitter(Generic[T, R]):
    """Gathers items from many threads and commits them in batches.

    ``commit_batch(items)`` must apply every item in ONE transaction, commit it, and
    return one result per item, in order. If it raises, the writer retries each item
    of that batch alone, so that one bad item fails only its own caller; an item that
    fails alone gets the exception on its future.

    A future cancelled before its batch is taken is dropped (nothing is written); once
    taken, cancelling has no effect and the write commits.
    """

    def __init__(
        self,
        commit_batch: Callable[[Sequence[T]], Sequence[R]],
        *,
        max_batch: int,
        linger_s: float = 0.0,
        name: str = "group-commit",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch!r}")

        self._commit_batch = commit_batch
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._pending: deque[tuple[T, Future[R]]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._batches = 0
        self._items = 0

        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def stats(self) -> GroupCommitStats:
        with self._cond:
            return GroupCommitStats(batches=self._batches, items=self._items)

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future resolves once its transaction has committed.

        Raises:
            StoreClosed: After ``close()``.
        """
        future: Future[R] = Future()
        with self._cond:
            if self._closed:
                raise StoreClosed("the store is closed; no more samples are accepted")
            self._pending.append((item, future))
            self._cond.notify()
        return future

    def close(self, timeout_s: float | None = None) -> None:
        """Commit what is queued, then stop the writer thread. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._commit(batch)

    def _take_batch(self) -> list[tuple[T, Future[R]]] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None

            if self._linger_s > 0 and not self._closed:
                deadline = time.monotonic() + self._linger_s
                while len(self._pending) < self._max_batch and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)

            batch: list[tuple[T, Future[R]]] = []
            while self._pending and len(batch) < self._max_batch:
                item, future = self._pending.popleft()
                # False means the caller cancelled while waiting: drop the item.
                if future.set_running_or_notify_cancel():
                    batch.append((item, future))
            return batch

    def _commit(self, batch: list[tuple[T, Future[R]]]) -> None:
        if not batch:
            return

        items = [item for item, _ in batch]
        try:
            results = list(self._commit_batch(items))
            if len(results) != len(items):
                raise RuntimeError(
                    f"commit_batch returned {len(results)} results for "
                    f"{len(items)} items; it must return one per item"
                )
        except Exception as error:
            if len(batch) == 1:
                batch[0][1].set_exception(error)
                return
            logger.warning(
                "group commit of %s items failed (%r); retrying them one by one",
                len(batch),
                error,
            )
            for one in batch:
                self._commit([one])
            return

        with self._cond:
            self._batches += 1
            self._items += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
