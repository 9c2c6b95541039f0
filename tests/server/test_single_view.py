"""Per-batch probabilities, labels and scores agree with the core's definitions."""

from __future__ import annotations

import numpy as np
import pytest

from activeserve.core.scores import (
    SCORE_NAMES,
    ScoreConfig,
    single_view_scores,
    softmax,
)
from activeserve.server.runtime.model import _Rows
from activeserve.server.runtime.single_view import _plain, _vectorised, batch_columns


def _expected(raw: np.ndarray, logits: bool, config: ScoreConfig) -> list[np.ndarray]:
    values = raw.astype(np.float64)
    probs = softmax(values) if logits else values
    scores = single_view_scores(probs, config)
    return [probs, probs.argmax(axis=1), *(scores.get(name) for name in SCORE_NAMES)]


def _assert_columns(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(actual) == 2 + len(SCORE_NAMES)
    probs, labels, *scores = actual
    assert probs.dtype == np.float32
    assert labels.dtype == np.int64
    assert all(column.dtype == np.float32 for column in scores)
    np.testing.assert_allclose(probs, expected[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(labels, expected[1])
    for name, column, want in zip(SCORE_NAMES, scores, expected[2:], strict=True):
        np.testing.assert_allclose(column, want, rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("rows, classes", [(1, 2), (1, 10), (7, 10), (40, 3)])
@pytest.mark.parametrize("logits", [True, False])
def test_both_paths_match_the_core(rows: int, classes: int, logits: bool) -> None:
    rng = np.random.default_rng(rows * 100 + classes)
    config = ScoreConfig(lambda_entropy=0.5)
    if logits:
        raw = (rng.standard_normal((rows, classes)) * 4).astype(np.float32)
    else:
        raw = rng.dirichlet(np.full(classes, 0.3), size=rows).astype(np.float32)
        raw[0, 0] = 0.0  # a class of probability exactly 0 adds 0 to the entropy

    expected = _expected(raw, logits, config)

    _assert_columns(_plain(raw.tolist(), raw.shape[1], logits, config), expected)
    _assert_columns(_vectorised(raw, logits, config), expected)
    _assert_columns(batch_columns(raw, logits=logits, config=config), expected)


def test_ties_take_the_first_class_like_argmax() -> None:
    raw = np.array([[0.4, 0.4, 0.2], [0.1, 0.45, 0.45]], dtype=np.float32)

    _, labels, *_ = _plain(raw.tolist(), raw.shape[1], False, ScoreConfig())

    np.testing.assert_array_equal(labels, [0, 1])


def test_extreme_logits_stay_finite() -> None:
    raw = np.array([[80.0, -80.0, 0.0], [-3e38, 3e38, 0.0]], dtype=np.float32)

    expected = _expected(raw, True, ScoreConfig())

    _assert_columns(batch_columns(raw, logits=True, config=ScoreConfig()), expected)


def test_a_batch_with_a_non_finite_value_goes_through_numpy() -> None:
    raw = np.array([[1.0, np.nan], [0.5, 2.0]], dtype=np.float32)

    probs, _, *scores = batch_columns(raw, logits=True, config=ScoreConfig())

    assert np.isnan(probs[0]).all()
    np.testing.assert_allclose(probs[1], softmax(raw[1:].astype(np.float64))[0])
    score = scores[SCORE_NAMES.index("score")]
    assert np.isnan(score[0]) and np.isfinite(score[1])


def test_a_large_batch_uses_numpy_and_agrees() -> None:
    raw = np.random.default_rng(9).standard_normal((300, 10)).astype(np.float32)

    expected = _expected(raw, True, ScoreConfig())

    _assert_columns(batch_columns(raw, logits=True, config=ScoreConfig()), expected)


def test_an_empty_batch_gives_empty_columns() -> None:
    columns = _plain([], 4, True, ScoreConfig())

    assert [column.shape for column in columns] == [(0, 4)] + [(0,)] * 7


def test_unpacked_rows_name_every_score_column_after_the_core() -> None:
    # Each score column holds its own index, so a column filed under the wrong
    # name shows.
    probabilities = np.full((2, 3), 1 / 3, dtype=np.float32)
    labels = np.zeros(2, dtype=np.int64)
    scores = [np.full(2, k, dtype=np.float32) for k in range(len(SCORE_NAMES))]
    logits = np.zeros((2, 3), dtype=np.float32)

    rows = _Rows.unpack([logits, probabilities, labels, *scores], graph_outputs=1)

    for k, name in enumerate(SCORE_NAMES):
        np.testing.assert_array_equal(rows.single.get(name), [k, k], err_msg=name)
