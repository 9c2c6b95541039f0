from __future__ import annotations

import math

import numpy as np
import pytest

from activeserve.core.errors import ConfigError, InputError
from activeserve.core.scores import (
    SCORE_NAMES,
    ScoreConfig,
    Scores,
    score_patches,
    single_view_scores,
    softmax,
    uncertainty,
)

KEEP_ALL = ScoreConfig(alpha=1.0)

# H(0.8, 0.2) = 0.8 ln 1.25 + 0.2 ln 5 = 0.178515 + 0.321888
H_80_20 = 0.8 * math.log(1.25) + 0.2 * math.log(5.0)
# H(0.9, 0.1) = 0.9 ln(10/9) + 0.1 ln 10
H_90_10 = 0.9 * math.log(10.0 / 9.0) + 0.1 * math.log(10.0)
# Jeffreys between (0.8, 0.2) and (0.2, 0.8): 0.6 ln 4 + (-0.6)(-ln 4) = 1.2 ln 4
J_80_20 = 1.2 * math.log(4.0)


def _candidate(*patches: list[float]) -> np.ndarray:
    """One candidate's patches as a [1, m, K] batch."""
    return np.array([patches], dtype=np.float64)


def _reference(probs: np.ndarray, config: ScoreConfig) -> dict[str, list[float]]:
    """The aift.md formulas, written out with loops over candidates and pairs."""
    out: dict[str, list[float]] = {name: [] for name in SCORE_NAMES}
    for patches in probs:
        m = patches.shape[0]
        kept_count = max(1, math.ceil(config.alpha * m - 1e-9))
        dominant = int(np.argmax(patches.mean(axis=0)))
        order = sorted(range(m), key=lambda j: (-patches[j, dominant], j))
        kept = patches[order[:kept_count]]

        def log(p: np.ndarray) -> np.ndarray:
            logs: np.ndarray = np.log(np.clip(p, config.eps, 1.0))
            return logs

        def h(p: np.ndarray) -> float:
            return float(-(p * log(p)).sum())

        entropy = sum(h(p) for p in kept) / len(kept)
        diversity = 0.0
        for j in range(len(kept)):
            for other in range(j + 1, len(kept)):
                diff = kept[j] - kept[other]
                diversity += float((diff * (log(kept[j]) - log(kept[other]))).sum())

        ranked = np.sort(patches[0])[::-1]
        out["entropy"].append(entropy)
        out["diversity"].append(diversity)
        out["score"].append(
            config.lambda_entropy * entropy + config.lambda_diversity * diversity
        )
        out["least_confidence"].append(1.0 - ranked[0])
        out["margin"].append(ranked[0] - ranked[1])
        out["mutual_information"].append(
            h(patches.mean(axis=0)) - sum(h(p) for p in patches) / m
        )
    return out


def test_uniform_two_class_entropy_is_ln_2() -> None:
    scores = single_view_scores(np.array([[0.5, 0.5]]), ScoreConfig())

    assert scores.entropy[0] == pytest.approx(math.log(2.0))
    assert scores.score[0] == pytest.approx(math.log(2.0))


def test_certain_prediction_has_exactly_zero_entropy() -> None:
    scores = single_view_scores(np.array([[1.0, 0.0]]), ScoreConfig())

    assert scores.entropy[0] == 0.0
    assert scores.least_confidence[0] == 0.0
    assert scores.margin[0] == 1.0


def test_two_disagreeing_patches_give_hand_computed_scores() -> None:
    scores = score_patches(_candidate([0.8, 0.2], [0.2, 0.8]), KEEP_ALL)

    assert scores.entropy[0] == pytest.approx(H_80_20)
    assert scores.diversity[0] == pytest.approx(J_80_20)
    assert scores.score[0] == pytest.approx(H_80_20 + J_80_20)
    # H(mean) = H(0.5, 0.5) = ln 2; mean of the patch entropies is H_80_20.
    assert scores.mutual_information[0] == pytest.approx(math.log(2.0) - H_80_20)


def test_diversity_counts_each_unordered_pair_once() -> None:
    # Patches A, B, A: pairs (A, B), (A, A), (B, A), so twice J(A, B), not four times.
    a, b = [0.8, 0.2], [0.2, 0.8]

    scores = score_patches(_candidate(a, b, a), KEEP_ALL)

    assert scores.diversity[0] == pytest.approx(2.0 * J_80_20)


