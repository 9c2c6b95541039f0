"""Where a model run happens: on the event loop's own thread, or on a runtime thread.

Handing a run to a thread and getting its result back costs two thread wake-ups:
150 to 230 us on the 2-core machine the serving benchmark runs on, more than a small
model's whole run on a few rows. So runs that this model has been measured to finish
within `inline_run_us` run on the event loop's thread, and every other run goes to
a runtime thread, where it can take as long as it needs while the loop serves other
calls. The loop therefore waits on a run only when it is measured to cost less than
sending it away would.

Run times are kept per batch size class (1, 2-3, 4-7, ... rows) as a moving average
of every run of that class, wherever it ran, so a class that slows down moves back to
the thread. A run on a runtime thread is timed by that thread's CPU time: timed by the
clock it would also count its wait for the interpreter lock
(held by the busy event loop) and time lost to other processes, and would make a
fast class look slow for good. A class never measured runs on a thread first; the
model's warm-up at load measures one row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

import numpy as np

_Result = TypeVar("_Result")

# Weight of the newest run in the moving average: about the last ten runs count.
_SMOOTHING = 0.2


class RunPlacement:
    """Runs a function of some rows inline or on `executor`, by measured run time."""

    def __init__(self, inline_run_us: float, executor: Executor | None) -> None:
        self._budget_s = inline_run_us / 1e6
        self._executor = executor
        # Batch size class (the row count's bit length) -> mean seconds per run.
        self._seconds: dict[int, float] = {}

    async def run(
        self, function: Callable[[np.ndarray], _Result], rows: np.ndarray
    ) -> _Result:
        """`function(rows)`, on this thread when runs of this size are measured to
        fit the budget, else on the executor (this coroutine then only waits)."""
        if self.runs_inline(len(rows)):
            return self.run_inline(function, rows)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self.measure, function, rows, time.thread_time
        )

    def run_inline(
        self, function: Callable[[np.ndarray], _Result], rows: np.ndarray
    ) -> _Result:
        """`function(rows)` on the event loop's thread, timed by the wall clock:
        that thread holds the interpreter lock throughout."""
        return self.measure(function, rows, time.perf_counter)

    def seed(self, rows: int, seconds: float) -> None:
        """Start the estimate for runs of this many rows at `seconds`, as a warm-up
        measured it, forgetting any earlier runs of that size class."""
        self._seconds[rows.bit_length()] = seconds

    def fits_inline(self, seconds: float) -> bool:
        """Whether a run of this many seconds would run on the calling thread."""
        return self._budget_s > 0.0 and seconds <= self._budget_s

    def fits_budget(self, rows: int) -> bool:
        """Whether runs of this many rows are measured to fit the inline budget."""
        estimate = self._seconds.get(rows.bit_length())
        return estimate is not None and estimate <= self._budget_s

    def runs_inline(self, rows: int) -> bool:
        """Whether the next run of this many rows should run on the calling thread."""
        return self._budget_s > 0.0 and self.fits_budget(rows)

    def estimate_us(self, rows: int) -> float | None:
        """The mean measured run time for this many rows, if any, in microseconds."""
        estimate = self._seconds.get(rows.bit_length())
        return None if estimate is None else estimate * 1e6

    def measure(
        self,
        function: Callable[[np.ndarray], _Result],
        rows: np.ndarray,
        clock: Callable[[], float] = time.thread_time,
    ) -> _Result:
        """`function(rows)` on this thread, its run time recorded. The event loop's
        thread holds the interpreter lock throughout, so its runs may be timed with
        the cheaper wall clock; runtime threads use their CPU time."""
        started = clock()
        result = function(rows)
        self._record(len(rows), clock() - started)
        return result

    def _record(self, rows: int, seconds: float) -> None:
        # Runs on whichever thread ran; a lost update between two threads only
        # drops one sample from the average.
        size_class = rows.bit_length()
        previous = self._seconds.get(size_class)
        self._seconds[size_class] = (
            seconds
            if previous is None
            else previous + _SMOOTHING * (seconds - previous)
        )
