from __future__ import annotations

from collections.abc import Callable

import pytest

from activeserve.server.queue import ManualClock, NewSample, QueueConfig, QueueStore

OpenStore = Callable[..., QueueStore]
MakeSample = Callable[..., NewSample]


def test_stats_of_an_unknown_model_are_empty(store: QueueStore) -> None:
    stats = store.stats("nobody")

    assert stats.counts == {
        "pending": 0,
        "leased": 0,
        "labelled": 0,
        "skipped": 0,
        "unclassifiable": 0,
    }
    assert (stats.flagged_total, stats.evictions, stats.labels_total) == (0, 0, 0)
    assert stats.oldest_pending_age_s is None
    assert stats.agreement is None
    assert stats.unclassifiable_fraction is None


def test_stats_count_states_and_review_quality(
    open_test_store: OpenStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    store = open_test_store(QueueConfig(max_pending=6))
    ids = []
    for n in range(6):
        ids.append(
            store.add(new_sample(n, priority=float(n), predicted_label=n % 2)).sample_id
        )
        clock.advance(10.0)
    store.add(new_sample(99, priority=100.0))  # evicts the priority-0 sample
    # Priorities 100, 5, 4, 3 go to a reviewer; 1 and 2 stay pending.
    leased = store.lease("digits", 4, 60.0, "ann")
    by_priority = {s.priority: s for s in leased}

    store.submit_label(by_priority[5.0].id, 1, "ann")  # predicted 1: agrees
    store.submit_label(by_priority[4.0].id, 1, "ann")  # predicted 0: disagrees
    store.submit_label(by_priority[3.0].id, 1, "ann")  # predicted 1: agrees
    store.mark_unclassifiable(by_priority[100.0].id, "ann")
    clock.advance(5.0)

    stats = store.stats("digits", last_n=3)

    assert stats.counts == {
        "pending": 2,
        "leased": 0,
        "labelled": 3,
        "skipped": 0,
        "unclassifiable": 1,
    }
    assert (stats.flagged_total, stats.evictions, stats.labels_total) == (7, 1, 3)
    # The oldest pending sample (priority 1) was added at t0 + 10 s; now is t0 + 65 s.
    assert stats.oldest_pending_age_s == pytest.approx(55.0)
    assert stats.agreement == pytest.approx(2 / 3)
    # The last three reviews: 4.0 labelled, 3.0 labelled, 100.0 unclassifiable.
    assert stats.unclassifiable_fraction == pytest.approx(1 / 3)
    assert stats.last_n == 3
    assert ids[0] is not None and store.get(ids[0]) is None


def test_stats_window_counts_only_the_last_labels(
    store: QueueStore, new_sample: MakeSample
) -> None:
    for n in range(4):
        sample_id = store.add(new_sample(n, predicted_label=0)).sample_id
        assert sample_id is not None
        store.submit_label(sample_id, 0 if n < 2 else 1, "ann")

    assert store.stats("digits", last_n=2).agreement == 0.0
    assert store.stats("digits", last_n=4).agreement == 0.5
    assert store.stats("digits", last_n=4).unclassifiable_fraction == 0.0
