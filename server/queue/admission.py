"""Admission of flagged samples: deduplication, the pending bound, eviction.

Runs inside the group committer's write transaction, one batch at a time. For each
sample, in this order:

1. An input already queued for the model (same ``content_hash``, any state) is a
   ``DUPLICATE``; nothing changes.
2. While the model has fewer than ``max_pending`` pending samples, the sample is
   ``QUEUED``.
3. Otherwise the lowest-priority pending sample (the newest among equals, which a
   lease would reach last) is deleted and counted as an eviction, if the new
   sample's priority is strictly higher; if not, the new one is ``REJECTED``.

Evicted rows are deleted rather than kept in a state of their own: they never had a
reviewer's attention, and deleting them lets the same input be queued again should
it be flagged later with room in the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from activeserve.server.queue.model import AddOutcome, AddResult, NewSample
from activeserve.server.queue.pool import Transaction
from activeserve.server.queue.schema import (
    PENDING_PREDICATE,
    encode_probabilities,
    encode_scores,
    encode_shape,
)

__all__ = ["Admission"]

logger = logging.getLogger(__name__)


class Admission:
    """Applies the admission rules above; used by one writer thread at a time.

    Args:
        max_pending: The bound on pending samples per model.
        lock_rows: The backend's row-lock clause (``" FOR UPDATE"`` or ``""``),
            used to lock a model's counter row for the rest of the transaction.
    """

    def __init__(self, *, max_pending: int, lock_rows: str) -> None:
        self._max_pending = max_pending
        self._lock_rows = lock_rows
        # Models last seen full, so that "queue full" is logged once, not per sample.
        self._full_models: set[str] = set()

    def admit(
        self, tx: Transaction, samples: Sequence[NewSample], now: float
    ) -> list[AddResult]:
        """One result per sample, in order; all applied in ``tx``."""
        results: dict[int, AddResult] = {}
        locked_models: set[str] = set()

        # Lock models in name order so that two replicas committing batches for the
        # same models cannot deadlock.
        order = sorted(range(len(samples)), key=lambda i: samples[i].model_name)
        for index in order:
            sample = samples[index]
            if sample.model_name not in locked_models:
                self._lock_model(tx, sample.model_name)
                locked_models.add(sample.model_name)
            results[index] = self._admit_one(tx, sample, now)

        return [results[index] for index in range(len(samples))]

    def _lock_model(self, tx: Transaction, model_name: str) -> None:
        # Holding the model's counter row serialises adds per model across replicas,
        # which keeps the pending count exact between counting and inserting.
        tx.execute(
            "INSERT INTO queue_models (model_name, flagged_total, evictions)"
            " VALUES (?, 0, 0) ON CONFLICT (model_name) DO NOTHING",
            model_name,
        )
        tx.one(
            "SELECT model_name FROM queue_models"
            f" WHERE model_name = ?{self._lock_rows}",
            model_name,
        )

    def _admit_one(self, tx: Transaction, sample: NewSample, now: float) -> AddResult:
        duplicate = tx.one(
            "SELECT id FROM queue_samples WHERE model_name = ? AND content_hash = ?",
            sample.model_name,
            sample.content_hash,
        )
        if duplicate is not None:
            return AddResult(AddOutcome.DUPLICATE, int(duplicate[0]))

        evicted_id = None
        (pending,) = tx.one(
            f"SELECT COUNT(*) FROM queue_samples WHERE model_name = ?"
            f" AND {PENDING_PREDICATE}",
            sample.model_name,
            now,
        )
        if pending < self._limit(sample):
            self._full_models.discard(sample.model_name)
        else:
            self._note_full(sample)
            victim = tx.one(
                f"SELECT id, priority FROM queue_samples WHERE model_name = ?"
                f" AND {PENDING_PREDICATE} ORDER BY priority ASC, id DESC LIMIT 1",
                sample.model_name,
                now,
            )
            if victim is None or sample.priority <= victim[1]:
                logger.debug(
                    "model %s version %s: queue full, rejected priority %s",
                    sample.model_name,
                    sample.model_version,
                    sample.priority,
                )
                return AddResult(AddOutcome.REJECTED, None)
            evicted_id = self._evict(tx, sample, int(victim[0]), now)

        sample_id = self._insert(tx, sample, now)
        return AddResult(AddOutcome.QUEUED, sample_id, evicted_id)

    def _insert(self, tx: Transaction, sample: NewSample, now: float) -> int:
        (sample_id,) = tx.one(
            "INSERT INTO queue_samples (model_name, model_version, content_hash,"
            " datatype, shape, input_bytes, probabilities, scores, priority,"
            " predicted_label, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING id",
            sample.model_name,
            sample.model_version,
            sample.content_hash,
            sample.datatype,
            encode_shape(sample.shape),
            sample.input_bytes,
            encode_probabilities(sample.probabilities),
            encode_scores(sample.scores),
            sample.priority,
            sample.predicted_label,
            now,
            now,
        )
        tx.execute(
            "UPDATE queue_models SET flagged_total = flagged_total + 1"
            " WHERE model_name = ?",
            sample.model_name,
        )
        return int(sample_id)

    def _evict(
        self, tx: Transaction, sample: NewSample, victim_id: int, now: float
    ) -> int | None:
        # On PostgreSQL a reviewer may lease the victim meanwhile; the predicate is
        # re-checked on the locked row, and a victim leased away has freed its place.
        deleted = tx.execute(
            f"DELETE FROM queue_samples WHERE id = ? AND {PENDING_PREDICATE}",
            victim_id,
            now,
        ).rowcount
        if deleted == 0:
            return None

        tx.execute(
            "UPDATE queue_models SET evictions = evictions + 1 WHERE model_name = ?",
            sample.model_name,
        )
        logger.debug(
            "model %s version %s: evicted sample %s for priority %s",
            sample.model_name,
            sample.model_version,
            victim_id,
            sample.priority,
        )
        return victim_id

    def _limit(self, sample: NewSample) -> int:
        return sample.max_pending or self._max_pending

    def _note_full(self, sample: NewSample) -> None:
        if sample.model_name in self._full_models:
            return
        self._full_models.add(sample.model_name)
        logger.info(
            "model %s version %s: label queue full (%s pending); lower-priority "
            "samples are now evicted or rejected",
            sample.model_name,
            sample.model_version,
            self._limit(sample),
        )
