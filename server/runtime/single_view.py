"""Probabilities, labels and single-view scores of a batch, as the server answers them.

Every run of a model is followed by this step, on every row: the softmax of the
class output (or the probabilities the graph gives), the label, and the scores
`activeserve.core.scores.single_view_scores` defines. Results are columns whose first
axis is the row, probabilities and scores in float32, labels in int64.

On a few rows numpy's cost is its per-call overhead: about 20 calls cost 75 to 150 us
on the 2-core benchmark machine whatever the size, more than the small model's whole
run. So batches of up to `_PLAIN_ELEMENTS` class values are computed with Python
floats (float64, the same formulas, equal to the numpy path within rounding, which
the tests check); larger ones, and any batch holding a non-finite value, go through
the core's numpy functions.
"""

from __future__ import annotations

import math

import numpy as np

from activeserve.core.scores import (
    SCORE_NAMES,
    ScoreConfig,
    single_view_scores,
    softmax,
)

# Rows x classes up to which plain Python floats beat numpy (measured crossover
# around 1,000 on the benchmark machine; kept below it).
_PLAIN_ELEMENTS = 512


def batch_columns(
    raw: np.ndarray, *, logits: bool, config: ScoreConfig
) -> list[np.ndarray]:
    """`[probabilities, labels, *scores in SCORE_NAMES order]` for `raw` `[N, K]`,
    the graph's class output (`logits` says whether a softmax is due)."""
    if raw.size <= _PLAIN_ELEMENTS and np.isfinite(raw).all():
        return _plain(raw.tolist(), raw.shape[1], logits, config)
    return _vectorised(raw, logits, config)


def _vectorised(raw: np.ndarray, logits: bool, config: ScoreConfig) -> list[np.ndarray]:
    values = raw.astype(np.float64, copy=False)
    probs = softmax(values, axis=-1) if logits else values
    single = single_view_scores(probs, config)
    # One cast of the whole batch instead of one per request and score.
    scores = np.stack([single.get(name) for name in SCORE_NAMES]).astype(np.float32)
    return [
        probs.astype(np.float32),
        probs.argmax(axis=-1).astype(np.int64),
        *scores,
    ]


def _plain(
    rows: list[list[float]], classes: int, logits: bool, config: ScoreConfig
) -> list[np.ndarray]:
    eps = config.eps
    weight = config.lambda_entropy
    exp = math.exp
    log = math.log
    table = []
    labels = []
    for values in rows:
        if logits:
            top = max(values)
            exps = [exp(value - top) for value in values]
            total = sum(exps)
            probs = [value / total for value in exps]
        else:
            probs = values
        entropy = 0.0
        for p in probs:
            # The core clips to [eps, 1] before the logarithm.
            entropy -= p * log(eps if p < eps else 1.0 if p > 1.0 else p)
        ordered = sorted(probs)
        first = ordered[-1]
        second = ordered[-2]
        labels.append(probs.index(first))
        # The probabilities, then the scores in SCORE_NAMES order: score, entropy,
        # diversity, least confidence, margin, mutual information (one view: no
        # diversity, no information).
        table.append(
            [*probs, weight * entropy, entropy, 0.0, 1.0 - first, first - second, 0.0]
        )

    # One array for the whole batch; the columns are views of it.
    width = classes + len(SCORE_NAMES)
    batch = np.array(table, dtype=np.float32).reshape(len(rows), width)
    return [
        batch[:, :classes],
        np.array(labels, dtype=np.int64),
        *(batch[:, classes + k] for k in range(len(SCORE_NAMES))),
    ]
