"""The active-learning benchmark: selection through the core, summaries, a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from activeserve.core.scores import (
    ScoreConfig,
    score_patches,
    single_view_scores,
    uncertainty,
)
from activeserve.core.selection import select_randomised, select_top
from activeserve.core.views import ViewConfig
from benchmarks.active.datasets import Dataset, digits
from benchmarks.active.loop import Curve, LoopSettings
from benchmarks.active.methods import METHODS, SelectionParams, choose, method_named
from benchmarks.active.summary import labels_to_target, summarise
from benchmarks.active_learning import RunPlan, benchmark

PARAMS = SelectionParams(
    views=ViewConfig(count=5, augmentations=("shift",)),
    scores=ScoreConfig(alpha=0.25),
    omega=2.0,
)


def patch_probabilities(candidates: int, views: int, classes: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.dirichlet(np.full(classes, 0.3), size=(candidates, views))


def test_aift_picks_what_the_core_selects_on_the_same_probabilities() -> None:
    probs = patch_probabilities(200, 5, 10)

    picked = choose(METHODS["aift"], probs, 200, 20, PARAMS, np.random.default_rng(0))

    expected = select_top(uncertainty(score_patches(probs, PARAMS.scores), "score"), 20)
    np.testing.assert_array_equal(picked, expected)


def test_aift_random_draws_as_the_core_does_from_the_same_generator() -> None:
    probs = patch_probabilities(200, 5, 10)

    picked = choose(
        METHODS["aift-random"], probs, 200, 20, PARAMS, np.random.default_rng(3)
    )

    values = uncertainty(score_patches(probs, PARAMS.scores), "score")
    expected = select_randomised(values, 20, 2.0, np.random.default_rng(3))
    np.testing.assert_array_equal(picked, expected)


@pytest.mark.parametrize("name", ["entropy", "margin"])
def test_single_view_methods_rank_by_the_cores_uncertainty(name: str) -> None:
    probs = patch_probabilities(100, 1, 4)

    picked = choose(METHODS[name], probs, 100, 10, PARAMS, np.random.default_rng(0))

    scores = single_view_scores(probs[:, 0, :], PARAMS.scores)
    np.testing.assert_array_equal(picked, select_top(uncertainty(scores, name), 10))


def test_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'maxvar'.*'aift'"):
        method_named("maxvar")


def curve(method: str, seed: int, accuracy: tuple[float, ...]) -> Curve:
    labels = tuple(20 * (i + 1) for i in range(len(accuracy)))
    return Curve(method, "all", seed, labels, accuracy, (1,) * 3, (1,) * 3, 0.0)


def test_labels_to_target_is_the_first_point_at_or_above_it() -> None:
    assert labels_to_target([20, 40, 60], [0.5, 0.9, 0.95], 0.9) == 40
    assert labels_to_target([20, 40, 60], [0.5, 0.8, 0.85], 0.9) is None


def test_savings_are_a_lower_bound_when_random_misses_the_target() -> None:
    curves = [
        curve("aift", 0, (0.5, 0.9, 0.95)),
        curve("aift", 1, (0.5, 0.8, 0.95)),
        curve("random", 0, (0.5, 0.7, 0.95)),
        curve("random", 1, (0.5, 0.7, 0.8)),
    ]

    summaries = summarise(curves, target=0.9, batch=20)

    aift, random = summaries[("aift", "all")], summaries[("random", "all")]
    assert aift.labels_needed == (40, 60)
    assert aift.labels_needed_mean == pytest.approx(50.0)
    assert random.censored and random.reached == 1
    # The seed that missed counts as the cap plus one batch: (60 + 80) / 2.
    assert random.labels_needed_mean == pytest.approx(70.0)
    assert aift.saved_bound == "at_least"
    assert aift.saved_vs_random == pytest.approx(1 - 50 / 70)
    assert aift.auc_mean == pytest.approx((0.5 + 0.9 + 0.95 + 0.5 + 0.8 + 0.95) / 6)


def small_digits() -> Dataset:
    full = digits()
    return Dataset(
        name="digits-small",
        pool_inputs=full.pool_inputs[:300],
        pool_labels=full.pool_labels[:300],
        test_inputs=full.test_inputs[:100],
        test_labels=full.test_labels[:100],
        classes=full.classes,
        factory=full.factory,
        factory_kwargs={**full.factory_kwargs, "width": 8},
        views=full.views,
    )


def test_a_tiny_run_writes_curves_summaries_and_the_plot(tmp_path: Path) -> None:
    settings = LoopSettings(
        seed_labels=10, batch=10, budget=30, epochs=2, reference_epochs=2
    )
    plan = RunPlan(
        dataset=small_digits(),
        settings=settings,
        seeds=(0,),
        methods=tuple(METHODS),
        policies=("all", "hq"),
    )

    benchmark(plan, tmp_path)

    document = json.loads((tmp_path / "active_learning-digits-small.json").read_text())
    assert (tmp_path / "active_learning-digits-small.png").stat().st_size > 0
    assert document["label_grid"] == [10, 20, 30]
    assert document["settings"]["budget"] == 30
    assert {"cpu_model", "usable_cores"} <= document["machine"].keys()
    assert document["versions"]["torch"]
    assert document["wall_time_s"] > 0
    assert 0.0 <= document["reference"]["target"] <= 1.0
    assert len(document["curves"]) == 10
    assert {(c["method"], c["policy"]) for c in document["curves"]} == {
        (method, policy) for method in METHODS for policy in ("all", "hq")
    }
    for row in document["summary"]:
        assert len(row["labels_needed"]) == 1
        assert 0.0 <= row["auc_mean"] <= 1.0
