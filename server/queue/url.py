"""``open_store``: the queue store a URL names."""

from __future__ import annotations

import logging
import time

from activeserve.server.queue.clock import Clock
from activeserve.server.queue.config import QueueConfig
from activeserve.server.queue.errors import InvalidStoreURL
from activeserve.server.queue.store import QueueStore

__all__ = ["ACCEPTED_URLS", "open_store", "redact_url"]

logger = logging.getLogger(__name__)

ACCEPTED_URLS = (
    "sqlite:///absolute/path/queue.db, sqlite://relative/path/queue.db, "
    "postgresql://user[:password]@host[:port]/database[?libpq-parameters]"
)


def open_store(
    url: str,
    *,
    config: QueueConfig | None = None,
    clock: Clock = time.time,
) -> QueueStore:
    """Open (creating its schema if needed) the queue store that ``url`` names.

    - ``sqlite://`` followed by a file path: ``sqlite:///var/lib/q.db`` is the
      absolute path ``/var/lib/q.db``, ``sqlite://q.db`` is relative to the working
      directory. (This differs from SQLAlchemy, where three slashes mean relative.)
    - ``postgresql://...`` or ``postgres://...``: a libpq connection URL.

    ``clock`` gives the current time in seconds; tests pass a fake one to expire
    leases without sleeping.

    Raises:
        InvalidStoreURL: ``url`` names no supported backend.
        StoreUnavailable: The database cannot be opened or reached.
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()

    if separator and scheme == "sqlite":
        if not rest or "?" in rest:
            raise InvalidStoreURL(
                f"SQLite queue URL {url!r} names no file path (query parameters are "
                f"not supported); expected one of: {ACCEPTED_URLS}"
            )
        from activeserve.server.queue.sqlite import SQLiteQueueStore

        return SQLiteQueueStore(rest, config=config, clock=clock)

    if separator and scheme in ("postgresql", "postgres"):
        from activeserve.server.queue.postgres import PostgresQueueStore

        return PostgresQueueStore(url, config=config, clock=clock)

    raise InvalidStoreURL(
        f"queue store URL {redact_url(url)!r} is not supported; expected one of: "
        f"{ACCEPTED_URLS}"
    )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs and error messages."""
    if "@" not in url:
        return url
    head, _, tail = url.rpartition("@")
    scheme, separator, credentials = head.partition("://")
    if ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}{separator}{credentials}@{tail}"
