from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable

from activeserve.server.queue import (
    AddOutcome,
    NewSample,
    QueueConfig,
    QueueStore,
    SampleState,
)

OpenStore = Callable[..., QueueStore]
MakeSample = Callable[..., NewSample]


def test_added_sample_reads_back_with_every_field(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample = new_sample(7, priority=2.5, predicted_label=1)

    result = store.add(sample)

    assert result.outcome is AddOutcome.QUEUED
    assert result.sample_id is not None
    stored = store.get(result.sample_id)
    assert stored is not None
    assert stored.state is SampleState.PENDING
    assert stored.input_bytes == sample.input_bytes
    assert (stored.datatype, stored.shape) == ("FP32", (2, 2))
    assert stored.probabilities == sample.probabilities
    assert stored.scores == sample.scores
    assert (stored.priority, stored.predicted_label) == (2.5, 1)
    assert stored.content_hash == sample.content_hash
    assert stored.label is None and stored.label_seq is None


def test_same_input_is_queued_once_in_any_state(
    store: QueueStore, new_sample: MakeSample
) -> None:
    first = store.add(new_sample(1))
    assert first.sample_id is not None
    store.submit_label(first.sample_id, 0, "ann")

    again = store.add(new_sample(1, priority=9.0))

    assert again.outcome is AddOutcome.DUPLICATE
    assert again.sample_id == first.sample_id
    assert store.stats("digits").flagged_total == 1


def test_same_input_for_another_model_is_queued_separately(
    store: QueueStore, new_sample: MakeSample
) -> None:
    first = store.add(new_sample(1, model_name="digits"))
    second = store.add(new_sample(1, model_name="letters"))

    assert second.outcome is AddOutcome.QUEUED
    assert second.sample_id != first.sample_id


def test_full_queue_evicts_lowest_priority_and_keeps_the_highest(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    store = open_test_store(QueueConfig(max_pending=3))
    ids = {p: store.add(new_sample(p, priority=float(p))).sample_id for p in (5, 1, 3)}

    low = store.add(new_sample(0, priority=0.5))
    high = store.add(new_sample(9, priority=9.0))

    assert low.outcome is AddOutcome.REJECTED and low.sample_id is None
    assert high.outcome is AddOutcome.QUEUED
    assert high.evicted_id is not None and high.evicted_id == ids[1]
    assert store.get(high.evicted_id) is None
    leased = store.lease("digits", 10, 60.0, "ann")
    assert [s.priority for s in leased] == [9.0, 5.0, 3.0]
    stats = store.stats("digits")
    assert (stats.evictions, stats.flagged_total) == (1, 4)


def test_a_models_own_bound_overrides_the_stores(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    store = open_test_store(QueueConfig(max_pending=100))
    for n in range(4):
        sample = dataclasses.replace(new_sample(n, priority=float(n)), max_pending=2)
        store.add(sample)

    pending = store.stats("digits").counts["pending"]

    assert pending == 2
    assert store.stats("digits").evictions == 2


def test_evicted_input_can_be_queued_again(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    store = open_test_store(QueueConfig(max_pending=1))
    store.add(new_sample(1, priority=1.0))
    store.add(new_sample(2, priority=2.0))
    store.lease("digits", 1, 60.0, "ann")

    again = store.add(new_sample(1, priority=1.0))

    assert again.outcome is AddOutcome.QUEUED


def test_equal_priority_does_not_evict(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    store = open_test_store(QueueConfig(max_pending=1))
    store.add(new_sample(1, priority=1.0))

    assert store.add(new_sample(2, priority=1.0)).outcome is AddOutcome.REJECTED
    assert store.stats("digits").evictions == 0


def test_active_leases_do_not_count_against_the_bound(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    store = open_test_store(QueueConfig(max_pending=1))
    store.add(new_sample(1, priority=5.0))
    store.lease("digits", 1, 60.0, "ann")

    result = store.add(new_sample(2, priority=1.0))

    assert result.outcome is AddOutcome.QUEUED
    assert result.evicted_id is None


def test_evictions_survive_reopening(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    store = open_test_store(QueueConfig(max_pending=1))
    store.add(new_sample(1, priority=1.0))
    store.add(new_sample(2, priority=2.0))
    store.close()

    reopened = open_test_store(QueueConfig(max_pending=1))

    assert reopened.stats("digits").evictions == 1


def test_group_commit_merges_concurrent_adds_into_fewer_transactions(
    store: QueueStore, new_sample: MakeSample
) -> None:
    writers = 32
    start = threading.Barrier(writers)
    outcomes: list[AddOutcome] = []

    def add(n: int) -> None:
        start.wait()
        outcomes.append(store.add(new_sample(n)).outcome)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = store.group_commit_stats
    assert outcomes == [AddOutcome.QUEUED] * writers
    assert stats.items == writers
    assert stats.batches < writers
    assert store.stats("digits").pending == writers


def test_one_batch_holds_duplicates_of_each_other(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    # A long linger puts every add below into one batch.
    store = open_test_store(QueueConfig(linger_ms=200.0, max_batch=4))
    results = []

    def add() -> None:
        results.append(store.add(new_sample(3)))

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.outcome.value for r in results) == [
        "duplicate",
        "duplicate",
        "duplicate",
        "queued",
    ]
    assert len({r.sample_id for r in results}) == 1


def test_add_async_resolves_once_durable_without_blocking_the_loop(
    store: QueueStore, new_sample: MakeSample
) -> None:
    async def main() -> list[int | None]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        results = await asyncio.gather(
            *(store.add_async(new_sample(n)) for n in range(8))
        )
        ticker.cancel()
        assert ticks > 0
        return [r.sample_id for r in results]

    ids = asyncio.run(main())

    assert all(store.get(i) is not None for i in ids if i is not None)
    assert len(set(ids)) == 8
