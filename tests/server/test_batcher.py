"""Dynamic batching: who waits for company, who runs at once, and what each gets."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import numpy as np
import pytest

from activeserve.server.runtime.batcher import Batcher
from activeserve.server.runtime.placement import RunPlacement


def _doubled(rows: np.ndarray) -> list[np.ndarray]:
    return [rows * 2.0]


def _batcher(
    *, busy_ms: float = 0.0, max_delay_ms: float = 0.0, max_batch_size: int = 64
) -> Batcher:
    # Every run measured to fit the inline budget: runs happen on the loop's thread.
    placement = RunPlacement(inline_run_us=1e6, executor=None)
    for rows in (1, 2, 4, 8, 16, 32, 64):
        placement.seed(rows, 1e-6)
    return Batcher(
        _doubled,
        max_batch_size=max_batch_size,
        max_queue_delay_ms=max_delay_ms,
        busy_queue_delay_ms=busy_ms,
        placement=placement,
        name="test/1",
    )


def _rows(value: float, count: int = 1) -> np.ndarray:
    return np.full((count, 2), value, dtype=np.float32)


def _finishes_without_waiting(call: Coroutine[Any, Any, list[np.ndarray]]) -> bool:
    """Whether the call completes on its first step, never yielding to the loop."""
    try:
        call.send(None)
    except StopIteration:
        return True
    call.close()
    return False


def test_a_call_that_comes_alone_runs_at_once() -> None:
    async def scenario() -> tuple[bool, bool]:
        batcher = _batcher(busy_ms=10_000.0)
        first = _finishes_without_waiting(batcher.submit(_rows(1.0)))
        await asyncio.sleep(0.05)
        # 50 ms later is "close" for a 10 s busy delay: this one waits.
        second = _finishes_without_waiting(batcher.submit(_rows(2.0)))
        await batcher.close()
        return first, second

    first, second = asyncio.run(scenario())

    assert first
    assert not second


def test_calls_further_apart_than_the_busy_delay_each_run_at_once() -> None:
    async def scenario() -> list[bool]:
        batcher = _batcher(busy_ms=20.0)
        alone = []
        for value in range(3):
            alone.append(_finishes_without_waiting(batcher.submit(_rows(value))))
            await asyncio.sleep(0.1)
        await batcher.close()
        return alone

    assert asyncio.run(scenario()) == [True, True, True]


def test_calls_arriving_close_together_share_one_run() -> None:
    async def scenario() -> tuple[list[np.ndarray], Batcher]:
        batcher = _batcher(busy_ms=200.0)
        await batcher.submit(_rows(-1.0))
        results = await asyncio.gather(
            *(batcher.submit(_rows(float(value), count=value)) for value in (1, 2, 3))
        )
        await batcher.close()
        return [outputs[0] for outputs in results], batcher

    outputs, batcher = asyncio.run(scenario())

    assert batcher.stats.runs == 2
    assert batcher.stats.batch_sizes == {1: 1, 6: 1}
    for value, output in zip((1, 2, 3), outputs, strict=True):
        np.testing.assert_array_equal(output, _rows(2.0 * value, count=value))


def test_a_full_batch_runs_without_waiting_out_the_delay() -> None:
    async def scenario() -> Batcher:
        batcher = _batcher(busy_ms=60_000.0, max_batch_size=4)
        await batcher.submit(_rows(0.0))
        calls = (batcher.submit(_rows(float(value))) for value in range(4))
        await asyncio.wait_for(asyncio.gather(*calls), timeout=30.0)
        await batcher.close()
        return batcher

    batcher = asyncio.run(scenario())

    assert batcher.stats.batch_sizes == {1: 1, 4: 1}


def test_max_queue_delay_holds_even_a_lone_call() -> None:
    async def scenario() -> bool:
        batcher = _batcher(max_delay_ms=10_000.0)
        alone = _finishes_without_waiting(batcher.submit(_rows(1.0)))
        await batcher.close()
        return alone

    assert not asyncio.run(scenario())


def test_close_serves_a_call_still_waiting_for_company() -> None:
    async def scenario() -> np.ndarray:
        batcher = _batcher(max_delay_ms=60_000.0)
        waiting = asyncio.ensure_future(batcher.submit(_rows(3.0)))
        await asyncio.sleep(0)
        await asyncio.wait_for(batcher.close(), timeout=30.0)
        return (await waiting)[0]

    np.testing.assert_array_equal(asyncio.run(scenario()), _rows(6.0))


@pytest.mark.parametrize("busy_ms", [0.0, 0.5])
def test_a_call_larger_than_the_batch_gets_all_its_rows(busy_ms: float) -> None:
    async def scenario() -> np.ndarray:
        batcher = _batcher(busy_ms=busy_ms, max_batch_size=4)
        rows = np.arange(20, dtype=np.float32).reshape(10, 2)
        [output] = await batcher.submit(rows)
        await batcher.close()
        return output

    output = asyncio.run(scenario())

    np.testing.assert_array_equal(
        output, np.arange(20, dtype=np.float32).reshape(10, 2) * 2.0
    )


def test_a_follow_up_run_neither_waits_nor_counts_as_an_arrival() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        batcher = _batcher(busy_ms=300.0)
        await batcher.submit(_rows(1.0))
        close_follow_up = _finishes_without_waiting(
            batcher.submit(_rows(2.0), follow_up=True)
        )
        await asyncio.sleep(0.4)
        late_follow_up = _finishes_without_waiting(
            batcher.submit(_rows(3.0), follow_up=True)
        )
        # 0.4 s after the last real call, though right after a follow-up.
        next_call = _finishes_without_waiting(batcher.submit(_rows(4.0)))
        await batcher.close()
        return close_follow_up, late_follow_up, next_call

    assert asyncio.run(scenario()) == (True, True, True)
