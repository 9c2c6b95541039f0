from __future__ import annotations

import numpy as np
import pytest

from activeserve.trainer.data import (
    RoundPlan,
    batch_schedule,
    plan_round,
    steps_for,
    validation_mask,
)
from activeserve.trainer.errors import DataError


def _round(earlier: int, new: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0..9 cycling, the last ``new`` rows marked new."""
    labels = np.arange(earlier + new) % 10
    new_mask = np.zeros(earlier + new, dtype=bool)
    new_mask[earlier:] = True
    return labels, new_mask


def test_the_all_policy_trains_on_every_label_for_its_epochs() -> None:
    labels, new_mask = _round(earlier=80, new=20)

    plan = plan_round("all", labels, new_mask, epochs=3, batch_size=32)

    assert plan.indices == tuple(range(100))
    assert plan.steps == 3 * 4
    assert plan.new_count == 20


def test_the_hq_plan_takes_as_many_steps_as_the_all_plan() -> None:
    labels, new_mask = _round(earlier=280, new=20)
    predictions = labels.copy()
    predictions[:10] += 1

    all_plan = plan_round("all", labels, new_mask, epochs=10, batch_size=32)
    hq_plan = plan_round(
        "hq",
        labels,
        new_mask,
        epochs=10,
        batch_size=32,
        predictions=predictions,
        replay_fraction=0.25,
    )

    assert hq_plan.steps == all_plan.steps == 10 * 10
    assert hq_plan.size < all_plan.size


def test_the_hq_plan_holds_new_misclassified_and_replayed_rows() -> None:
    labels, new_mask = _round(earlier=80, new=20)
    predictions = labels.copy()
    wrong = np.array([3, 17, 42])
    predictions[wrong] = (labels[wrong] + 1) % 10
    predictions[85] = (labels[85] + 1) % 10  # a new row, included anyway

    plan = plan_round(
        "hq",
        labels,
        new_mask,
        epochs=2,
        batch_size=16,
        predictions=predictions,
        replay_fraction=0.5,
        rng=np.random.default_rng(7),
    )

    chosen = set(plan.indices)
    replayed = chosen - set(range(80, 100)) - set(wrong.tolist())
    assert set(range(80, 100)) <= chosen
    assert set(wrong.tolist()) <= chosen
    assert (plan.new_count, plan.misclassified_count, plan.replay_count) == (20, 3, 40)
    assert len(replayed) == 40
    assert all(predictions[i] == labels[i] for i in replayed)
    assert len(plan.indices) == len(chosen) == 63


def test_the_replay_sample_is_reproducible_for_a_seeded_generator() -> None:
    labels, new_mask = _round(earlier=50, new=10)

    plans = [
        plan_round(
            "hq",
            labels,
            new_mask,
            epochs=1,
            batch_size=8,
            predictions=labels,
            rng=np.random.default_rng(3),
        )
        for _ in range(2)
    ]

    assert plans[0] == plans[1]


def test_the_hq_policy_needs_predictions() -> None:
    labels, new_mask = _round(earlier=5, new=5)

    with pytest.raises(DataError, match="needs the current model's predictions"):
        plan_round("hq", labels, new_mask, epochs=1, batch_size=4)


def test_an_unknown_policy_is_named() -> None:
    labels, new_mask = _round(earlier=5, new=5)

    with pytest.raises(DataError, match=r"unknown training policy 'lq'"):
        plan_round("lq", labels, new_mask, epochs=1, batch_size=4)


def test_a_mask_of_the_wrong_shape_is_refused() -> None:
    labels, _ = _round(earlier=5, new=5)

    with pytest.raises(DataError, match=r"new_mask must be a bool array of shape"):
        plan_round("all", labels, np.zeros(4, dtype=bool), epochs=1, batch_size=4)


def test_steps_for_counts_a_short_last_batch() -> None:
    assert steps_for(100, epochs=2, batch_size=32) == 8
    assert steps_for(96, epochs=2, batch_size=32) == 6


def test_the_schedule_of_an_all_plan_covers_every_row_once_per_epoch() -> None:
    plan = RoundPlan(
        policy="all", indices=tuple(range(10)), steps=6, batch_size=4, new_count=10
    )

    batches = batch_schedule(plan, np.random.default_rng(0))

    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    for epoch in (batches[:3], batches[3:]):
        assert sorted(np.concatenate(epoch).tolist()) == list(range(10))


def test_the_schedule_of_a_small_set_cycles_it_to_fill_the_steps() -> None:
    plan = RoundPlan(policy="hq", indices=(2, 5, 9), steps=5, batch_size=4, new_count=3)

    batches = batch_schedule(plan, np.random.default_rng(0))

    assert len(batches) == 5
    assert all(sorted(b.tolist()) == [2, 5, 9] for b in batches)


def test_a_plan_without_rows_is_refused() -> None:
    with pytest.raises(DataError, match="needs at least one labelled row"):
        RoundPlan(policy="all", indices=(), steps=1, batch_size=1, new_count=0)


def test_the_validation_side_of_a_sample_never_changes_as_labels_grow() -> None:
    first = [f"sample-{i}" for i in range(200)]
    grown = first + [f"sample-{i}" for i in range(200, 1000)]

    before = validation_mask(first, fraction=0.2, seed=4)
    after = validation_mask(grown, fraction=0.2, seed=4)

    assert np.array_equal(before, after[:200])
    assert 0.15 < after.mean() < 0.25


def test_a_validation_fraction_of_one_is_refused() -> None:
    with pytest.raises(DataError, match=r"must lie in \[0, 1\), got 1.0"):
        validation_mask(["a"], fraction=1.0)
