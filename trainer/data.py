"""What one fine-tuning round trains on, and for how many steps.

Two policies from the ACFT article (see ``docs`` / aift.md, "Fine-tuning"); both start
from the current model's weights:

``all`` (ACFT-LQ)
    Every label collected so far, for ``epochs`` passes:
    ``steps = epochs * ceil(n_all / batch_size)``.

``hq`` (ACFT-HQ)
    The new labels, plus the earlier labelled candidates that the current model gets
    wrong, plus a replay sample of ``round(replay_fraction * n_earlier)`` of the other
    earlier labels, drawn at random. The round takes THE SAME NUMBER OF STEPS as an
    ``all`` round on every label would, drawing its batches from the smaller set. The
    step budget is matched on purpose: measured on digits, HQ with the same epochs
    (hence far fewer steps) forgot what it knew and its accuracy collapsed; the saving
    of HQ is in the examples it looks at, not in the optimisation it does.

A round is a :class:`RoundPlan`; :func:`plan_round` builds one, and
:func:`activeserve.trainer.fine_tune.fine_tune` carries it out. All indices are rows of
the arrays of labelled candidates the caller keeps (inputs ``[N, *S]``, labels
``[N]``), in any order, with the new labels marked by a boolean mask.

This module needs numpy only; the current model's predictions come in as an array.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from activeserve.trainer.errors import DataError

logger = logging.getLogger(__name__)

Policy = Literal["all", "hq"]
POLICIES: tuple[str, ...] = get_args(Policy)


@dataclass(frozen=True)
class RoundPlan:
    """One fine-tuning round: which labelled rows to train on, and for how long.

    ``indices`` are rows of the caller's labelled arrays, each at most once, in
    ascending order. ``steps`` optimisation steps are taken with batches of up to
    ``batch_size`` candidates drawn from those rows (before views are added); the
    counts say where the rows came from.
    """

    policy: Policy
    indices: tuple[int, ...]
    steps: int
    batch_size: int
    new_count: int
    misclassified_count: int = 0
    replay_count: int = 0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise DataError(
                f"unknown training policy {self.policy!r}; expected one of {POLICIES!r}"
            )
        if not self.indices:
            raise DataError(
                "a round plan needs at least one labelled row; wait for labels before "
                "planning a round"
            )
        if self.steps < 1 or self.batch_size < 1:
            raise DataError(
                f"a round plan needs steps >= 1 and batch_size >= 1, got steps "
                f"{self.steps!r} and batch_size {self.batch_size!r}"
            )

    @property
    def size(self) -> int:
        """Number of labelled candidates the round trains on."""
        return len(self.indices)


def steps_for(n_candidates: int, epochs: int, batch_size: int) -> int:
    """Optimisation steps of ``epochs`` passes over ``n_candidates`` in batches.

    ``epochs * ceil(n_candidates / batch_size)``: the last batch of a pass may be short.
    """
    if n_candidates < 1 or epochs < 1 or batch_size < 1:
        raise DataError(
            f"steps_for needs positive counts, got n_candidates {n_candidates!r}, "
            f"epochs {epochs!r}, batch_size {batch_size!r}"
        )
    return epochs * math.ceil(n_candidates / batch_size)


def plan_round(
    policy: str,
    labels: np.ndarray,
    new_mask: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    predictions: np.ndarray | None = None,
    replay_fraction: float = 0.5,
    rng: np.random.Generator | None = None,
) -> RoundPlan:
    """Plan a round under ``policy`` (``"all"`` or ``"hq"``).

    ``labels`` is ``[N]`` int, the human label of every candidate labelled so far;
    ``new_mask`` is ``[N]`` bool, True for labels that arrived since the last round.
    ``predictions`` is ``[N]`` int, the current model's class for each candidate (for
    ``hq``, required; only the earlier rows are read). ``rng`` draws the replay sample
    (default: a generator seeded with 0, so a plan is reproducible). Pass the numbers
    from ``TrainingConfig``: ``epochs``, ``batch_size``, ``replay_fraction``.

    Both policies take ``steps_for(N, epochs, batch_size)`` steps; see the module
    docstring for why ``hq`` matches the step budget of ``all``.
    """
    if policy not in POLICIES:
        raise DataError(
            f"unknown training policy {policy!r}; expected one of {POLICIES!r} "
            "(set 'policy' in the training config)"
        )
    labels, new_mask = _check_rows(labels, new_mask)
    steps = steps_for(labels.shape[0], epochs, batch_size)

    if policy == "all":
        plan = RoundPlan(
            policy="all",
            indices=tuple(range(labels.shape[0])),
            steps=steps,
            batch_size=batch_size,
            new_count=int(new_mask.sum()),
        )
    else:
        plan = _plan_hq(
            labels, new_mask, predictions, steps, batch_size, replay_fraction, rng
        )

    logger.info(
        "planned %s round: %s candidates (%s new, %s misclassified, %s replayed), "
        "%s steps of batch %s",
        plan.policy,
        plan.size,
        plan.new_count,
        plan.misclassified_count,
        plan.replay_count,
        plan.steps,
        plan.batch_size,
    )
    return plan


def _check_rows(labels: np.ndarray, new_mask: np.ndarray) -> tuple[np.ndarray, ...]:
    labels = np.asarray(labels)
    new_mask = np.asarray(new_mask)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise DataError(
            f"labels must be a non-empty [N] array, got shape {labels.shape!r}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"labels must be integer class indices, got dtype {labels.dtype!s}"
        )
    if new_mask.shape != labels.shape or new_mask.dtype != np.bool_:
        raise DataError(
            f"new_mask must be a bool array of shape {labels.shape!r}, got "
            f"{new_mask.dtype!s} of shape {new_mask.shape!r}"
        )
    return labels, new_mask


def _plan_hq(
    labels: np.ndarray,
    new_mask: np.ndarray,
    predictions: np.ndarray | None,
    steps: int,
    batch_size: int,
    replay_fraction: float,
    rng: np.random.Generator | None,
) -> RoundPlan:
    if predictions is None:
        raise DataError(
            "the 'hq' policy needs the current model's predictions for the labelled "
            "candidates; pass predictions=[N] class indices, or use policy 'all'"
        )
    predictions = np.asarray(predictions)
    if predictions.shape != labels.shape:
        raise DataError(
            f"predictions must have shape {labels.shape!r} like labels, got "
            f"{predictions.shape!r}"
        )
    if not 0.0 <= replay_fraction <= 1.0:
        raise DataError(f"replay_fraction must lie in [0, 1], got {replay_fraction!r}")

    new = np.flatnonzero(new_mask)
    earlier = ~new_mask
    misclassified = np.flatnonzero(earlier & (predictions != labels))
    correct = np.flatnonzero(earlier & (predictions == labels))

    # Replay is sized on all earlier labels, but drawn from the correctly classified
    # ones: the misclassified ones are in the set already.
    replay_size = min(round(replay_fraction * int(earlier.sum())), correct.size)
    generator = rng if rng is not None else np.random.default_rng(0)
    replay = generator.choice(correct, size=replay_size, replace=False)

    indices = np.sort(np.concatenate([new, misclassified, replay]).astype(np.int64))
    return RoundPlan(
        policy="hq",
        indices=tuple(int(i) for i in indices),
        steps=steps,
        batch_size=batch_size,
        new_count=int(new.size),
        misclassified_count=int(misclassified.size),
        replay_count=int(replay_size),
    )


def batch_schedule(plan: RoundPlan, rng: np.random.Generator) -> list[np.ndarray]:
    """The rows of each of the plan's ``steps`` batches, in order.

    Passes over ``plan.indices`` in a fresh random order each, cut into batches of
    ``plan.batch_size`` (the last of a pass may be short, so a batch never mixes two
    passes), until ``plan.steps`` batches are drawn. For an ``all`` plan that is exactly
    ``epochs`` passes; an ``hq`` plan makes more passes over its smaller set.
    """
    rows = np.asarray(plan.indices, dtype=np.int64)
    batches: list[np.ndarray] = []
    while len(batches) < plan.steps:
        order = rng.permutation(rows)
        for start in range(0, order.size, plan.batch_size):
            batches.append(order[start : start + plan.batch_size])
            if len(batches) == plan.steps:
                break
    return batches


def validation_mask(
    sample_ids: Sequence[str], fraction: float, seed: int = 0
) -> np.ndarray:
    """``[N]`` bool, True for the candidates held out for validation.

    Each candidate's side is decided by a hash of ``seed`` and its sample id alone, so
    a candidate stays on the same side in every round while labels accumulate, and
    about ``fraction`` of them are held out. Pass
    ``TrainingConfig.validation_fraction``.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"validation fraction must lie in [0, 1), got {fraction!r}")

    mask = np.zeros(len(sample_ids), dtype=np.bool_)
    for row, sample_id in enumerate(sample_ids):
        digest = hashlib.blake2b(f"{seed}:{sample_id}".encode(), digest_size=8)
        # The first 8 bytes as a fraction in [0, 1).
        position = int.from_bytes(digest.digest(), "little") / 2.0**64
        mask[row] = position < fraction
    return mask
