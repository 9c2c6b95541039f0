"""The figures of a run: labels to the target, area under the curve, labels saved.

For each selection method and fine-tuning policy, over the seeds:

- **labels needed**: the first point of a trial's curve whose test accuracy reaches
  the target (``target_fraction`` of the mean all-labels accuracy). A trial that
  never reaches it within the label cap counts as the next point of the grid after
  the cap, the least it could need, and the mean is then marked as a lower bound
  (``censored``); ``reached`` says in how many seeds it was reached.
- **mean-curve labels**: the first point where the mean curve over seeds reaches the
  target (None: not within the cap).
- **area under the curve**: the mean test accuracy over the label grid, per seed.
- **saved vs random**: ``1 - labels / labels_random`` from the means, under the same
  policy. When one side is censored the figure is a bound (``saved_bound``):
  ``"at_least"`` when random did not reach the target, ``"at_most"`` when the method
  did not; None when neither did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .loop import Curve

logger = logging.getLogger(__name__)

#: The method the others are compared with.
BASELINE = "random"


@dataclass(frozen=True)
class Summary:
    """The figures of one method under one policy, over ``seeds`` seeds."""

    method: str
    policy: str
    seeds: int
    labels_needed: tuple[int | None, ...]
    reached: int
    labels_needed_mean: float
    labels_needed_std: float
    censored: bool
    mean_curve_labels: int | None
    auc_mean: float
    auc_std: float
    final_accuracy_mean: float
    saved_vs_random: float | None = None
    saved_bound: str | None = None


def label_grid(curves: Sequence[Curve]) -> tuple[int, ...]:
    """The label counts every curve was evaluated at; they must all agree."""
    grid = curves[0].labels
    for curve in curves:
        if curve.labels != grid:
            raise ValueError(
                f"curve {curve.method}/{curve.policy} seed {curve.seed} has label grid "
                f"{curve.labels!r}, expected {grid!r}: summarise trials of one run"
            )
    return grid


def labels_to_target(
    labels: Sequence[int], accuracy: Sequence[float], target: float
) -> int | None:
    """The first label count whose accuracy is at least ``target``, else None."""
    for count, value in zip(labels, accuracy, strict=True):
        if value >= target:
            return count
    return None


def summarise(
    curves: Sequence[Curve], target: float, batch: int
) -> dict[tuple[str, str], Summary]:
    """Figures per (method, policy) from every trial's curve.

    ``batch`` is the labels per round: a trial that does not reach ``target`` counts
    as needing the cap plus one batch.
    """
    grid = label_grid(curves)
    beyond_cap = grid[-1] + batch
    groups: dict[tuple[str, str], list[Curve]] = {}
    for curve in curves:
        groups.setdefault((curve.method, curve.policy), []).append(curve)

    summaries = {
        key: _summarise_group(group, grid, target, beyond_cap)
        for key, group in groups.items()
    }
    return _with_savings(summaries)


def _summarise_group(
    group: list[Curve], grid: tuple[int, ...], target: float, beyond_cap: int
) -> Summary:
    group = sorted(group, key=lambda curve: curve.seed)
    accuracy = np.array([curve.accuracy for curve in group], dtype=np.float64)

    needed = tuple(labels_to_target(grid, row, target) for row in accuracy)
    counted = np.array(
        [beyond_cap if value is None else value for value in needed], dtype=np.float64
    )
    areas = accuracy.mean(axis=1)

    return Summary(
        method=group[0].method,
        policy=group[0].policy,
        seeds=len(group),
        labels_needed=needed,
        reached=sum(value is not None for value in needed),
        labels_needed_mean=float(counted.mean()),
        labels_needed_std=float(counted.std()),
        censored=any(value is None for value in needed),
        mean_curve_labels=labels_to_target(grid, accuracy.mean(axis=0), target),
        auc_mean=float(areas.mean()),
        auc_std=float(areas.std()),
        final_accuracy_mean=float(accuracy[:, -1].mean()),
    )


def _with_savings(
    summaries: dict[tuple[str, str], Summary],
) -> dict[tuple[str, str], Summary]:
    """Fill ``saved_vs_random`` of every method with a random run of its policy."""
    out: dict[tuple[str, str], Summary] = {}
    for (method, policy), summary in summaries.items():
        baseline = summaries.get((BASELINE, policy))
        if baseline is None or method == BASELINE:
            out[(method, policy)] = summary
            continue

        if summary.censored and baseline.censored:
            bound = None
        elif baseline.censored:
            bound = "at_least"
        elif summary.censored:
            bound = "at_most"
        else:
            bound = "exact"

        saved = None
        if bound is not None:
            saved = 1.0 - summary.labels_needed_mean / baseline.labels_needed_mean
        out[(method, policy)] = replace(
            summary, saved_vs_random=saved, saved_bound=bound
        )
    return out


def mean_curves(
    curves: Sequence[Curve],
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per (method, policy), the mean and the standard deviation over seeds of the
    accuracy at each point of the label grid: two ``[G]`` float64 arrays."""
    grouped: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for curve in curves:
        grouped.setdefault((curve.method, curve.policy), []).append(curve.accuracy)
    return {
        key: (np.mean(rows, axis=0), np.std(rows, axis=0))
        for key, rows in grouped.items()
    }
