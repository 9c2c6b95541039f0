"""Database connections for the stores: a small pool and the transaction wrapper.

Neither sqlite3 nor psycopg connections may be used by two threads at once; the pool
hands each caller a connection of its own for the length of one transaction. It opens
connections lazily, at most ``size`` of them, and replaces one that the driver reports
broken (e.g. a PostgreSQL server restart) on its next use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from activeserve.server.queue.errors import StoreClosed

__all__ = ["ConnectionPool", "DbConnection", "DbCursor", "Transaction"]

logger = logging.getLogger(__name__)


class DbCursor(Protocol):
    """The part of a DB-API cursor the stores use."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class DbConnection(Protocol):
    """The part of a sqlite3 / psycopg connection the stores use."""

    def execute(self, sql: str, params: Sequence[Any], /) -> DbCursor: ...

    def close(self) -> None: ...


class Transaction:
    """One open transaction on one connection.

    SQL is written with ``?`` placeholders; they are rewritten to ``placeholder``
    (``%s`` for psycopg) before reaching the driver, so no statement may contain a
    literal question mark.
    """

    def __init__(self, connection: DbConnection, placeholder: str) -> None:
        self._connection = connection
        self._placeholder = placeholder

    def execute(self, sql: str, *params: Any) -> DbCursor:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        return self._connection.execute(sql, params)

    def one(self, sql: str, *params: Any) -> Any:
        return self.execute(sql, *params).fetchone()

    def all(self, sql: str, *params: Any) -> list[Any]:
        return self.execute(sql, *params).fetchall()


class ConnectionPool:
    """At most ``size`` connections made by ``connect``; callers wait for a free one.

    ``is_broken(connection)`` tells whether a connection must be discarded after an
    error instead of being reused.
    """

    def __init__(
        self,
        connect: Callable[[], DbConnection],
        *,
        size: int,
        is_broken: Callable[[DbConnection], bool],
    ) -> None:
        self._connect = connect
        self._size = size
        self._is_broken = is_broken
        self._idle: list[DbConnection] = []
        self._opened = 0
        self._closed = False
        self._cond = threading.Condition()

    @contextmanager
    def connection(self) -> Iterator[DbConnection]:
        """A connection for this thread alone until the block ends.

        Raises:
            StoreClosed: After ``close()``.
        """
        connection = self._acquire()
        try:
            yield connection
        finally:
            self._release(connection)

    def close(self) -> None:
        """Close idle connections now and busy ones when they are returned."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
            self._cond.notify_all()
        for connection in idle:
            connection.close()

    def _acquire(self) -> DbConnection:
        with self._cond:
            while True:
                if self._closed:
                    raise StoreClosed("the store is closed; open it again to use it")
                if self._idle:
                    return self._idle.pop()
                if self._opened < self._size:
                    self._opened += 1
                    break
                self._cond.wait()

        # Connect outside the lock: it can take a network round trip.
        try:
            return self._connect()
        except BaseException:
            with self._cond:
                self._opened -= 1
                self._cond.notify()
            raise

    def _release(self, connection: DbConnection) -> None:
        discard = self._is_broken(connection)
        with self._cond:
            if not (discard or self._closed):
                self._idle.append(connection)
                self._cond.notify()
                return
            self._opened -= 1
            self._cond.notify()

        if discard:
            logger.warning("dropping a broken queue store connection")
        connection.close()
