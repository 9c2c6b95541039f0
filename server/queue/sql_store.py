"""The queue logic, written once in SQL that SQLite and PostgreSQL both accept.

A backend subclass supplies connections, how a transaction begins, the row-locking
clauses (``FOR UPDATE [SKIP LOCKED]`` on PostgreSQL; nothing on SQLite, where a write
transaction locks the whole database) and how driver errors translate. Statements
are written with ``?`` placeholders and rewritten for drivers that use another style.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

from activeserve.server.queue.admission import Admission
from activeserve.server.queue.clock import Clock
from activeserve.server.queue.config import QueueConfig
from activeserve.server.queue.errors import (
    LabelConflict,
    LeaseConflict,
    SampleNotFound,
    StoreError,
)
from activeserve.server.queue.group_commit import GroupCommitStats, GroupCommitter
from activeserve.server.queue.model import (
    AddResult,
    NewSample,
    QueueStats,
    Sample,
    SampleState,
    SubmitResult,
)
from activeserve.server.queue.pool import ConnectionPool, DbConnection, Transaction
from activeserve.server.queue.review_rules import check_label, check_lease, verdict_of
from activeserve.server.queue.schema import (
    PENDING_PREDICATE,
    SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    decode_sample,
    schema_statements,
)
from activeserve.server.queue.store import DEFAULT_STATS_WINDOW, QueueStore

__all__ = ["SqlQueueStore"]

logger = logging.getLogger(__name__)

_VERDICTS = (SampleState.LABELLED, SampleState.UNCLASSIFIABLE)


class SqlQueueStore(QueueStore):
    """``QueueStore`` over a SQL database; see the module docstring for the hooks."""

    placeholder: ClassVar[str] = "?"
    # Appended to a SELECT of rows the transaction will update.
    lock_rows: ClassVar[str] = ""
    # Appended to the SELECT of rows to lease: rows another transaction is leasing
    # are passed over instead of waited for.
    lock_rows_skip_locked: ClassVar[str] = ""
    id_column: ClassVar[str]
    binary_type: ClassVar[str]

    def __init__(self, *, description: str, config: QueueConfig, clock: Clock) -> None:
        self._description = description
        self._config = config
        self._clock = clock
        self._admission = Admission(
            max_pending=config.max_pending, lock_rows=self.lock_rows
        )
        self._pool = ConnectionPool(
            self._connect, size=config.pool_size, is_broken=self._is_broken
        )

        try:
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

        self._committer: GroupCommitter[NewSample, AddResult] = GroupCommitter(
            self._commit_adds,
            max_batch=config.max_batch,
            linger_s=config.linger_ms / 1000.0,
            name=f"queue-commit {description}",
        )
        self._closed = False
        logger.info("queue store open: %s", description)

    # Backend hooks.

    @abc.abstractmethod
    def _connect(self) -> DbConnection:
        """A new connection with autocommit semantics (transactions are explicit)."""

    @abc.abstractmethod
    def _is_broken(self, connection: DbConnection) -> bool:
        """Whether ``connection`` must be discarded rather than reused."""

    @abc.abstractmethod
    def _begin_statement(self, *, write: bool) -> str:
        """The statement that opens a transaction (``write`` ones lock early)."""

    @abc.abstractmethod
    def _translate_error(self, error: Exception) -> StoreError | None:
        """The StoreError a driver error becomes, or None for any other error."""

    def _schema_lock_statement(self) -> str | None:
        """A statement that serialises concurrent schema creation, if needed."""
        return None

    # The public interface.

    @property
    def description(self) -> str:
        """The store's URL, password removed."""
        return self._description

    @property
    def group_commit_stats(self) -> GroupCommitStats:
        """How many transactions the ``add`` calls so far were committed in."""
        return self._committer.stats

    def add(self, sample: NewSample) -> AddResult:
        return self._committer.submit(sample).result()

    async def add_async(self, sample: NewSample) -> AddResult:
        return await asyncio.wrap_future(self._committer.submit(sample))

    def lease(
        self, model_name: str, count: int, lease_s: float, reviewer: str
    ) -> list[Sample]:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        if not lease_s > 0:
            raise ValueError(f"lease_s must be > 0 seconds, got {lease_s!r}")

        now = self._clock()
        expires_at = now + lease_s
        leased = []
        with self._transaction(write=True) as tx:
            rows = tx.all(
                f"SELECT id FROM queue_samples WHERE model_name = ?"
                f" AND {PENDING_PREDICATE} ORDER BY priority DESC, id ASC"
                f" LIMIT ?{self.lock_rows_skip_locked}",
                model_name,
                now,
                count,
            )
            for (sample_id,) in rows:
                row = tx.one(
                    "UPDATE queue_samples SET state = 'leased', lease_token = ?,"
                    " lease_expires_at = ?, leased_by = ?, updated_at = ?"
                    f" WHERE id = ? RETURNING {SAMPLE_COLUMNS}",
                    secrets.token_hex(16),
                    expires_at,
                    reviewer,
                    now,
                    sample_id,
                )
                leased.append(decode_sample(row, now))

        logger.debug(
            "model %s: leased %s of %s samples to %r for %ss",
            model_name,
            len(leased),
            count,
            reviewer,
            lease_s,
        )
        return leased

    def release(self, sample_id: int, lease_token: str) -> Sample:
        now = self._clock()
        with self._transaction(write=True) as tx:
            sample = self._locked_sample(tx, sample_id, now)
            if sample.lease_token is None or sample.lease_token != lease_token:
                raise LeaseConflict(
                    f"sample {sample_id} is not leased under token {lease_token!r} "
                    f"(state {sample.state.value!r}); only the current lease can be "
                    f"released"
                )

            row = tx.one(
                "UPDATE queue_samples SET state = 'pending', lease_token = NULL,"
                " lease_expires_at = NULL, leased_by = NULL, updated_at = ?"
                f" WHERE id = ? RETURNING {SAMPLE_COLUMNS}",
                now,
                sample_id,
            )
        return decode_sample(row, now)

    def submit_label(
        self,
        sample_id: int,
        label: int,
        reviewer: str,
        lease_token: str | None = None,
        *,
        num_classes: int | None = None,
    ) -> SubmitResult:
        check_label(label, num_classes)

        now = self._clock()
        with self._transaction(write=True) as tx:
            sample = self._locked_sample(tx, sample_id, now)
            if sample.state is SampleState.LABELLED and sample.label == label:
                return SubmitResult(sample=sample, recorded=False)
            if sample.state in _VERDICTS:
                raise LabelConflict(
                    f"sample {sample_id} is already {verdict_of(sample)}; refusing "
                    f"label {label!r} from {reviewer!r}. A verdict is final: "
                    f"correct it in the training data, not in the queue"
                )
            check_lease(sample, lease_token, reviewer, now)

            row = tx.one(
                "UPDATE queue_samples SET state = 'labelled', label = ?,"
                " reviewer = ?, labelled_at = ?, updated_at = ?, label_seq = ?,"
                " lease_token = NULL, lease_expires_at = NULL"
                f" WHERE id = ? RETURNING {SAMPLE_COLUMNS}",
                label,
                reviewer,
                now,
                now,
                self._next_label_seq(tx),
                sample_id,
            )

        labelled = decode_sample(row, now)
        logger.debug(
            "model %s version %s: sample %s labelled %s by %r",
            labelled.model_name,
            labelled.model_version,
            sample_id,
            label,
            reviewer,
        )
        return SubmitResult(sample=labelled, recorded=True)

    def skip(
        self, sample_id: int, reviewer: str, lease_token: str | None = None
    ) -> Sample:
        now = self._clock()
        with self._transaction(write=True) as tx:
            sample = self._locked_sample(tx, sample_id, now)
            if sample.state is SampleState.SKIPPED:
                return sample
            if sample.state in _VERDICTS:
                raise LabelConflict(
                    f"sample {sample_id} is already {verdict_of(sample)}; "
                    f"it cannot be skipped"
                )
            check_lease(sample, lease_token, reviewer, now)

            row = tx.one(
                "UPDATE queue_samples SET state = 'skipped', reviewer = ?,"
                " updated_at = ?, lease_token = NULL, lease_expires_at = NULL"
                f" WHERE id = ? RETURNING {SAMPLE_COLUMNS}",
                reviewer,
                now,
                sample_id,
            )
        return decode_sample(row, now)

    def mark_unclassifiable(
        self, sample_id: int, reviewer: str, lease_token: str | None = None
    ) -> SubmitResult:
        now = self._clock()
        with self._transaction(write=True) as tx:
            sample = self._locked_sample(tx, sample_id, now)
            if sample.state is SampleState.UNCLASSIFIABLE:
                return SubmitResult(sample=sample, recorded=False)
            if sample.state is SampleState.LABELLED:
                raise LabelConflict(
                    f"sample {sample_id} is already {verdict_of(sample)}; "
                    f"it cannot also be marked unclassifiable"
                )
            check_lease(sample, lease_token, reviewer, now)

            row = tx.one(
                "UPDATE queue_samples SET state = 'unclassifiable', label = NULL,"
                " reviewer = ?, labelled_at = ?, updated_at = ?, label_seq = ?,"
                " lease_token = NULL, lease_expires_at = NULL"
                f" WHERE id = ? RETURNING {SAMPLE_COLUMNS}",
                reviewer,
                now,
                now,
                self._next_label_seq(tx),
                sample_id,
            )
        return SubmitResult(sample=decode_sample(row, now), recorded=True)

    def labelled_after(self, model_name: str, cursor: int, limit: int) -> list[Sample]:
        if cursor < 0:
            raise ValueError(f"cursor must be >= 0 (start from 0), got {cursor!r}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")

        return self._verdicts(
            "label_seq > ? ORDER BY label_seq ASC", model_name, cursor, limit
        )

    def recent_verdicts(self, model_name: str, count: int) -> list[Sample]:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")

        newest_first = self._verdicts(
            "label_seq IS NOT NULL ORDER BY label_seq DESC", model_name, count
        )
        return newest_first[::-1]

    def _verdicts(self, condition: str, model_name: str, *params: int) -> list[Sample]:
        """Samples of `model_name` matching `condition` (its filter and order by
        `label_seq`), the last parameter being the row limit."""
        now = self._clock()
        with self._transaction(write=False) as tx:
            rows = tx.all(
                f"SELECT {SAMPLE_COLUMNS} FROM queue_samples"
                f" WHERE model_name = ? AND {condition} LIMIT ?",
                model_name,
                *params,
            )
        return [decode_sample(row, now) for row in rows]

    def stats(self, model_name: str, last_n: int = DEFAULT_STATS_WINDOW) -> QueueStats:
        if last_n < 1:
            raise ValueError(f"last_n must be >= 1, got {last_n!r}")

        now = self._clock()
        with self._transaction(write=False) as tx:
            by_state = tx.all(
                "SELECT CASE WHEN state = 'leased' AND lease_expires_at <= ?"
                " THEN 'pending' ELSE state END AS effective, COUNT(*),"
                " MIN(created_at) FROM queue_samples WHERE model_name = ?"
                " GROUP BY effective",
                now,
                model_name,
            )
            counters = tx.one(
                "SELECT flagged_total, evictions FROM queue_models"
                " WHERE model_name = ?",
                model_name,
            )
            recent_labels = tx.all(
                "SELECT predicted_label, label FROM queue_samples"
                " WHERE model_name = ? AND state = 'labelled'"
                " ORDER BY label_seq DESC LIMIT ?",
                model_name,
                last_n,
            )
            recent_reviews = tx.all(
                "SELECT state FROM queue_samples"
                " WHERE model_name = ? AND label_seq IS NOT NULL"
                " ORDER BY label_seq DESC LIMIT ?",
                model_name,
                last_n,
            )

        counts = {state.value: 0 for state in SampleState}
        oldest_pending: float | None = None
        for state, count, oldest in by_state:
            counts[state] = int(count)
            if state == SampleState.PENDING.value:
                oldest_pending = float(oldest)

        agreement = None
        if recent_labels:
            agreed = sum(1 for predicted, label in recent_labels if predicted == label)
            agreement = agreed / len(recent_labels)

        unclassifiable_fraction = None
        if recent_reviews:
            marked = sum(
                1 for (s,) in recent_reviews if s == SampleState.UNCLASSIFIABLE.value
            )
            unclassifiable_fraction = marked / len(recent_reviews)

        flagged_total, evictions = counters if counters is not None else (0, 0)
        return QueueStats(
            model_name=model_name,
            counts=counts,
            flagged_total=int(flagged_total),
            evictions=int(evictions),
            labels_total=counts[SampleState.LABELLED.value],
            oldest_pending_age_s=(
                None if oldest_pending is None else max(0.0, now - oldest_pending)
            ),
            agreement=agreement,
            unclassifiable_fraction=unclassifiable_fraction,
            last_n=last_n,
        )

    def get(self, sample_id: int) -> Sample | None:
        now = self._clock()
        with self._transaction(write=False) as tx:
            row = tx.one(
                f"SELECT {SAMPLE_COLUMNS} FROM queue_samples WHERE id = ?", sample_id
            )
        return None if row is None else decode_sample(row, now)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        # Let queued adds commit before the connections go.
        self._committer.close()
        self._pool.close()
        logger.info("queue store closed: %s", self._description)

    # Internals.

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Transaction]:
        try:
            with self._pool.connection() as connection:
                connection.execute(self._begin_statement(write=write), ())
                try:
                    yield Transaction(connection, self.placeholder)
                    connection.execute("COMMIT", ())
                except BaseException:
                    self._rollback_quietly(connection)
                    raise
        except StoreError:
            raise
        except Exception as error:
            translated = self._translate_error(error)
            if translated is None:
                raise
            raise translated from error

    def _rollback_quietly(self, connection: DbConnection) -> None:
        try:
            connection.execute("ROLLBACK", ())
        except Exception as error:
            # The transaction is gone with the connection; the pool drops it.
            logger.debug("rollback failed on %s: %r", self._description, error)

    def _create_schema(self) -> None:
        with self._transaction(write=True) as tx:
            lock = self._schema_lock_statement()
            if lock is not None:
                tx.execute(lock)
            for statement in schema_statements(
                id_column=self.id_column, binary_type=self.binary_type
            ):
                tx.execute(statement)
            (version,) = tx.one(
                "SELECT version FROM schema_version WHERE component = 'queue'"
            )

        if version != SCHEMA_VERSION:
            raise StoreError(
                f"queue schema version {version!r} in {self._description} is not "
                f"the version {SCHEMA_VERSION} this activeserve uses; open it with "
                f"the activeserve release that created it, or use a new database"
            )

    def _commit_adds(self, samples: Sequence[NewSample]) -> list[AddResult]:
        now = self._clock()
        with self._transaction(write=True) as tx:
            return self._admission.admit(tx, samples, now)

    def _locked_sample(self, tx: Transaction, sample_id: int, now: float) -> Sample:
        row = tx.one(
            f"SELECT {SAMPLE_COLUMNS} FROM queue_samples WHERE id = ?{self.lock_rows}",
            sample_id,
        )
        if row is None:
            raise SampleNotFound(
                f"no queued sample has id {sample_id!r}; it was never queued or was "
                f"evicted to make room for higher-priority samples"
            )
        return decode_sample(row, now)

    def _next_label_seq(self, tx: Transaction) -> int:
        (value,) = tx.one(
            "UPDATE queue_counters SET value = value + 1"
            " WHERE name = 'label_seq' RETURNING value"
        )
        return int(value)
