"""The queue's tables, shared by the SQLite and PostgreSQL backends.

Both backends hold the same schema; only the identity column and the binary type are
spelled differently. Tables:

- ``schema_version(component, version)``: one row, ``('queue', SCHEMA_VERSION)``.
- ``queue_samples``: one row per queued sample; unique on (model_name, content_hash).
- ``queue_models``: per-model counters (flagged_total, evictions). Adds lock their
  model's row, which serialises adds per model across processes and replicas so that
  the ``max_pending`` bound holds exactly.
- ``queue_counters``: the global ``label_seq`` counter. A verdict increments it in its
  own transaction, holding the row lock until commit, so label_seq order is commit
  order and a reader resuming from a cursor never misses a later-committed verdict.

Shapes and scores are JSON text; probabilities are float32 little-endian bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from activeserve.server.queue.model import Sample, SampleState

__all__ = [
    "PENDING_PREDICATE",
    "SAMPLE_COLUMNS",
    "SCHEMA_VERSION",
    "decode_sample",
    "encode_probabilities",
    "encode_scores",
    "encode_shape",
    "schema_statements",
]

SCHEMA_VERSION = 1

SAMPLE_COLUMNS = (
    "id, model_name, model_version, input_bytes, datatype, shape, probabilities, "
    "scores, priority, predicted_label, content_hash, state, created_at, updated_at, "
    "labelled_at, label, reviewer, leased_by, lease_token, lease_expires_at, label_seq"
)

# Rows a reviewer may be given: pending, or leased with the lease run out. Takes the
# current time as its one parameter.
PENDING_PREDICATE = (
    "(state = 'pending' OR (state = 'leased' AND lease_expires_at <= ?))"
)

_STATES = ", ".join(f"'{state.value}'" for state in SampleState)


def schema_statements(*, id_column: str, binary_type: str) -> list[str]:
    """DDL that creates the schema if absent; every statement is idempotent.

    Args:
        id_column: The backend's auto-increment primary key that never reuses ids,
            e.g. ``"INTEGER PRIMARY KEY AUTOINCREMENT"``.
        binary_type: The backend's byte-string type, e.g. ``"BLOB"``.
    """
    return [
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS queue_models ("
        " model_name TEXT PRIMARY KEY,"
        " flagged_total BIGINT NOT NULL DEFAULT 0,"
        " evictions BIGINT NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS queue_counters ("
        " name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS queue_samples ("
        f" id {id_column},"
        " model_name TEXT NOT NULL,"
        " model_version TEXT NOT NULL,"
        " content_hash TEXT NOT NULL,"
        " datatype TEXT NOT NULL,"
        " shape TEXT NOT NULL,"
        f" input_bytes {binary_type} NOT NULL,"
        f" probabilities {binary_type} NOT NULL,"
        " scores TEXT NOT NULL,"
        " priority DOUBLE PRECISION NOT NULL,"
        " predicted_label BIGINT NOT NULL,"
        f" state TEXT NOT NULL CHECK (state IN ({_STATES})),"
        " created_at DOUBLE PRECISION NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL,"
        " labelled_at DOUBLE PRECISION,"
        " label BIGINT,"
        " reviewer TEXT,"
        " leased_by TEXT,"
        " lease_token TEXT,"
        " lease_expires_at DOUBLE PRECISION,"
        " label_seq BIGINT UNIQUE,"
        " UNIQUE (model_name, content_hash))",
        "CREATE INDEX IF NOT EXISTS queue_samples_by_priority"
        " ON queue_samples (model_name, state, priority)",
        "CREATE INDEX IF NOT EXISTS queue_samples_by_label_seq"
        " ON queue_samples (model_name, label_seq)",
        "INSERT INTO queue_counters (name, value) VALUES ('label_seq', 0)"
        " ON CONFLICT (name) DO NOTHING",
        "INSERT INTO schema_version (component, version)"
        f" VALUES ('queue', {SCHEMA_VERSION}) ON CONFLICT (component) DO NOTHING",
    ]


def encode_shape(shape: Sequence[int]) -> str:
    return json.dumps(list(shape))


def encode_scores(scores: Any) -> str:
    return json.dumps(dict(scores), sort_keys=True)


def encode_probabilities(probabilities: Sequence[float]) -> bytes:
    return np.asarray(probabilities, dtype="<f4").tobytes()


def decode_sample(row: Sequence[Any], now: float) -> Sample:
    """A ``Sample`` from a row selected as ``SAMPLE_COLUMNS``, as seen at ``now``."""
    (
        sample_id,
        model_name,
        model_version,
        input_bytes,
        datatype,
        shape,
        probabilities,
        scores,
        priority,
        predicted_label,
        digest,
        state,
        created_at,
        updated_at,
        labelled_at,
        label,
        reviewer,
        leased_by,
        lease_token,
        lease_expires_at,
        label_seq,
    ) = row

    effective = SampleState(state)
    if effective is SampleState.LEASED and lease_expires_at <= now:
        effective = SampleState.PENDING

    return Sample(
        id=int(sample_id),
        model_name=model_name,
        model_version=model_version,
        input_bytes=bytes(input_bytes),
        datatype=datatype,
        shape=tuple(json.loads(shape)),
        probabilities=tuple(np.frombuffer(bytes(probabilities), dtype="<f4").tolist()),
        scores=json.loads(scores),
        priority=float(priority),
        predicted_label=int(predicted_label),
        content_hash=digest,
        state=effective,
        created_at=float(created_at),
        updated_at=float(updated_at),
        labelled_at=None if labelled_at is None else float(labelled_at),
        label=None if label is None else int(label),
        reviewer=reviewer,
        leased_by=leased_by,
        lease_token=lease_token,
        lease_expires_at=None if lease_expires_at is None else float(lease_expires_at),
        label_seq=None if label_seq is None else int(label_seq),
    )
