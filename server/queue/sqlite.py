"""The embedded queue store: one SQLite file in WAL mode.

Every write transaction starts with ``BEGIN IMMEDIATE``, taking SQLite's single write
lock at once, so two leases (from threads of this process, or from other processes
on the same file) run one after the other and never see the same pending row.
``synchronous=FULL`` makes each commit wait for its fsync: a committed add survives
a crash of the process or of the machine.

Limits: the file must sit on a local disk (SQLite's locking is unreliable on network
filesystems); writes from all processes on one file are serialised, so several server
replicas on separate machines need the PostgreSQL store.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from activeserve.server.queue.clock import Clock
from activeserve.server.queue.config import QueueConfig
from activeserve.server.queue.errors import (
    InvalidStoreURL,
    StoreError,
    StoreUnavailable,
)
from activeserve.server.queue.pool import DbConnection
from activeserve.server.queue.sql_store import SqlQueueStore

__all__ = ["SQLiteQueueStore"]

logger = logging.getLogger(__name__)


class SQLiteQueueStore(SqlQueueStore):
    """Queue store in the SQLite database file at ``path`` (created if absent).

    Raises:
        InvalidStoreURL: ``path`` is ``:memory:`` or its directory does not exist.
        StoreUnavailable: The file cannot be opened or is locked for too long.
    """

    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
    binary_type = "BLOB"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        config: QueueConfig | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._path = Path(path)
        if str(path) == ":memory:":
            raise InvalidStoreURL(
                "an in-memory SQLite queue is not durable and each connection would "
                "see its own; give a file path, e.g. 'sqlite:///var/lib/queue.db'"
            )
        if not self._path.parent.is_dir():
            raise InvalidStoreURL(
                f"directory {str(self._path.parent)!r} of the SQLite queue "
                f"{str(self._path)!r} does not exist; create it first"
            )

        super().__init__(
            description=f"sqlite://{self._path}",
            config=config or QueueConfig(),
            clock=clock,
        )

    def _connect(self) -> DbConnection:
        # isolation_level=None: the driver opens no transactions of its own; every
        # transaction is the explicit BEGIN ... COMMIT of the store.
        connection = sqlite3.connect(
            self._path,
            timeout=self._config.busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode != "wal":
                raise StoreError(
                    f"SQLite refused WAL mode for {str(self._path)!r} (got {mode!r}); "
                    f"put the queue on a local filesystem"
                )
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            connection.close()
            raise
        return connection

    def _is_broken(self, connection: DbConnection) -> bool:
        return False

    def _begin_statement(self, *, write: bool) -> str:
        return "BEGIN IMMEDIATE" if write else "BEGIN"

    def _translate_error(self, error: Exception) -> StoreError | None:
        if isinstance(error, sqlite3.OperationalError):
            return StoreUnavailable(
                f"SQLite queue {str(self._path)!r} could not be used: {error}; "
                f"check that the file is writable and not locked by a stuck process"
            )
        if isinstance(error, sqlite3.Error):
            return StoreError(f"SQLite queue {str(self._path)!r} failed: {error!r}")
        return None
