"""Choosing which candidates to ask a human to label.

Two settings, as in aift.md "Selection":

- **Pool-based** (offline, benchmarks): a fixed set of scored candidates and a budget
  ``b``. ``select_top`` takes the ``b`` highest; ``select_randomised`` is the ACFT
  randomised selection, which samples ``b`` from the top ``omega * b`` in proportion
  to their normalised score.
- **Streaming** (the server): candidates arrive in batches and are flagged or not
  as they pass, by ``FlagPolicy``: a threshold on uncertainty, or the top fraction of
  a sliding window of recent traffic, under a labels-per-hour budget.

Every function takes scores where higher means more worth labelling (for a margin,
pass ``uncertainty(scores, "margin")``). NaN scores rank below every other score.
"""

from __future__ import annotations

import collections
import logging
import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, InputError
from .scores import SCORE_NAMES

__all__ = [
    "FLAG_POLICIES",
    "FlagConfig",
    "FlagPolicy",
    "select_randomised",
    "select_top",
]

logger = logging.getLogger(__name__)

FLAG_POLICIES: tuple[str, ...] = ("top_fraction", "threshold")

_SECONDS_PER_HOUR = 3600.0

# Guards ceil(x * n) against products landing a hair above an integer.
_CEIL_SLACK = 1e-9


def select_top(scores: np.ndarray, budget: int) -> np.ndarray:
    """Indices of the ``budget`` highest ``scores`` (``[N]``), highest first.

    Ties keep index order; NaN ranks last. Returns ``[min(budget, N)]`` int64.
    """
    values = _check_scores(scores)
    _check_budget(budget)
    return _ranked(values)[:budget]


def select_randomised(
    scores: np.ndarray, budget: int, omega: float, rng: np.random.Generator
) -> np.ndarray:
    """ACFT randomised selection of ``budget`` indices of ``scores`` (``[N]``).

    The pool is the top ``ceil(omega * budget)`` scores (all of them when ``N`` is
    smaller). Each pool member gets ``a'_i = (a_i - a_min) / (a_max - a_min)``, the
    pool's lowest score giving 0 and its highest 1, and ``budget`` of them are drawn
    without replacement with probability proportional to ``a'`` (numpy's sequential
    scheme: each draw renormalises over those left). Degenerate pools:

    - a pool no larger than the budget is taken whole;
    - when the pool's scores are all equal (or not finite), the draw is uniform;
    - members with ``a' = 0`` (the pool minimum, its ties, non-finite scores) are
      drawn only when fewer than ``budget`` members have ``a' > 0``, and then
      uniformly among them.

    Returns the chosen indices ordered by score, highest first, as int64.
    ``omega >= 1``; ``omega = 1`` makes the pool the budget, i.e. ``select_top``.
    """
    values = _check_scores(scores)
    _check_budget(budget)
    if not omega >= 1.0:
        raise InputError(
            f"omega = {omega!r} is invalid; expected >= 1 (1 = plain top selection; "
            "larger values draw from further down the ranking)"
        )

    ranked = _ranked(values)
    pool = ranked[: min(len(ranked), math.ceil(omega * budget - _CEIL_SLACK))]
    if len(pool) <= budget:
        return pool

    pool_scores = values[pool]
    finite = np.isfinite(pool_scores)
    if finite.any():
        low, high = pool_scores[finite].min(), pool_scores[finite].max()
    else:
        low = high = 0.0

    if high > low:
        weights = np.where(finite, (pool_scores - low) / (high - low), 0.0)
    else:
        weights = np.ones(len(pool))

    positive = np.flatnonzero(weights > 0.0)
    if len(positive) >= budget:
        picked = rng.choice(
            positive, size=budget, replace=False, p=weights[positive] / weights.sum()
        )
    else:
        zero = np.flatnonzero(weights <= 0.0)
        extra = rng.choice(zero, size=budget - len(positive), replace=False)
        picked = np.concatenate([positive, extra])

    # Pool positions are score ranks, so sorting them orders the choice by score.
    chosen: np.ndarray = pool[np.sort(picked)]
    return chosen


@dataclass(frozen=True)
class FlagConfig:
    """When the server flags a served candidate for labelling.

    ``policy`` is ``"threshold"`` (flag when the uncertainty of ``score`` is at least
    ``threshold``) or ``"top_fraction"`` (flag when it is among the top
    ``top_fraction`` of the last ``window`` uncertainties seen, the current batch
    included; until ``min_window`` have been seen, the threshold rule applies).
    ``budget_per_hour`` caps flags per hour with a token bucket (0 = no cap); when a
    batch has more passing candidates than the budget allows, the most uncertain are
    flagged, or, with ``randomised``, a draw weighted as in ``select_randomised``
    over all passing candidates. ``max_pending`` bounds the label-request queue (the
    queue store enforces it; ``FlagPolicy`` does not see the queue).
    """

    enabled: bool = True
    policy: str = "top_fraction"
    score: str = "score"
    threshold: float = 1.0
    top_fraction: float = 0.05
    window: int = 2000
    min_window: int = 50
    budget_per_hour: float = 0.0
    randomised: bool = False
    omega: float = 2.0
    max_pending: int = 10_000

    def __post_init__(self) -> None:
        owner = type(self).__name__
        checks: tuple[tuple[str, bool, str], ...] = (
            ("policy", self.policy in FLAG_POLICIES, f"one of {FLAG_POLICIES!r}"),
            ("score", self.score in SCORE_NAMES, f"one of {SCORE_NAMES!r}"),
            ("threshold", math.isfinite(self.threshold), "a finite number"),
            (
                "top_fraction",
                0.0 < self.top_fraction <= 1.0,
                "a fraction in (0, 1], e.g. 0.05 for the top 5%",
            ),
            ("window", self.window >= 1, "an integer >= 1 (recent uncertainties)"),
            (
                "min_window",
                0 <= self.min_window <= self.window,
                f"an integer in [0, window = {self.window}]",
            ),
            (
                "budget_per_hour",
                math.isfinite(self.budget_per_hour) and self.budget_per_hour >= 0.0,
                "a rate >= 0 (0 = no cap)",
            ),
            ("omega", self.omega >= 1.0, "a number >= 1 (1 = no random extension)"),
            ("max_pending", self.max_pending >= 1, "an integer >= 1"),
        )
        for name, valid, expected in checks:
            if not valid:
                raise ConfigError.invalid(owner, name, getattr(self, name), expected)


