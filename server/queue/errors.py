"""Errors raised by the label-request queue stores.

Every error derives from :class:`StoreError`, so a caller that only wants to know
"did the queue refuse this" catches one class::

    StoreError                 base: the queue could not do what was asked
    ├── StoreUnavailable       the database is unreachable; retrying later is safe
    ├── StoreClosed            the store was closed (the server is stopping)
    ├── InvalidStoreURL        a URL naming no supported backend; fix the configuration
    ├── InvalidSample          a NewSample whose fields disagree (bytes vs shape)
    ├── InvalidLabel           a label that is not a class index of the model
    ├── SampleNotFound         no sample with that id (never queued, or evicted)
    ├── LeaseConflict          the caller does not hold the sample's lease
    └── LabelConflict          the sample already has a different verdict

The gRPC status of each lives in one table, `activeserve.server.errors.status_of`.
"""

from __future__ import annotations

__all__ = [
    "InvalidLabel",
    "InvalidSample",
    "InvalidStoreURL",
    "LabelConflict",
    "LeaseConflict",
    "SampleNotFound",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(Exception):
    """Base class of every error raised by a queue store."""


class StoreUnavailable(StoreError):
    """The database could not be reached or dropped the connection mid-call.

    The operation was not applied (its transaction rolled back); retrying later is safe.
    """


class StoreClosed(StoreError):
    """The store was closed; no further calls are accepted."""


class InvalidStoreURL(StoreError):
    """A store URL that names no supported backend or is malformed."""


class InvalidSample(StoreError):
    """A sample whose fields disagree (e.g. its byte length does not fit its shape)."""


class InvalidLabel(StoreError):
    """A label that is not a class index the model knows."""


class SampleNotFound(StoreError):
    """No sample has the given id (never queued, or evicted before review)."""


class LeaseConflict(StoreError):
    """The caller does not hold the sample's lease.

    Raised when another reviewer holds an unexpired lease, when the caller's lease
    token was superseded by a newer lease, or when releasing a sample that is not
    leased with that token.
    """


class LabelConflict(StoreError):
    """The sample already has a different verdict (another label, or unclassifiable)."""