def test_entropy_is_the_mean_over_kept_patches_not_the_sum() -> None:
    scores = score_patches(_candidate([0.8, 0.2], [0.8, 0.2], [0.8, 0.2]), KEEP_ALL)

    assert scores.entropy[0] == pytest.approx(H_80_20)
    assert scores.diversity[0] == pytest.approx(0.0, abs=1e-12)


def test_majority_selection_keeps_the_patches_surest_of_the_dominant_class() -> None:
    # Mean of class 0 is 0.65, so class 0 dominates; ranked by P[j, 0]: patches 0
    # (0.9) and 3 (0.8) are kept by alpha = 1/2 of m = 4.
    probs = _candidate([0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2])

    scores = score_patches(probs, ScoreConfig(alpha=0.5))

    # Jeffreys((0.9, 0.1), (0.8, 0.2)) = 0.1 ln(9/8) + 0.1 ln 2
    expected_diversity = 0.1 * math.log(9.0 / 8.0) + 0.1 * math.log(2.0)
    assert scores.entropy[0] == pytest.approx((H_90_10 + H_80_20) / 2.0)
    assert scores.diversity[0] == pytest.approx(expected_diversity)


def test_majority_selection_breaks_ties_in_favour_of_the_input() -> None:
    # Patches 0 and 1 tie on the dominant class; patch 0 is kept.
    probs = _candidate([0.7, 0.2, 0.1], [0.7, 0.1, 0.2], [0.1, 0.1, 0.8])

    scores = score_patches(probs, ScoreConfig(alpha=0.3))

    h_first = -sum(p * math.log(p) for p in (0.7, 0.2, 0.1))
    assert scores.entropy[0] == pytest.approx(h_first)


@pytest.mark.parametrize(
    ("alpha", "views", "kept"),
    [
        (0.25, 1, 1),
        (0.25, 4, 1),
        (0.25, 9, 3),
        (0.25, 12, 3),
        (0.25, 21, 6),
        (0.25, 24, 6),
        (0.5, 9, 5),
        (1.0, 9, 9),
        (0.01, 9, 1),
    ],
)
def test_kept_patches_is_ceil_of_alpha_m_and_at_least_one(
    alpha: float, views: int, kept: int
) -> None:
    assert ScoreConfig(alpha=alpha).kept_patches(views) == kept


def test_zero_probabilities_are_clipped_before_logs() -> None:
    config = ScoreConfig(alpha=1.0, eps=1e-7)

    scores = score_patches(_candidate([1.0, 0.0], [0.0, 1.0]), config)

    # Each class: (1 - 0)(ln 1 - ln eps) = -ln eps, twice.
    assert scores.entropy[0] == 0.0
    assert scores.diversity[0] == pytest.approx(-2.0 * math.log(1e-7))
    assert np.isfinite(scores.mutual_information[0])


def test_least_confidence_and_margin_use_patch_zero_only() -> None:
    probs = _candidate([0.6, 0.3, 0.1], [0.1, 0.1, 0.8])

    scores = score_patches(probs, ScoreConfig())

    assert scores.least_confidence[0] == pytest.approx(0.4)
    assert scores.margin[0] == pytest.approx(0.3)


def test_mutual_information_uses_all_patches_not_only_kept_ones() -> None:
    # alpha keeps one patch of two: diversity is 0, but the views still disagree.
    scores = score_patches(_candidate([0.8, 0.2], [0.2, 0.8]), ScoreConfig(alpha=0.25))

    assert scores.diversity[0] == 0.0
    assert scores.mutual_information[0] == pytest.approx(math.log(2.0) - H_80_20)


def test_one_view_reduces_to_plain_entropy() -> None:
    rng = np.random.default_rng(3)
    probs = softmax(rng.normal(size=(20, 5)))
    config = ScoreConfig(lambda_entropy=0.5)

    scores = single_view_scores(probs, config)

    expected = -(probs * np.log(probs)).sum(axis=1)
    np.testing.assert_allclose(scores.entropy, expected)
    np.testing.assert_array_equal(scores.diversity, 0.0)
    np.testing.assert_array_equal(scores.mutual_information, 0.0)
    np.testing.assert_allclose(scores.score, 0.5 * expected)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0])
