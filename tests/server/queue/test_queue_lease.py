from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from activeserve.server.queue import (
    LeaseConflict,
    ManualClock,
    NewSample,
    QueueStore,
    SampleNotFound,
    SampleState,
)

OpenStore = Callable[..., QueueStore]
MakeSample = Callable[..., NewSample]


def test_lease_gives_highest_priority_first_with_fresh_tokens(
    store: QueueStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    for n, priority in enumerate([0.2, 0.9, 0.5, 0.9]):
        store.add(new_sample(n, priority=priority))

    leased = store.lease("digits", 3, 30.0, "ann")

    assert [s.priority for s in leased] == [0.9, 0.9, 0.5]
    assert leased[0].id < leased[1].id
    assert all(s.state is SampleState.LEASED for s in leased)
    assert all(s.leased_by == "ann" for s in leased)
    assert all(s.lease_expires_at == clock.now + 30.0 for s in leased)
    assert len({s.lease_token for s in leased}) == 3
    assert store.lease("digits", 3, 30.0, "bob")[0].priority == 0.2


def test_lease_of_another_model_is_empty(
    store: QueueStore, new_sample: MakeSample
) -> None:
    store.add(new_sample(1, model_name="digits"))

    assert store.lease("letters", 5, 30.0, "ann") == []


def test_two_reviewers_leasing_at_once_never_get_the_same_sample(
    open_test_store: OpenStore, new_sample: MakeSample
) -> None:
    # Two stores on one database stand for two server replicas (or processes).
    replicas = [open_test_store(), open_test_store()]
    total = 60
    for n in range(total):
        replicas[0].add(new_sample(n, priority=float(n % 7)))

    reviewers = 6
    start = threading.Barrier(reviewers)
    taken: list[list[int]] = [[] for _ in range(reviewers)]

    def review(index: int) -> None:
        store = replicas[index % 2]
        start.wait()
        while batch := store.lease("digits", 3, 60.0, f"reviewer-{index}"):
            taken[index].extend(s.id for s in batch)

    threads = [threading.Thread(target=review, args=(i,)) for i in range(reviewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every_id = [sample_id for ids in taken for sample_id in ids]
    assert len(every_id) == total
    assert len(set(every_id)) == total


def test_expired_lease_returns_the_sample_to_the_queue(
    store: QueueStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    sample_id = store.add(new_sample(1)).sample_id
    (first,) = store.lease("digits", 1, 10.0, "ann")
    assert store.lease("digits", 1, 10.0, "bob") == []

    clock.advance(10.0)

    assert store.stats("digits").pending == 1
    (second,) = store.lease("digits", 1, 10.0, "bob")
    assert second.id == sample_id
    assert second.leased_by == "bob"
    assert second.lease_token != first.lease_token


def test_expired_lease_reads_as_pending(
    store: QueueStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    sample_id = store.add(new_sample(1)).sample_id
    assert sample_id is not None
    store.lease("digits", 1, 10.0, "ann")

    clock.advance(11.0)

    sample = store.get(sample_id)
    assert sample is not None and sample.state is SampleState.PENDING


def test_release_makes_the_sample_pending_again(
    store: QueueStore, new_sample: MakeSample
) -> None:
    store.add(new_sample(1))
    (leased,) = store.lease("digits", 1, 60.0, "ann")
    assert leased.lease_token is not None

    released = store.release(leased.id, leased.lease_token)

    assert released.state is SampleState.PENDING
    assert released.lease_token is None
    assert [s.id for s in store.lease("digits", 1, 60.0, "bob")] == [leased.id]


def test_release_with_a_superseded_token_is_a_lease_conflict(
    store: QueueStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    store.add(new_sample(1))
    (first,) = store.lease("digits", 1, 10.0, "ann")
    clock.advance(20.0)
    store.lease("digits", 1, 10.0, "bob")
    assert first.lease_token is not None

    with pytest.raises(LeaseConflict, match=r"not leased under token"):
        store.release(first.id, first.lease_token)


def test_release_of_an_unknown_sample_is_not_found(store: QueueStore) -> None:
    with pytest.raises(SampleNotFound, match=r"no queued sample has id 404"):
        store.release(404, "token")


@pytest.mark.parametrize(
    ("count", "lease_s", "message"),
    [(0, 10.0, r"count must be >= 1, got 0"), (1, 0.0, r"lease_s must be > 0")],
)
def test_lease_rejects_nonsense_arguments(
    store: QueueStore, count: int, lease_s: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.lease("digits", count, lease_s, "ann")
