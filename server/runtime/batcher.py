"""Dynamic batching: concurrent requests for one model version share ONNX Runtime runs.

Each `submit` call hands rows to a queue; one worker coroutine per model version takes
rows from the front until the batch holds `max_batch_size` rows or the oldest waiting
rows have waited `max_queue_delay_ms`, concatenates them, runs the graph where
`RunPlacement` says (a runtime thread, unless runs of that size are measured to take
less than handing them to a thread costs), and gives every caller exactly its own
rows of every output. A call larger than `max_batch_size` is split into several items,
and a batch never splits an item: at most `max_batch_size` rows go to one run.

While a run is in flight, new rows keep queueing, so under load batches fill without any
waiting; the delay only matters when the runtime is idle and traffic is light. With no
delay, a call that finds the runtime idle and nobody waiting runs at once, itself,
without a hand-off to the worker: light traffic pays no batching overhead. A run
that fits `RunPlacement`'s inline budget is over before the next call is read, so
nothing ever queues behind it, and such calls always run alone: grpc.aio hands
calls to the event loop one turn apart, so holding one back for a turn to wait for
company merged almost nothing and cost a task switch per call. Batches form behind
runs on a runtime thread, which is where a batch saves time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from activeserve.server.errors import ModelUnavailable
from activeserve.server.runtime.placement import RunPlacement

logger = logging.getLogger(__name__)

RunFn = Callable[[np.ndarray], list[np.ndarray]]


@dataclass
class _Item:
    rows: np.ndarray
    future: asyncio.Future[list[np.ndarray]]
    enqueued_at: float


@dataclass
class BatchStats:
    """Counters a test or the metrics endpoint can read."""

    runs: int = 0
    rows: int = 0
    items: int = 0
    largest_batch: int = 0
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)


class Batcher:
    """Merges concurrent `submit` calls into runs of at most `max_batch_size` rows."""

    def __init__(
        self,
        run: RunFn,
        *,
        max_batch_size: int,
        max_queue_delay_ms: float,
        placement: RunPlacement,
        name: str,
    ) -> None:
        self._run = run
        self._max_batch_size = max_batch_size
        self._max_delay_s = max_queue_delay_ms / 1000.0
        self._placement = placement
        self._name = name
        self._queue: collections.deque[_Item] = collections.deque()
        self._queued_rows = 0
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        # True while a run is in flight, whether the worker's or a direct call's:
        # one run at a time keeps the batches full.
        self._running = False
        self._run_done = asyncio.Event()
        self._run_done.set()
        self._closing = False
        self.stats = BatchStats()

    async def submit(self, rows: np.ndarray) -> list[np.ndarray]:
        """Outputs (graph order, first axis = rows) for exactly these `rows`."""
        if self._closing:
            raise ModelUnavailable(f"model {self._name} is being unloaded; retry")
        if self._worker is None:
            self._worker = asyncio.create_task(
                self._work(), name=f"batcher-{self._name}"
            )

        if (
            not self._running
            and not self._queue
            and self._max_delay_s == 0.0
            and len(rows) <= self._max_batch_size
        ):
            if self._placement.runs_inline(len(rows)):
                # Over before the loop runs anything else: nothing can queue behind
                # it, so it needs neither the running flag nor an await.
                self._record(1, len(rows))
                return self._placement.run_inline(self._run, rows)
            return await self._run_now(rows)

        loop = asyncio.get_running_loop()
        chunks = [
            rows[start : start + self._max_batch_size]
            for start in range(0, len(rows), self._max_batch_size)
        ]
        futures = []
        for chunk in chunks:
            future: asyncio.Future[list[np.ndarray]] = loop.create_future()
            self._queue.append(_Item(chunk, future, loop.time()))
            self._queued_rows += len(chunk)
            futures.append(future)
        self._arrived.set()

        if len(futures) == 1:
            return await futures[0]
        parts = await asyncio.gather(*futures)
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    async def _run_now(self, rows: np.ndarray) -> list[np.ndarray]:
        try:
            return await self._execute(rows, items=1)
        finally:
            if self._queue:
                # Calls that queued meanwhile are the worker's.
                self._arrived.set()

    async def close(self) -> None:
        """Stop taking calls, finish the queued ones, stop the worker."""
        self._closing = True
        self._arrived.set()
        if self._worker is not None:
            await self._worker
        # `run` is usually a bound method of the model that owns this batcher: the
        # cycle would keep a retired model's session (its weights) alive until a full
        # garbage collection. Nothing runs after close.
        self._run = _closed

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue

            await self._run_done.wait()
            await self._wait_for_batch(loop)
            if self._running or not self._queue:
                continue
            batch = self._take_batch()
            await self._run_batch(batch)

    async def _wait_for_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        # Wait while the batch is not full and the oldest rows are younger than the
        # delay; every arrival re-checks.
        deadline = self._queue[0].enqueued_at + self._max_delay_s
        while self._queued_rows < self._max_batch_size and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Item]:
        batch = [self._queue.popleft()]
        rows = len(batch[0].rows)
        while self._queue and rows + len(self._queue[0].rows) <= self._max_batch_size:
            item = self._queue.popleft()
            batch.append(item)
            rows += len(item.rows)
        self._queued_rows -= rows
        return batch

    async def _run_batch(self, batch: list[_Item]) -> None:
        inputs = (
            batch[0].rows
            if len(batch) == 1
            else np.concatenate([item.rows for item in batch])
        )
        try:
            outputs = await self._execute(inputs, items=len(batch))
        except Exception as error:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
            return

        offset = 0
        for item in batch:
            count = len(item.rows)
            if not item.future.done():
                item.future.set_result(
                    [out[offset : offset + count] for out in outputs]
                )
            offset += count

    async def _execute(self, inputs: np.ndarray, *, items: int) -> list[np.ndarray]:
        self._record(items, len(inputs))
        self._running = True
        self._run_done.clear()
        try:
            return await self._placement.run(self._run, inputs)
        finally:
            self._running = False
            self._run_done.set()

    def _record(self, items: int, rows: int) -> None:
        self.stats.runs += 1
        self.stats.items += items
        self.stats.rows += rows
        self.stats.largest_batch = max(self.stats.largest_batch, rows)
        self.stats.batch_sizes[rows] += 1
        logger.debug("model %s: run of %d rows from %d calls", self._name, rows, items)


def _closed(rows: np.ndarray) -> list[np.ndarray]:
    raise ModelUnavailable("this model version has been unloaded; retry")
