"""Dynamic batching: concurrent requests for one model version share ONNX Runtime runs.

Each `submit` call hands rows to a queue; one worker coroutine per model version takes
rows from the front until the batch holds `max_batch_size` rows or the oldest waiting
rows reach their deadline, concatenates them, runs the graph where `RunPlacement`
says (a runtime thread, unless runs of that size are measured to take less than
handing them to a thread costs), and gives every caller exactly its own rows of every
output. A call larger than `max_batch_size` is split into several items, and a batch
never splits an item: at most `max_batch_size` rows go to one run.

How long a call may wait for company:

- `max_queue_delay_ms`, always (0 by default);
- under dense traffic, while calls keep coming: a call that arrives less than
  `busy_queue_delay_ms` after the previous one, or while the gaps between recent
  calls average less than that, waits that long for the next, and each such
  arrival extends the batch's wait by as much again, up to `busy_max_delay_ms`
  after its oldest call arrived. grpc.aio hands calls to the event loop one turn
  apart, so a call that runs at once runs alone, and a small model's runs are over
  before the next call is read. A call that comes alone (light traffic, one client
  waiting on each answer) runs at once.

The average matters because dense traffic reaches the batcher in bursts: while the
event loop sends one batch's answers, the next calls wait inside gRPC, and the first
of them arrives long after the call before it. Judged by its own gap it would run
alone: in the serving benchmark at concurrency 32, three runs in four held a single
row that way (a fifth of all rows), and with the average two in five (6% of rows).

A batch also runs as soon as it holds as many rows as the largest of the last
`_RECENT_BATCHES` batches: with a fixed number of clients, each waiting on its answer,
that is every client, and waiting longer would only leave the server idle. Every
`_RECENT_BATCHES`-th batch ignores that size and waits its full time, so the size
follows the traffic up as well as down.

While a run is in flight, new rows keep queueing, so batches also fill behind runs
on a runtime thread. A call that finds the runtime idle, nobody waiting and no delay
due runs at once, itself, without a hand-off to the worker; when its run fits the
inline budget it runs right in `submit`, with no await at all.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from activeserve.server.errors import ModelUnavailable
from activeserve.server.runtime.placement import RunPlacement

logger = logging.getLogger(__name__)

RunFn = Callable[[np.ndarray], list[np.ndarray]]

# Batches remembered for the size at which a batch stops waiting; also how often a
# batch waits its full time to find out whether the traffic would fill a larger one.
_RECENT_BATCHES = 16

# Weight of the newest gap in the moving average of gaps between calls: about the
# last ten calls count.
_GAP_SMOOTHING = 0.1
# A gap counts as at most this many busy delays, so that one idle spell ends the
# busy judgement at once, and the average comes back down within a few dozen calls
# once traffic is dense again.
_GAP_CAP = 10.0


@dataclass
class _Item:
    rows: np.ndarray
    future: asyncio.Future[list[np.ndarray]]
    # Loop time by which the batch holding these rows runs, full or not.
    deadline: float
    arrived: float
    # Arrived close behind the previous call: the batch may wait on for the next.
    busy: bool


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
        busy_queue_delay_ms: float = 0.0,
        busy_max_delay_ms: float = 0.0,
        placement: RunPlacement,
        name: str,
    ) -> None:
        self._run = run
        self._max_batch_size = max_batch_size
        self._max_delay_s = max_queue_delay_ms / 1000.0
        self._busy_delay_s = busy_queue_delay_ms / 1000.0
        self._busy_max_delay_s = busy_max_delay_ms / 1000.0
        # When the previous call arrived (loop time), and the moving average of the
        # gaps between calls: how dense the traffic is.
        self._last_arrival = -math.inf
        self._mean_gap_s = _GAP_CAP * self._busy_delay_s
        self._placement = placement
        self._name = name
        self._queue: collections.deque[_Item] = collections.deque()
        self._queued_rows = 0
        self._arrived = asyncio.Event()
        # Resolved when the batch the worker waits on is full (or on close).
        self._batch_full: asyncio.Future[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        # True while a run is in flight, whether the worker's or a direct call's:
        # one run at a time keeps the batches full.
        self._running = False
        self._run_done = asyncio.Event()
        self._run_done.set()
        self._closing = False
        # Rows of the last batches the worker ran, and the size at which the next
        # batch stops waiting (None: it waits its full time).
        self._recent_sizes: collections.deque[int] = collections.deque(
            maxlen=_RECENT_BATCHES
        )
        self._batches = 0
        self._target_rows: int | None = None
        self.stats = BatchStats()

    async def submit(
        self, rows: np.ndarray, *, follow_up: bool = False
    ) -> list[np.ndarray]:
        """Outputs (graph order, first axis = rows) for exactly these `rows`.

        A `follow_up` is the second run of a call already counted (the cascade's
        extra views): it is no new arrival, and never waits by the busy rule."""
        if self._closing:
            raise ModelUnavailable(f"model {self._name} is being unloaded; retry")
        if self._worker is None:
            self._worker = asyncio.create_task(
                self._work(), name=f"batcher-{self._name}"
            )

        loop = asyncio.get_running_loop()
        now = loop.time()
        delay_s = self._max_delay_s
        busy = False
        if not follow_up and self._arrives_busy(now):
            delay_s = max(delay_s, self._busy_delay_s)
            busy = True

        if (
            not self._running
            and not self._queue
            and delay_s == 0.0
            and len(rows) <= self._max_batch_size
        ):
            if self._placement.runs_inline(len(rows)):
                # Over before the loop runs anything else: nothing can queue behind
                # it, so it needs neither the running flag nor an await.
                self._record(1, len(rows))
                return self._placement.run_inline(self._run, rows)
            return await self._run_now(rows)

        chunks = [
            rows[start : start + self._max_batch_size]
            for start in range(0, len(rows), self._max_batch_size)
        ]
        futures = []
        for chunk in chunks:
            future: asyncio.Future[list[np.ndarray]] = loop.create_future()
            self._queue.append(_Item(chunk, future, now + delay_s, now, busy))
            self._queued_rows += len(chunk)
            futures.append(future)
        self._arrived.set()
        if self._batch_complete():
            _resolve(self._batch_full)

        if len(futures) == 1:
            return await futures[0]
        parts = await asyncio.gather(*futures)
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    def _arrives_busy(self, now: float) -> bool:
        """Record a call arriving at `now`; whether calls are coming close enough
        together for it to wait for the next."""
        gap = min(now - self._last_arrival, _GAP_CAP * self._busy_delay_s)
        self._last_arrival = now
        self._mean_gap_s += _GAP_SMOOTHING * (gap - self._mean_gap_s)
        return min(gap, self._mean_gap_s) < self._busy_delay_s

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
        _resolve(self._batch_full)
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
        # Wait until the batch's deadline or until it is complete. Arrivals do not
        # wake the worker one by one: only the call that completes the batch does;
        # a deadline that arrivals moved on since is waited out again.
        while not self._batch_complete() and not self._closing:
            deadline = self._deadline()
            if deadline <= loop.time():
                return
            done: asyncio.Future[None] = loop.create_future()
            self._batch_full = done
            timer = loop.call_at(deadline, _resolve, done)
            try:
                await done
            finally:
                timer.cancel()
                self._batch_full = None

    def _batch_complete(self) -> bool:
        """Whether the queued rows fill a batch, or reach the size recent traffic
        filled batches to."""
        target = self._target_rows
        return self._queued_rows >= self._max_batch_size or (
            target is not None and self._queued_rows >= target
        )

    def _deadline(self) -> float:
        """When the batch at the front of the queue runs, complete or not."""
        oldest = self._queue[0]
        newest = self._queue[-1]
        if not newest.busy:
            return oldest.deadline
        # Calls are still coming: wait for the next one, within the busy limit.
        limit = oldest.arrived + self._busy_max_delay_s
        return max(oldest.deadline, min(newest.deadline, limit))

    def _take_batch(self) -> list[_Item]:
        batch = [self._queue.popleft()]
        rows = len(batch[0].rows)
        while self._queue and rows + len(self._queue[0].rows) <= self._max_batch_size:
            item = self._queue.popleft()
            batch.append(item)
            rows += len(item.rows)
        self._queued_rows -= rows

        self._recent_sizes.append(rows)
        self._batches += 1
        probe = self._batches % _RECENT_BATCHES == 0
        self._target_rows = None if probe else max(self._recent_sizes)
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


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _closed(rows: np.ndarray) -> list[np.ndarray]:
    raise ModelUnavailable("this model version has been unloaded; retry")
