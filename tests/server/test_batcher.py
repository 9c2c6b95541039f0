"""Dynamic batching: who waits for company, who runs at once, and what each gets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np
import pytest

from activeserve.server.runtime.batcher import Batcher
from activeserve.server.runtime.placement import RunPlacement


def _doubled(rows: np.ndarray) -> list[np.ndarray]:
    return [rows * 2.0]


def _batcher(
    *,
    busy_ms: float = 0.0,
    busy_max_ms: float = 0.0,
    max_delay_ms: float = 0.0,
    max_batch_size: int = 64,
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
        busy_max_delay_ms=busy_max_ms,
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


async def _calls_spaced(batcher: Batcher, count: int, gap_s: float) -> None:
    """`count` one-row calls, each `gap_s` after the previous, all awaited."""
    calls = []
    for value in range(count):
        calls.append(asyncio.ensure_future(batcher.submit(_rows(float(value)))))
        await asyncio.sleep(gap_s)
    await asyncio.gather(*calls)


@pytest.mark.parametrize(("busy_max_ms", "runs"), [(5_000.0, 1), (0.0, 2)])
def test_a_batch_waits_on_while_calls_keep_coming(
    busy_max_ms: float, runs: int
) -> None:
    # Calls 100 ms apart, each within the 300 ms busy delay of the one before, for
    # 500 ms: one batch when arrivals extend its wait, cut 300 ms after its first
    # call when they may not.
    async def scenario() -> Batcher:
        batcher = _batcher(busy_ms=300.0, busy_max_ms=busy_max_ms)
        await batcher.submit(_rows(-1.0))
        await _calls_spaced(batcher, 6, 0.1)
        await batcher.close()
        return batcher

    batcher = asyncio.run(scenario())

    assert batcher.stats.runs - 1 == runs
    assert batcher.stats.rows == 7


def test_a_busy_batch_runs_by_busy_max_delay_ms_though_calls_keep_coming() -> None:
    async def scenario() -> Batcher:
        batcher = _batcher(busy_ms=300.0, busy_max_ms=450.0)
        await batcher.submit(_rows(-1.0))
        await _calls_spaced(batcher, 8, 0.1)
        await batcher.close()
        return batcher

    batcher = asyncio.run(scenario())

    # The first batch holds the calls of its first 450 ms, not all 800 ms of them.
    assert batcher.stats.runs - 1 >= 2
    assert batcher.stats.largest_batch < 8


def test_a_batch_runs_as_soon_as_it_holds_as_many_rows_as_recent_ones() -> None:
    async def three_calls(late_s: float) -> float:
        started = time.perf_counter()
        early = [batcher.submit(_rows(1.0)), batcher.submit(_rows(2.0))]
        calls = [asyncio.ensure_future(call) for call in early]
        await asyncio.sleep(late_s)
        await asyncio.gather(*calls, batcher.submit(_rows(3.0)))
        return time.perf_counter() - started

    async def scenario() -> list[float]:
        await batcher.submit(_rows(-1.0))
        # Batch 1 waits out its 300 ms; its third call comes halfway, so the next
        # calls still arrive close behind it. Batches 2 to 16 hold as many rows as
        # the largest recent batch as soon as their third call comes; batch 17
        # waits its full time again, in case the traffic would now fill a larger
        # batch.
        waits = [await three_calls(late_s=0.15)]
        for _ in range(16):
            waits.append(await three_calls(late_s=0.0))
        await batcher.close()
        return waits

    batcher = _batcher(busy_ms=300.0)
    waits = asyncio.run(scenario())

    assert waits[0] >= 0.29
    assert all(wait < 0.15 for wait in waits[1:16]), waits
    assert waits[16] >= 0.29
    assert batcher.stats.batch_sizes == {1: 1, 3: 17}


def test_a_call_after_a_lull_waits_while_recent_calls_came_close_together() -> None:
    # Busy delay 20 ms. After a burst of 40 calls, a 50 ms lull is a pause in dense
    # traffic (the average gap stays short): the next call waits for company, as
    # the first call after a batch's answers does under load. An idle spell of ten
    # busy delays ends the burst: the call after it runs at once again.
    async def scenario() -> tuple[bool, bool]:
        batcher = _batcher(busy_ms=20.0)
        burst = [batcher.submit(_rows(float(value))) for value in range(40)]
        await asyncio.gather(*burst)
        await asyncio.sleep(0.05)
        after_lull = _finishes_without_waiting(batcher.submit(_rows(1.0)))
        await asyncio.sleep(0.25)
        after_idle = _finishes_without_waiting(batcher.submit(_rows(2.0)))
        await batcher.close()
        return after_lull, after_idle

    assert asyncio.run(scenario()) == (False, True)


def test_a_lone_client_s_calls_run_at_once_whatever_came_before() -> None:
    # One client, 30 ms between calls, after a burst: the average of the gaps
    # climbs back above the 20 ms busy delay within about ten calls, and from then
    # on each call runs at once.
    async def scenario() -> list[bool]:
        batcher = _batcher(busy_ms=20.0)
        await asyncio.gather(*(batcher.submit(_rows(0.0)) for _ in range(40)))
        alone = []
        for value in range(40):
            await asyncio.sleep(0.03)
            call = batcher.submit(_rows(float(value)))
            finished = _finishes_without_waiting(call)
            alone.append(finished)
            if not finished:
                await asyncio.sleep(0.03)
        await batcher.close()
        return alone

    alone = asyncio.run(scenario())

    assert not alone[0]
    assert all(alone[-20:]), alone
