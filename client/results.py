"""Typed values the SDK returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PredictResult:
    """Predictions for N candidates, with their uncertainty.

    `labels` `[N]` int64 class ids; `probabilities` `[N, K]`; `scores` maps each score
    name (score, entropy, diversity, least_confidence, margin, mutual_information) to an
    `[N]` array; `flagged` `[N]` bool says which inputs were durably queued for a human
    label, `sample_ids` `[N]` their queue ids (-1 where not flagged). `outputs` holds
    every output tensor by name, the model's own included.
    """

    model: str
    version: int
    labels: np.ndarray
    probabilities: np.ndarray
    scores: dict[str, np.ndarray]
    flagged: np.ndarray
    sample_ids: np.ndarray
    outputs: dict[str, np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class StoppingStatus:
    stop: bool
    reasons: tuple[str, ...]
    detail: dict[str, float]


@dataclass(frozen=True)
class QueueStats:
    """The label queue of one model, as the server sees it now."""

    model: str
    counts: dict[str, int]
    flagged_total: int
    evictions: int
    flag_rate: float
    oldest_pending_age_s: float
    agreement: float | None
    unclassifiable_fraction: float | None
    labels_total: int
    stopping: StoppingStatus


@dataclass(frozen=True)
class LabelledSample:
    """A sample a reviewer has labelled (or marked unclassifiable, `label` = -1)."""

    sample_id: int
    model: str
    model_version: str
    input: np.ndarray
    label: int
    unclassifiable: bool
    predicted_label: int
    probabilities: np.ndarray
    scores: dict[str, float]
    reviewer: str
    labelled_at: float
    cursor: int
