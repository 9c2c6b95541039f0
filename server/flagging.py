"""Deciding, per input, whether a human label is worth asking for, and queueing it.

Each model has a `FlagPolicy` (`activeserve.core.selection`) built from its `[flag]`
table: a threshold on one uncertainty score, or the top fraction of a sliding window of
recent traffic, under an hourly budget, optionally with ACFT's randomised selection.
The inputs it picks are written to the queue store; an input counts as flagged only
once the store has committed it, so "flagged" in a response means durably queued. An
input that was queued before (same bytes) answers flagged with its existing sample id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import numpy as np

from activeserve.core.scores import SCORE_NAMES, uncertainty
from activeserve.core.selection import FlagConfig, FlagPolicy
from activeserve.server.queue import AddOutcome, NewSample, QueueStore
from activeserve.server.runtime.model import LoadedModel, Prediction

logger = logging.getLogger(__name__)


@dataclass
class FlagCounters:
    """Inputs scored and flagged per model since the server started."""

    scored: int = 0
    flagged: int = 0
    rejected: int = 0

    @property
    def flag_rate(self) -> float:
        return self.flagged / self.scored if self.scored else 0.0


class QueueFlagger:
    """Applies each model's flag policy and writes the chosen inputs to the store."""

    def __init__(self, store: QueueStore, *, seed: int = 0) -> None:
        self.store = store
        self._seed = seed
        self._policies: dict[str, tuple[FlagConfig, FlagPolicy]] = {}
        self.counters: dict[str, FlagCounters] = {}

    async def flag(
        self,
        model: LoadedModel,
        candidates: np.ndarray,
        datatype: str,
        prediction: Prediction,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(flagged `[N]` bool, sample ids `[N]` int64, -1 where not flagged)."""
        count = len(candidates)
        config = model.config.flag
        counters = self.counters.get(model.name)
        if counters is None:
            counters = self.counters[model.name] = FlagCounters()
        counters.scored += count
        if not config.enabled:
            return unflagged(count)

        priority = uncertainty(prediction.scores, config.score)
        policy = self._policy(model.name, config)
        chosen = np.flatnonzero(policy.decide(priority, time.time()))
        if len(chosen) == 0:
            return unflagged(count)

        flagged = np.zeros(count, dtype=bool)
        sample_ids = np.full(count, -1, dtype=np.int64)

        samples = [
            _new_sample(model, candidates[i], datatype, prediction, int(i), priority[i])
            for i in chosen
        ]
        results = await asyncio.gather(
            *(self.store.add_async(sample) for sample in samples)
        )
        for index, result in zip(chosen, results, strict=True):
            if result.outcome is AddOutcome.REJECTED:
                counters.rejected += 1
                continue
            flagged[index] = True
            sample_ids[index] = result.sample_id if result.sample_id is not None else -1
            if result.outcome is AddOutcome.QUEUED:
                counters.flagged += 1
        logger.debug(
            "model %s version %d: %d of %d inputs flagged",
            model.name,
            model.version,
            int(flagged.sum()),
            count,
        )
        return flagged, sample_ids

    def _policy(self, name: str, config: FlagConfig) -> FlagPolicy:
        # A new version may bring a new [flag] table; the window starts afresh then.
        known = self._policies.get(name)
        if known is None or known[0] != config:
            known = (config, FlagPolicy(config, seed=self._seed))
            self._policies[name] = known
        return known[1]


# Row count -> the flagged and sample id columns of candidates nobody flagged,
# read-only, shared by every response of that many rows.
_UNFLAGGED: dict[int, tuple[np.ndarray, np.ndarray]] = {}
_UNFLAGGED_COUNTS = 256


def unflagged(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(flagged `[count]` all False, sample ids `[count]` all -1), read-only."""
    cached = _UNFLAGGED.get(count)
    if cached is not None:
        return cached
    flagged = np.zeros(count, dtype=bool)
    sample_ids = np.full(count, -1, dtype=np.int64)
    flagged.flags.writeable = False
    sample_ids.flags.writeable = False
    if len(_UNFLAGGED) < _UNFLAGGED_COUNTS:
        _UNFLAGGED[count] = (flagged, sample_ids)
    return flagged, sample_ids


def _new_sample(
    model: LoadedModel,
    candidate: np.ndarray,
    datatype: str,
    prediction: Prediction,
    index: int,
    priority: float,
) -> NewSample:
    """The store's record of candidate `index` of a request."""
    scores = prediction.scores
    return NewSample(
        model_name=model.name,
        model_version=str(model.version),
        input_bytes=np.ascontiguousarray(candidate).tobytes(),
        datatype=datatype,
        shape=tuple(int(d) for d in candidate.shape),
        probabilities=tuple(float(p) for p in prediction.probabilities[index]),
        scores={name: float(scores.get(name)[index]) for name in SCORE_NAMES},
        priority=float(priority),
        predicted_label=int(prediction.labels[index]),
        max_pending=model.config.flag.max_pending,
    )
