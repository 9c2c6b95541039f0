"""Tuning knobs of a queue store, with their documented defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QueueConfig"]


@dataclass(frozen=True)
class QueueConfig:
    """Settings shared by every queue backend.

    Attributes:
        max_pending: Most samples one model may have waiting for a reviewer
            (state pending, or leased with an expired lease). When full, a new sample
            is queued only if its priority is strictly higher than the lowest pending
            one, which is then evicted. Default 10,000.
        max_batch: Most ``add`` calls merged into one transaction by the group
            committer. Default 256.
        linger_ms: How long the group committer waits for more ``add`` calls after
            the first one arrives before committing. 0 (default) adds no latency:
            batches still form from the calls that arrive while the previous commit
            is being flushed to disk.
        pool_size: Database connections held by one store (the group committer uses
            one of them). Default 4.
        busy_timeout_s: SQLite only: how long a write waits for another process's
            write lock before failing with ``StoreUnavailable``. Default 30.
        connect_timeout_s: PostgreSQL only: how long opening a connection may take.
            Default 5.
    """

    max_pending: int = 10_000
    max_batch: int = 256
    linger_ms: float = 0.0
    pool_size: int = 4
    busy_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_pending", "max_batch", "pool_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"QueueConfig.{name} must be a positive int, got {value!r}"
                )

        for name in ("linger_ms", "busy_timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f"QueueConfig.{name} must be a number >= 0, got {value!r}"
                )