class FlagPolicy:
    """Decides, batch by batch, which served candidates to flag for labelling.

    Stateful: it keeps the last ``config.window`` finite uncertainties and the label
    budget's token bucket, which holds one hour's budget (at least one token), starts
    full, and refills at ``budget_per_hour / 3600`` tokens per second; so a burst may
    take a whole hour's budget at once. It is not thread-safe: callers
    serialise calls to ``decide`` (the server calls it from one thread).
    """

    def __init__(self, config: FlagConfig, seed: int = 0) -> None:
        self._config = config
        self._rng = np.random.default_rng(seed)
        self._recent: collections.deque[float] = collections.deque(maxlen=config.window)
        # A budget under one label per hour still needs room for one whole token.
        self._capacity = max(1.0, config.budget_per_hour)
        self._tokens = self._capacity
        self._last_s: float | None = None

    @property
    def config(self) -> FlagConfig:
        return self._config

    @property
    def tokens(self) -> float:
        """Flags the budget allows right now (``inf`` without a budget)."""
        if self._config.budget_per_hour == 0.0:
            return math.inf
        return self._tokens

    @property
    def window_size(self) -> int:
        """How many recent uncertainties the window holds."""
        return len(self._recent)

    def decide(self, uncertainty: np.ndarray, now_s: float) -> np.ndarray:
        """Which of a batch to flag: a bool ``[N]`` mask.

        ``uncertainty`` is ``[N]``, higher meaning more uncertain (as given by
        ``scores.uncertainty`` for ``config.score``); NaN entries are never flagged
        and never enter the window. ``now_s`` is a monotonic clock in seconds; a
        clock that goes back refills nothing.
        """
        values = _check_scores(uncertainty)
        config = self._config
        if not config.enabled:
            return np.zeros(len(values), dtype=bool)

        finite = np.isfinite(values)
        self._recent.extend(values[finite].tolist())
        passing = finite & (values >= self._cut())

        self._refill(now_s)
        allowed = len(values) if config.budget_per_hour == 0.0 else int(self._tokens)
        chosen = np.flatnonzero(passing)
        if len(chosen) > allowed:
            if config.randomised:
                keep = select_randomised(
                    values[chosen], allowed, config.omega, self._rng
                )
            else:
                keep = select_top(values[chosen], allowed)
            chosen = chosen[keep]

        if config.budget_per_hour > 0.0:
            self._tokens -= len(chosen)

        mask = np.zeros(len(values), dtype=bool)
        mask[chosen] = True
        logger.debug(
            "flagged %s of %s candidates (%s passed)",
            len(chosen),
            len(values),
            int(passing.sum()),
        )
        return mask

    def _cut(self) -> float:
        """The uncertainty a candidate needs to pass before the budget applies."""
        config = self._config
        if config.policy == "threshold" or len(self._recent) < config.min_window:
            return config.threshold
        if not self._recent:
            return math.inf

        # The k-th largest of the window, k = ceil(f * n): a value at least that
        # large has fewer than f * n values above it.
        window = np.fromiter(self._recent, dtype=np.float64, count=len(self._recent))
        rank = max(1, math.ceil(config.top_fraction * len(window) - _CEIL_SLACK))
        position = len(window) - rank
        return float(np.partition(window, position)[position])

    def _refill(self, now_s: float) -> None:
        if self._last_s is not None and now_s > self._last_s:
            rate = self._config.budget_per_hour / _SECONDS_PER_HOUR
            refilled = self._tokens + (now_s - self._last_s) * rate
            self._tokens = min(self._capacity, refilled)

        self._last_s = now_s if self._last_s is None else max(self._last_s, now_s)


def _check_scores(scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(
            f"scores have shape {values.shape!r}; expected one score per candidate, [N]"
        )
    return values


def _check_budget(budget: int) -> None:
    if budget < 0:
        raise InputError(f"budget = {budget!r} is invalid; expected an integer >= 0")


def _ranked(values: np.ndarray) -> np.ndarray:
    """All indices by score, highest first; ties in index order, NaN last."""
    # argsort puts NaN last; negating keeps it there while reversing the order.
    ranked: np.ndarray = np.argsort(-values, kind="stable").astype(np.int64)
    return ranked
