"""What a run leaves behind: the printed table, the JSON and the learning-curve plot."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

# No display on a server; Agg renders to files only.
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .loop import Curve
from .summary import Summary, mean_curves

logger = logging.getLogger(__name__)

#: Marks of the bound a "saved vs random" figure is.
_BOUND_MARKS = {"exact": "", "at_least": ">=", "at_most": "<="}


def _labels_cell(summary: Summary) -> str:
    mark = ">=" if summary.censored else ""
    return (
        f"{mark}{summary.labels_needed_mean:.0f} ± {summary.labels_needed_std:.0f}"
        f" ({summary.reached}/{summary.seeds})"
    )


def _saved_cell(summary: Summary) -> str:
    if summary.saved_bound is None or summary.saved_vs_random is None:
        return "—" if summary.method == "random" else "n/a"
    mark = _BOUND_MARKS[summary.saved_bound]
    return f"{mark}{summary.saved_vs_random:.0%}"


def format_table(
    summaries: Mapping[tuple[str, str], Summary], target: float, reference: float
) -> str:
    """The run's results as a fixed-width text table, one row per method and policy.

    ``labels`` is the mean over seeds of the labels needed to reach ``target``, with
    the standard deviation and the seeds that reached it; ``>=`` marks a lower bound
    (some seed did not reach it within the cap).
    """
    header = (
        "method",
        "policy",
        "labels to target",
        "mean curve",
        "saved vs random",
        "AUC",
        "final acc",
    )
    rows = [header]
    for summary in sorted(summaries.values(), key=lambda s: (s.policy, s.method)):
        curve_labels = summary.mean_curve_labels
        rows.append(
            (
                summary.method,
                summary.policy,
                _labels_cell(summary),
                "not reached" if curve_labels is None else str(curve_labels),
                _saved_cell(summary),
                f"{summary.auc_mean:.3f} ± {summary.auc_std:.3f}",
                f"{summary.final_accuracy_mean:.3f}",
            )
        )

    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"all-labels accuracy {reference:.4f}; target {target:.4f} "
        "(labels: mean ± std over seeds, seeds reaching the target in brackets)"
    ]
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)


def results_document(
    *,
    summaries: Mapping[tuple[str, str], Summary],
    curves: Sequence[Curve],
    references: Sequence[float],
    target: float,
    header: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON document: ``header`` (settings, machine, versions, wall time, data
    set) followed by the reference, the summaries and every trial's curve."""
    return {
        **header,
        "reference": {
            "accuracy_per_seed": list(references),
            "accuracy_mean": sum(references) / len(references),
            "target": target,
        },
        "summary": [
            asdict(summary)
            for summary in sorted(
                summaries.values(), key=lambda s: (s.policy, s.method)
            )
        ],
        "curves": [asdict(curve) for curve in curves],
    }


def plot_curves(path: Path, curves: Sequence[Curve], target: float, title: str) -> None:
    """Mean test accuracy against labels, one panel per policy, one line per method,
    a band of one standard deviation over seeds, and the target as a dashed line."""
    means = mean_curves(curves)
    policies = sorted({policy for _, policy in means})
    grid = curves[0].labels

    figure, axes = plt.subplots(
        1, len(policies), figsize=(6.4 * len(policies), 4.8), squeeze=False
    )
    for axis, policy in zip(axes[0], policies, strict=True):
        for (method, curve_policy), (mean, std) in sorted(means.items()):
            if curve_policy != policy:
                continue
            (line,) = axis.plot(grid, mean, label=method, linewidth=1.5)
            axis.fill_between(
                grid, mean - std, mean + std, color=line.get_color(), alpha=0.15
            )

        axis.axhline(target, color="black", linestyle="--", linewidth=1.0)
        axis.annotate(f"target {target:.3f}", (grid[-1], target), ha="right", va="top")
        axis.set_title(f"{title}, policy {policy!r}")
        axis.set_xlabel("labels")
        axis.set_ylabel("test accuracy")
        axis.set_ylim(max(0.0, min(target - 0.25, axis.get_ylim()[0])), 1.0)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right")

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    logger.info("wrote %s", path)
