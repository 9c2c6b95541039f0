"""The durable label-request queue: flagged samples wait here for human labels.

Open a store with :func:`open_store` (``sqlite:///path/queue.db`` or
``postgresql://...``); both backends behave the same and pass one test suite.
"""

from __future__ import annotations

from activeserve.server.queue.clock import Clock, ManualClock
from activeserve.server.queue.config import QueueConfig
from activeserve.server.queue.errors import (
    InvalidLabel,
    InvalidSample,
    InvalidStoreURL,
    LabelConflict,
    LeaseConflict,
    SampleNotFound,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)
from activeserve.server.queue.group_commit import GroupCommitStats, GroupCommitter
from activeserve.server.queue.model import (
    AddOutcome,
    AddResult,
    NewSample,
    QueueStats,
    Sample,
    SampleState,
    SubmitResult,
    content_hash,
)
from activeserve.server.queue.store import DEFAULT_STATS_WINDOW, QueueStore
from activeserve.server.queue.url import open_store

__all__ = [
    "DEFAULT_STATS_WINDOW",
    "AddOutcome",
    "AddResult",
    "Clock",
    "GroupCommitStats",
    "GroupCommitter",
    "InvalidLabel",
    "InvalidSample",
    "InvalidStoreURL",
    "LabelConflict",
    "LeaseConflict",
    "ManualClock",
    "NewSample",
    "QueueConfig",
    "QueueStats",
    "QueueStore",
    "Sample",
    "SampleNotFound",
    "SampleState",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "SubmitResult",
    "content_hash",
    "open_store",
]
