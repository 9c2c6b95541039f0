"""Uncertainty scores of candidates from the model's answers on their views.

For each candidate the model gives ``P``, ``[m, K]``: the probability of class ``k``
for patch ``j``. The AIFT score (Zhou et al., CVPR 2017; Medical Image Analysis 2021)
is computed in the journal form:

1. Majority selection. The dominant class is ``y = argmax_k mean_j P[j, k]``; the
   patches are ranked by ``P[j, y]``, highest first (ties: lower patch index first),
   and the top ``m' = max(1, ceil(alpha * m))`` are kept. Entropy and diversity use
   the kept patches only.
2. Entropy, averaged over kept patches:
   ``e = -(1/m') sum_j sum_k P[j,k] log P[j,k]``.
3. Diversity, the symmetric Kullback-Leibler (Jeffreys) divergence summed once over
   each unordered pair of kept patches:
   ``d = sum_{j<l} sum_k (P[j,k] - P[l,k]) (log P[j,k] - log P[l,k])``.
4. Score: ``a = lambda_entropy * e + lambda_diversity * d``.

(The CVPR demo code sums the entropy instead and counts each pair twice; this module
does not.)

Beside it, measures users know: ``least_confidence = 1 - max_k P[0,k]`` and
``margin = p_(1) - p_(2)`` on patch 0 (the input as given; a small margin means
uncertain), and ``mutual_information = H(mean_j P[j]) - mean_j H(P[j])`` over all
``m`` patches (the BALD form, with views in place of dropout samples).

Logarithms read probabilities clipped to ``[eps, 1]``; the factors in front of them are
used as given, so a class of probability exactly 0 adds exactly 0 to an entropy, and
a patch that gives probability 0 to a class another patch is sure of adds
``log(1 / eps)`` to the diversity rather than infinity. Rows are not checked to sum to
1; a non-finite probability makes that candidate's scores meaningless (mostly NaN)
without touching the others.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, InputError

__all__ = [
    "SCORE_NAMES",
    "ScoreConfig",
    "Scores",
    "score_patches",
    "single_view_scores",
    "softmax",
    "uncertainty",
]

logger = logging.getLogger(__name__)

SCORE_NAMES: tuple[str, ...] = (
    "score",
    "entropy",
    "diversity",
    "least_confidence",
    "margin",
    "mutual_information",
)

# Guards ceil(alpha * m) against products such as 0.25 * 12 landing a hair above 3.
_CEIL_SLACK = 1e-9


@dataclass(frozen=True)
class ScoreConfig:
    """Parameters of the AIFT score.

    ``alpha`` is the fraction of patches kept by majority selection: ``m' =
    max(1, ceil(alpha * m))``. The lambdas weigh entropy and diversity in the score;
    the papers use them as switches (0 or 1). ``eps`` is the lower clip of
    probabilities before logarithms.
    """

    alpha: float = 0.25
    lambda_entropy: float = 1.0
    lambda_diversity: float = 1.0
    eps: float = 1e-7

    def __post_init__(self) -> None:
        owner = type(self).__name__

        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError.invalid(
                owner, "alpha", self.alpha, "a fraction in (0, 1]; the papers use 0.25"
            )

        for name in ("lambda_entropy", "lambda_diversity"):
            weight = getattr(self, name)
            if not (math.isfinite(weight) and weight >= 0.0):
                raise ConfigError.invalid(owner, name, weight, "a finite weight >= 0")

        if not 0.0 < self.eps < 1.0:
            raise ConfigError.invalid(
                owner, "eps", self.eps, "a small probability in (0, 1), e.g. 1e-7"
            )

    def kept_patches(self, views: int) -> int:
        """``m'``, the patches majority selection keeps out of ``views``."""
        return max(1, math.ceil(self.alpha * views - _CEIL_SLACK))


