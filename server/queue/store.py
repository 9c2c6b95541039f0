"""The queue store interface that every backend implements.

A store is safe to share between threads, and (for both SQLite and PostgreSQL) between
processes and server replicas using the same database: leases never hand one sample to
two reviewers, and a verdict is checked against the lease under a row or database lock.
"""

from __future__ import annotations

import abc
from types import TracebackType

from activeserve.server.queue.group_commit import GroupCommitStats
from activeserve.server.queue.model import (
    AddResult,
    NewSample,
    QueueStats,
    Sample,
    SubmitResult,
)

__all__ = ["DEFAULT_STATS_WINDOW", "QueueStore"]

# Window of recent reviews that agreement and the unclassifiable fraction look at.
DEFAULT_STATS_WINDOW = 100


class QueueStore(abc.ABC):
    """A durable, bounded, deduplicated queue of samples waiting for a human label."""

    @property
    @abc.abstractmethod
    def group_commit_stats(self) -> GroupCommitStats:
        """How many transactions the ``add`` calls so far were committed in."""

    @abc.abstractmethod
    def add(self, sample: NewSample) -> AddResult:
        """Queue a flagged sample; returns once the outcome is committed to disk.

        A sample whose input (``content_hash``) was queued before for the same model,
        in any state, is not queued again (``DUPLICATE``). When the model already has
        ``max_pending`` pending samples, the sample evicts the lowest-priority pending
        one if its priority is strictly higher, and is ``REJECTED`` otherwise. Evicted
        samples are deleted, so the same input may be queued again later.

        Concurrent calls from many threads are committed together (group commit).

        Raises:
            StoreClosed: After ``close()``.
            StoreUnavailable: The database could not be written.
        """

    @abc.abstractmethod
    async def add_async(self, sample: NewSample) -> AddResult:
        """``add`` for asyncio: resolves once durable, never blocks the event loop.

        Cancelling the awaiting task before the sample's batch is taken drops the
        sample; after that the write completes regardless.
        """

    @abc.abstractmethod
    def lease(
        self, model_name: str, count: int, lease_s: float, reviewer: str
    ) -> list[Sample]:
        """Lease up to ``count`` pending samples of a model, highest priority first.

        Samples with an expired lease are pending again. Each leased sample gets a
        fresh ``lease_token`` and ``lease_expires_at = now + lease_s``; no other
        caller, in this process or another, receives it until then or until it is
        released. Ties in priority go to the oldest sample.

        Raises:
            ValueError: ``count < 1`` or ``lease_s <= 0``.
        """

    @abc.abstractmethod
    def release(self, sample_id: int, lease_token: str) -> Sample:
        """Give a leased sample back to the pending queue.

        Raises:
            SampleNotFound: No such sample.
            LeaseConflict: The sample is not leased under ``lease_token``.
        """

    @abc.abstractmethod
    def submit_label(
        self,
        sample_id: int,
        label: int,
        reviewer: str,
        lease_token: str | None = None,
        *,
        num_classes: int | None = None,
    ) -> SubmitResult:
        """Record a human label; idempotent for the same label.

        Without a token the label is accepted unless someone else holds an unexpired
        lease. With a token it must be the sample's latest lease token (expired is
        fine as long as nobody leased the sample since). The label gets the next
        ``label_seq``.

        Raises:
            InvalidLabel: ``label`` is not an int >= 0, or not below ``num_classes``.
            SampleNotFound: No such sample.
            LabelConflict: The sample has a different label or is unclassifiable.
            LeaseConflict: The lease was taken over, or is held by another reviewer.
        """

    @abc.abstractmethod
    def skip(
        self, sample_id: int, reviewer: str, lease_token: str | None = None
    ) -> Sample:
        """Pass on a sample: it leaves the pending queue without a verdict.

        Lease rules as in ``submit_label``. Skipping a skipped sample is a no-op.

        Raises:
            SampleNotFound, LeaseConflict: As in ``submit_label``.
            LabelConflict: The sample already has a verdict.
        """

    @abc.abstractmethod
    def mark_unclassifiable(
        self, sample_id: int, reviewer: str, lease_token: str | None = None
    ) -> SubmitResult:
        """Record that a human cannot tell the sample's class; idempotent.

        The sample gets a ``label_seq`` like a label, so the trainer sees it.

        Raises:
            SampleNotFound, LeaseConflict: As in ``submit_label``.
            LabelConflict: The sample is already labelled.
        """

    @abc.abstractmethod
    def labelled_after(self, model_name: str, cursor: int, limit: int) -> list[Sample]:
        """Labelled and unclassifiable samples with ``label_seq > cursor``, in order.

        Pass the last ``label_seq`` received as the next ``cursor`` to resume; start
        from 0. Sequence numbers are shared by all models, so one model's cursors
        have gaps. A sample committed later always has a higher ``label_seq`` than
        any already visible, so a resumed read never misses one.

        Raises:
            ValueError: ``limit < 1`` or ``cursor < 0``.
        """

    @abc.abstractmethod
    def recent_verdicts(self, model_name: str, count: int) -> list[Sample]:
        """The last ``count`` labelled or unclassifiable samples, oldest first; the
        stopping criteria read them.

        Raises:
            ValueError: ``count < 1``.
        """

    @abc.abstractmethod
    def stats(self, model_name: str, last_n: int = DEFAULT_STATS_WINDOW) -> QueueStats:
        """Counts and review-quality figures of one model's queue (see QueueStats)."""

    @abc.abstractmethod
    def get(self, sample_id: int) -> Sample | None:
        """The sample with that id, or None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Commit queued adds, then release the database. Idempotent."""

    def __enter__(self) -> QueueStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
