"""The stores' time source, and a manual one for tests and simulations.

A store reads the time only through its ``clock``: creation and update times, lease
expiry and the age of the oldest pending sample all come from it. Any callable
returning seconds since the epoch will do; :class:`ManualClock` moves only when told,
so a test can expire a lease without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Clock", "ManualClock"]

Clock = Callable[[], float]
"""Returns the current time in seconds since the epoch, like ``time.time``."""


class ManualClock:
    """A clock that stands still until ``advance`` or ``set`` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        return self()

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (>= 0): time never runs backwards."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got {seconds!r} seconds")
        with self._lock:
            self._now += seconds