def test_vectorised_scores_match_the_formulas_written_with_loops(alpha: float) -> None:
    rng = np.random.default_rng(7)
    probs = softmax(rng.normal(scale=2.0, size=(16, 9, 4)))
    probs[0, 2] = [1.0, 0.0, 0.0, 0.0]
    config = ScoreConfig(alpha=alpha, lambda_entropy=0.7, lambda_diversity=1.3)

    scores = score_patches(probs, config)

    for name, expected in _reference(probs, config).items():
        np.testing.assert_allclose(
            scores.get(name), expected, rtol=1e-9, atol=1e-9, err_msg=name
        )


def test_lambdas_switch_entropy_and_diversity_on_and_off() -> None:
    probs = _candidate([0.8, 0.2], [0.2, 0.8])

    entropy_only = score_patches(probs, ScoreConfig(alpha=1.0, lambda_diversity=0.0))
    diversity_only = score_patches(probs, ScoreConfig(alpha=1.0, lambda_entropy=0.0))

    assert entropy_only.score[0] == pytest.approx(H_80_20)
    assert diversity_only.score[0] == pytest.approx(J_80_20)


def test_scores_are_read_only_float64_of_one_value_per_candidate() -> None:
    scores = score_patches(np.full((3, 2, 2), 0.5), ScoreConfig())

    assert len(scores) == 3
    for name in SCORE_NAMES:
        values = scores.get(name)
        assert values.shape == (3,)
        assert values.dtype == np.float64
        with pytest.raises(ValueError, match="read-only"):
            values[0] = 1.0


def test_get_refuses_an_unknown_score_name() -> None:
    scores = single_view_scores(np.array([[0.5, 0.5]]), ScoreConfig())

    with pytest.raises(ConfigError, match="'entropi' is unknown; expected one of"):
        scores.get("entropi")


def test_uncertainty_flips_margin_and_passes_the_others_through() -> None:
    scores = single_view_scores(np.array([[0.7, 0.2, 0.1]]), ScoreConfig())

    assert uncertainty(scores, "margin")[0] == pytest.approx(0.5)
    assert uncertainty(scores, "least_confidence")[0] == pytest.approx(0.3)
    assert uncertainty(scores, "score") is scores.score


def test_softmax_is_stable_for_huge_logits_and_keeps_float32() -> None:
    logits = np.array([[1000.0, 1000.0], [-1000.0, 0.0]], dtype=np.float32)

    probs = softmax(logits)

    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs[0], [0.5, 0.5])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_softmax_normalises_along_the_given_axis() -> None:
    probs = softmax(np.arange(6).reshape(2, 3), axis=0)

    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=0), 1.0)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((4, 3), r"expected \[N, m, K\]"), ((4, 2, 1), "K >= 2 classes")],
)
def test_score_patches_refuses_wrong_shapes(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(InputError, match=match):
        score_patches(np.full(shape, 0.5), ScoreConfig())


def test_single_view_scores_refuses_patch_batches() -> None:
    with pytest.raises(InputError, match=r"expected \[N, K\]"):
        single_view_scores(np.full((2, 3, 2), 0.5), ScoreConfig())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, r"ScoreConfig.alpha = 0.0 is invalid; expected a fraction"),
        ({"alpha": 1.5}, r"alpha = 1.5 is invalid"),
        ({"lambda_entropy": -1.0}, r"lambda_entropy = -1.0 is invalid"),
        ({"lambda_diversity": math.inf}, r"lambda_diversity = inf is invalid"),
        ({"eps": 0.0}, r"eps = 0.0 is invalid; expected a small probability"),
    ],
)
def test_score_config_refuses_values_out_of_range(
    kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        ScoreConfig(**kwargs)


def test_scores_value_class_is_built_from_arrays() -> None:
    values = np.zeros(2)

    scores = Scores(
        entropy=values.copy(),
        diversity=values.copy(),
        score=values.copy(),
        least_confidence=values.copy(),
        margin=values.copy(),
        mutual_information=values.copy(),
    )

    assert len(scores) == 2