@dataclass(frozen=True, eq=False)
class Scores:
    """Every score of ``N`` candidates; each field is a read-only float ``[N]``
    (float64 from this module's functions; a server may keep float32 copies).

    Higher means more uncertain for all of them except ``margin``, where lower does;
    ``uncertainty`` gives a view where higher always means more uncertain.
    """

    entropy: np.ndarray
    diversity: np.ndarray
    score: np.ndarray
    least_confidence: np.ndarray
    margin: np.ndarray
    mutual_information: np.ndarray

    def __post_init__(self) -> None:
        # SCORE_NAMES are the field names; `dataclasses.fields` would cost more on
        # the server's request path than the flags themselves.
        for name in SCORE_NAMES:
            getattr(self, name).flags.writeable = False

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def get(self, name: str) -> np.ndarray:
        """The score called ``name``, one of ``SCORE_NAMES``."""
        if name not in SCORE_NAMES:
            raise ConfigError(
                f"score name {name!r} is unknown; expected one of {SCORE_NAMES!r}"
            )
        values: np.ndarray = getattr(self, name)
        return values


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities from logits along ``axis``; same shape as ``logits``.

    Stable for large logits (the row maximum is subtracted first). Floating inputs keep
    their dtype; others become float64. A row whose logits are all ``-inf`` gives NaN.
    """
    values = np.asarray(logits)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)

    shifted = values - np.max(values, axis=axis, keepdims=True)
    exps = np.exp(shifted)
    probs: np.ndarray = exps / np.sum(exps, axis=axis, keepdims=True)
    return probs


def score_patches(patch_probs: np.ndarray, config: ScoreConfig) -> Scores:
    """Every score of ``N`` candidates from their patches' probabilities.

    ``patch_probs`` is ``[N, m, K]`` with ``m >= 1`` and ``K >= 2``: candidate ``n``'s
    patch ``j`` gives probability ``patch_probs[n, j, k]`` to class ``k``; patch 0 is
    the candidate as given (the layout of ``make_views``). See the module docstring
    for the formulas. With ``m = 1`` diversity and mutual information are 0 and the
    score is ``lambda_entropy * entropy``.
    """
    probs = np.asarray(patch_probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[1] < 1 or probs.shape[2] < 2:
        raise InputError(
            f"patch probabilities have shape {probs.shape!r}; expected [N, m, K] "
            "with m >= 1 views and K >= 2 classes (use single_view_scores for [N, K])"
        )

    logs = np.log(np.clip(probs, config.eps, 1.0))

    kept, kept_logs = _majority(probs, logs, config.kept_patches(probs.shape[1]))
    entropy = -np.einsum("njk,njk->n", kept, kept_logs) / kept.shape[1]
    diversity = _pairwise_jeffreys(kept, kept_logs)

    first = probs[:, 0, :]
    top_two = -np.partition(-first, 1, axis=1)[:, :2]
    mean = probs.mean(axis=1)
    mean_entropy = -np.einsum("nk,nk->n", mean, np.log(np.clip(mean, config.eps, 1.0)))
    patch_entropy = -np.einsum("njk,njk->n", probs, logs) / probs.shape[1]

    return Scores(
        entropy=entropy,
        diversity=diversity,
        score=config.lambda_entropy * entropy + config.lambda_diversity * diversity,
        least_confidence=1.0 - top_two[:, 0],
        margin=top_two[:, 0] - top_two[:, 1],
        # Jensen makes this >= 0; clamp the rounding of equal terms.
        mutual_information=np.maximum(mean_entropy - patch_entropy, 0.0),
    )


def single_view_scores(probs: np.ndarray, config: ScoreConfig) -> Scores:
    """Scores of ``N`` candidates seen once: ``probs`` is ``[N, K]``.

    The ``m = 1`` case of ``score_patches``, computed directly because the server runs
    it on every request: diversity and mutual information are 0.
    """
    values = np.asarray(probs, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 2:
        raise InputError(
            f"probabilities have shape {values.shape!r}; expected [N, K] with K >= 2 "
            "(use score_patches for [N, m, K])"
        )

    logs = np.log(np.clip(values, config.eps, 1.0))
    entropy = -np.einsum("nk,nk->n", values, logs)
    top_two = -np.partition(-values, 1, axis=1)[:, :2]
    return Scores(
        entropy=entropy,
        diversity=np.zeros(len(values)),
        score=config.lambda_entropy * entropy,
        least_confidence=1.0 - top_two[:, 0],
        margin=top_two[:, 0] - top_two[:, 1],
        mutual_information=np.zeros(len(values)),
    )


def uncertainty(scores: Scores, name: str) -> np.ndarray:
    """The score ``name`` as a float64 ``[N]`` where higher means more uncertain.

    ``margin`` becomes ``1 - margin``; every other score is returned as it is.
    """
    values = scores.get(name)
    if name == "margin":
        flipped: np.ndarray = 1.0 - values
        return flipped
    return values


def _majority(
    probs: np.ndarray, logs: np.ndarray, kept: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``kept`` patches most sure of the dominant class: two ``[N, m', K]``."""
    if kept == probs.shape[1]:
        return probs, logs

    dominant = probs.mean(axis=1).argmax(axis=1)
    support = np.take_along_axis(probs, dominant[:, None, None], axis=2)[:, :, 0]

    # A stable sort of the negated support ranks highest first and keeps patch order
    # among ties, so patch 0 (the input) wins a tie.
    order = np.argsort(-support, axis=1, kind="stable")[:, :kept, None]
    return (
        np.take_along_axis(probs, order, axis=1),
        np.take_along_axis(logs, order, axis=1),
    )


def _pairwise_jeffreys(kept: np.ndarray, kept_logs: np.ndarray) -> np.ndarray:
    """Symmetric KL summed once over unordered pairs of kept patches: ``[N]``.

    Over ordered pairs, ``sum_{j,l} (p_j - p_l).(L_j - L_l) = 2 m' sum_j p_j.L_j -
    2 (sum_j p_j).(sum_l L_l)``; unordered pairs are half of that (the diagonal adds
    0), which costs ``O(m' K)`` instead of ``O(m'^2 K)``.
    """
    count = kept.shape[1]
    own = np.einsum("njk,njk->n", kept, kept_logs)
    cross = np.einsum("nk,nk->n", kept.sum(axis=1), kept_logs.sum(axis=1))
    # Clamp the rounding of patches that agree exactly.
    diversity: np.ndarray = np.maximum(count * own - cross, 0.0)
    return diversity
