"""When to end the active-learning loop.

aift.md "When to stop" gives four reasons, each a name in ``StopDecision.reasons``:

``budget``
    the labelling budget is spent: ``labels_used >= label_budget``.
``converged``
    the hard samples are already classified correctly: over the last ``window``
    labelled hard samples, the model's prediction when the sample was flagged agreed
    with the human label at least ``tau`` of the time. If the hardest inputs are
    right, the easy ones surely are.
``irreducible``
    the hard samples cannot be classified: over the last ``window`` reviewed hard
    samples, reviewers marked at least ``tau_u`` of them unclassifiable. The model has
    found the data's own ambiguity; more labels will not help.
``plateau``
    validation performance stopped improving: the best value of the last
    ``plateau_rounds`` rounds beats the best before them by less than
    ``plateau_delta`` (the journal's criterion).

The rates need at least ``min_samples`` samples in their window, and the plateau at
least ``plateau_rounds + 1`` rounds, before they can fire.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import ConfigError

__all__ = ["STOP_REASONS", "StopDecision", "StoppingConfig", "evaluate_stopping"]

logger = logging.getLogger(__name__)

STOP_REASONS: tuple[str, ...] = ("budget", "converged", "irreducible", "plateau")


@dataclass(frozen=True)
class StoppingConfig:
    """Thresholds of the stopping rules; see the module docstring for each reason.

    ``label_budget`` 0 means no budget. ``tau`` and ``tau_u`` are rates in (0, 1];
    ``window`` is how many recent hard samples the rates look at, and
    ``min_samples`` how many they need first. ``plateau_delta`` is in the units of
    the validation metric (higher is better).
    """

    label_budget: int = 0
    tau: float = 0.95
    tau_u: float = 0.5
    window: int = 100
    min_samples: int = 30
    plateau_rounds: int = 3
    plateau_delta: float = 0.002

    def __post_init__(self) -> None:
        owner = type(self).__name__
        checks: tuple[tuple[str, bool, str], ...] = (
            ("label_budget", self.label_budget >= 0, "an integer >= 0 (0 = none)"),
            ("tau", 0.0 < self.tau <= 1.0, "an agreement rate in (0, 1]"),
            ("tau_u", 0.0 < self.tau_u <= 1.0, "an unclassifiable rate in (0, 1]"),
            ("window", self.window >= 1, "an integer >= 1 (recent hard samples)"),
            (
                "min_samples",
                1 <= self.min_samples <= self.window,
                f"an integer in [1, window = {self.window}]",
            ),
            ("plateau_rounds", self.plateau_rounds >= 1, "an integer >= 1 (rounds)"),
            (
                "plateau_delta",
                math.isfinite(self.plateau_delta) and self.plateau_delta >= 0.0,
                "a finite improvement >= 0, in the validation metric's units",
            ),
        )
        for name, valid, expected in checks:
            if not valid:
                raise ConfigError.invalid(owner, name, getattr(self, name), expected)


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop, why, and the figures the rules looked at.

    ``reasons`` lists the rules that fired, in the order of ``STOP_REASONS``;
    ``stop`` is true exactly when it is not empty. ``detail`` always holds
    ``labels_used``, ``agreement_samples`` and ``unclassifiable_samples``; it holds
    ``agreement``, ``unclassifiable`` (rates) and ``plateau_gain`` only when there was
    anything to compute them from.
    """

    stop: bool
    reasons: tuple[str, ...]
    detail: dict[str, float] = field(default_factory=dict)


def evaluate_stopping(
    config: StoppingConfig,
    *,
    labels_used: int,
    recent_agreement: Sequence[bool],
    recent_unclassifiable: Sequence[bool],
    validation_history: Sequence[float],
) -> StopDecision:
    """Apply every stopping rule to the loop's state.

    ``recent_agreement``: one entry per labelled hard sample, oldest first, true when
    the model's prediction at flag time equalled the human label. Samples marked
    unclassifiable belong only in ``recent_unclassifiable``: one entry per reviewed
    hard sample, oldest first, true when marked unclassifiable.
    ``validation_history``: the validation metric after each round, oldest first,
    higher is better. Only the last ``config.window`` entries of each sequence count.
    """
    reasons: list[str] = []
    detail: dict[str, float] = {"labels_used": float(labels_used)}

    if config.label_budget > 0 and labels_used >= config.label_budget:
        reasons.append("budget")

    agreement = _recent_rate(recent_agreement, config.window)
    detail["agreement_samples"] = float(agreement[1])
    if agreement[1] > 0:
        detail["agreement"] = agreement[0]
    if agreement[1] >= config.min_samples and agreement[0] >= config.tau:
        reasons.append("converged")

    unclassifiable = _recent_rate(recent_unclassifiable, config.window)
    detail["unclassifiable_samples"] = float(unclassifiable[1])
    if unclassifiable[1] > 0:
        detail["unclassifiable"] = unclassifiable[0]
    if unclassifiable[1] >= config.min_samples and unclassifiable[0] >= config.tau_u:
        reasons.append("irreducible")

    rounds = config.plateau_rounds
    if len(validation_history) > rounds:
        gain = max(validation_history[-rounds:]) - max(validation_history[:-rounds])
        detail["plateau_gain"] = float(gain)
        if gain < config.plateau_delta:
            reasons.append("plateau")

    if reasons:
        logger.info("stopping rules fired: %s (%s)", ", ".join(reasons), detail)
    return StopDecision(stop=bool(reasons), reasons=tuple(reasons), detail=detail)


def _recent_rate(flags: Sequence[bool], window: int) -> tuple[float, int]:
    """The fraction of true among the last ``window`` flags, and how many counted."""
    recent = list(flags)[-window:]
    if not recent:
        return 0.0, 0
    return sum(1 for flag in recent if flag) / len(recent), len(recent)
