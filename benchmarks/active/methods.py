"""How each selection method picks the next labels, through ``activeserve.core``.

A method sees the current model's probabilities on the unlabelled pool and returns
the pool rows to label. It never computes a score itself: views come from
``make_views``, scores from ``score_patches`` / ``single_view_scores`` and
``uncertainty``, and the choice from ``select_top`` / ``select_randomised``, the
same functions the server flags with. The methods:

``aift``         AIFT score (entropy + diversity after majority selection with
                 ``alpha``) over the data set's ``m`` views; the top ``b``.
``aift-random``  the same score; ACFT's randomised selection from the top
                 ``omega * b``.
``entropy``      predictive entropy of the input alone; the top ``b``.
``margin``       the smallest margin ``p_(1) - p_(2)`` of the input alone.
``random``       ``b`` rows drawn uniformly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from torch import nn

from activeserve.core.scores import (
    ScoreConfig,
    score_patches,
    single_view_scores,
    uncertainty,
)
from activeserve.core.selection import select_randomised, select_top
from activeserve.core.views import ViewConfig, make_views, views_per_candidate
from activeserve.trainer.fine_tune import predict_proba

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    """A selection method: which score, over how many views, chosen how.

    ``score`` is a name from ``activeserve.core.scores.SCORE_NAMES`` (None for
    random selection); ``multi_view`` scores the data set's views instead of the
    input alone; ``randomised`` uses ``select_randomised`` with the run's omega.
    """

    name: str
    score: str | None
    multi_view: bool = False
    randomised: bool = False


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("aift", "score", multi_view=True),
        Method("aift-random", "score", multi_view=True, randomised=True),
        Method("entropy", "entropy"),
        Method("margin", "margin"),
        Method("random", None),
    )
}


def method_named(name: str) -> Method:
    """The method called ``name`` (one of ``METHODS``)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown selection method {name!r}; expected some of {tuple(METHODS)!r}"
        ) from None


@dataclass(frozen=True)
class SelectionParams:
    """The numbers a selection uses: views to score on, the score's parameters
    (``alpha`` among them), and ``omega`` for randomised selection."""

    views: ViewConfig
    scores: ScoreConfig
    omega: float = 2.0


def pool_probabilities(
    model: nn.Module, pool: np.ndarray, method: Method, params: SelectionParams
) -> np.ndarray | None:
    """The model's probabilities a method reads: ``[N, m, K]`` float32, or None.

    ``pool`` is ``[N, *S]``. Multi-view methods get every patch of every candidate
    (``m = params.views.count``, patch 0 the input); single-view methods ``m = 1``;
    random selection reads nothing.
    """
    if method.score is None:
        return None

    if not method.multi_view:
        return predict_proba(model, pool)[:, None, :]

    # make_views puts candidate i's patches at rows i*m .. i*m + m - 1.
    count = views_per_candidate(params.views)
    probs = predict_proba(model, make_views(pool, params.views))
    return probs.reshape(pool.shape[0], count, probs.shape[1])


def choose(
    method: Method,
    patch_probs: np.ndarray | None,
    pool_size: int,
    budget: int,
    params: SelectionParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rows of the pool to label next: ``[min(budget, pool_size)]`` int64.

    ``patch_probs`` is ``[pool_size, m, K]`` from :func:`pool_probabilities` (None
    for random selection). Scored methods return rows ranked highest first.
    """
    if method.score is None:
        picked = rng.choice(pool_size, size=min(budget, pool_size), replace=False)
        return picked.astype(np.int64)

    if patch_probs is None or patch_probs.shape[0] != pool_size:
        raise ValueError(
            f"method {method.name!r} needs probabilities [{pool_size}, m, K], got "
            f"{None if patch_probs is None else patch_probs.shape!r}"
        )

    if patch_probs.shape[1] == 1:
        scores = single_view_scores(patch_probs[:, 0, :], params.scores)
    else:
        scores = score_patches(patch_probs, params.scores)
    values = uncertainty(scores, method.score)

    if method.randomised:
        return select_randomised(values, budget, params.omega, rng)
    return select_top(values, budget)
