"""Where runs happen: on the event loop thread only when measured to fit the budget."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from activeserve.server.runtime.placement import RunPlacement


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="runtime") as pool:
        yield pool


def _burn(seconds_per_row: float) -> Callable[[np.ndarray], int]:
    """A run that keeps its thread busy (CPU time, not sleep) per row; it answers
    the thread it ran on."""

    def run(rows: np.ndarray) -> int:
        end = time.thread_time() + seconds_per_row * len(rows)
        while time.thread_time() < end:
            pass
        return threading.get_ident()

    return run


def _rows(count: int) -> np.ndarray:
    return np.zeros((count, 4), dtype=np.float32)


async def _threads_used(
    placement: RunPlacement, run: Callable[[np.ndarray], int], rows: int, times: int
) -> list[bool]:
    """For each of `times` runs, whether it ran on the event loop's thread."""
    loop_thread = threading.get_ident()
    return [await placement.run(run, _rows(rows)) == loop_thread for _ in range(times)]


def test_a_batch_size_never_measured_runs_on_a_thread(executor) -> None:
    placement = RunPlacement(250.0, executor)

    inline = asyncio.run(_threads_used(placement, _burn(0.0), rows=1, times=1))

    assert inline == [False]
    assert placement.estimate_us(1) is not None


def test_fast_runs_move_onto_the_event_loop_thread_once_measured(executor) -> None:
    placement = RunPlacement(250.0, executor)

    inline = asyncio.run(_threads_used(placement, _burn(0.0), rows=1, times=5))

    assert inline == [False, True, True, True, True]
    assert placement.estimate_us(1) < 250.0


def test_slow_runs_stay_on_runtime_threads_and_the_loop_keeps_serving(
    executor,
) -> None:
    placement = RunPlacement(250.0, executor)
    slow = _burn(0.02)

    async def scenario() -> tuple[list[bool], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        inline = await _threads_used(placement, slow, rows=1, times=4)
        task.cancel()
        return inline, ticks

    inline, ticks = asyncio.run(scenario())

    assert inline == [False] * 4
    assert placement.estimate_us(1) >= 10_000
    # Four 20 ms runs on a thread: the loop went on ticking meanwhile.
    assert ticks >= 10


def test_each_batch_size_class_is_measured_on_its_own(executor) -> None:
    # 100 us per row: one row fits a 250 us budget, 8 rows do not.
    placement = RunPlacement(250.0, executor)
    run = _burn(100e-6)

    async def scenario() -> tuple[list[bool], list[bool]]:
        one = await _threads_used(placement, run, rows=1, times=3)
        eight = await _threads_used(placement, run, rows=8, times=3)
        return one, eight

    one, eight = asyncio.run(scenario())

    assert one == [False, True, True]
    assert eight == [False, False, False]


def test_a_class_that_slows_down_moves_back_to_a_thread(executor) -> None:
    placement = RunPlacement(250.0, executor)
    cost = {"seconds": 0.0}

    def run(rows: np.ndarray) -> int:
        return _burn(cost["seconds"])(rows)

    async def scenario() -> list[bool]:
        await _threads_used(placement, run, rows=1, times=3)
        cost["seconds"] = 0.005
        return await _threads_used(placement, run, rows=1, times=3)

    after = asyncio.run(scenario())

    # The first slow run happened inline (the estimate said fast); it moved the
    # average over the budget, so the next ones go to a thread.
    assert after == [True, False, False]


def test_a_zero_budget_sends_every_run_to_a_thread(executor) -> None:
    placement = RunPlacement(0.0, executor)

    inline = asyncio.run(_threads_used(placement, _burn(0.0), rows=1, times=4))

    assert inline == [False] * 4
    assert not placement.runs_inline(1)


def test_a_failing_run_raises_where_it_was_awaited(executor) -> None:
    placement = RunPlacement(250.0, executor)

    def broken(rows: np.ndarray) -> int:
        raise ValueError("graph failed")

    async def scenario() -> None:
        await placement.run(_burn(0.0), _rows(1))  # measured: the next runs inline
        with pytest.raises(ValueError, match="graph failed"):
            await placement.run(broken, _rows(1))

    asyncio.run(scenario())
