from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from activeserve.server.queue import GroupCommitter, StoreClosed


class SlowLedger:
    """A fake database whose commits take time, like an fsync; records each batch."""

    def __init__(self, commit_s: float = 0.05, refuse: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.commit_s = commit_s
        self.refuse = refuse

    def commit(self, items: Sequence[int]) -> list[int]:
        time.sleep(self.commit_s)
        if self.refuse in items:
            raise RuntimeError(f"item {self.refuse} refused")
        self.batches.append(list(items))
        return [item * 10 for item in items]


def test_items_arriving_during_a_commit_share_the_next_one() -> None:
    ledger = SlowLedger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.commit, max_batch=100)

    first = committer.submit(0)
    time.sleep(0.01)  # the writer is now inside the first, slow commit
    rest = [committer.submit(n) for n in range(1, 20)]

    assert first.result() == 0
    assert [f.result() for f in rest] == [n * 10 for n in range(1, 20)]
    assert ledger.batches == [[0], list(range(1, 20))]
    assert committer.stats.batches == 2 and committer.stats.items == 20
    committer.close()


def test_batches_are_capped_at_max_batch() -> None:
    ledger = SlowLedger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.commit, max_batch=4)

    committer.submit(0)
    time.sleep(0.01)
    futures = [committer.submit(n) for n in range(1, 10)]
    for future in futures:
        future.result()

    assert [len(b) for b in ledger.batches] == [1, 4, 4, 1]
    committer.close()


def test_linger_gathers_items_before_the_first_commit() -> None:
    ledger = SlowLedger(commit_s=0.0)
    committer: GroupCommitter[int, int] = GroupCommitter(
        ledger.commit, max_batch=100, linger_s=0.2
    )
    start = threading.Barrier(8)

    def submit(n: int) -> None:
        start.wait()
        committer.submit(n).result()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(ledger.batches) == 1
    committer.close()


def test_a_failing_item_fails_only_its_own_caller() -> None:
    ledger = SlowLedger(refuse=3)
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.commit, max_batch=100)

    committer.submit(0)
    time.sleep(0.01)
    futures = {n: committer.submit(n) for n in range(1, 6)}

    with pytest.raises(RuntimeError, match=r"item 3 refused"):
        futures[3].result()
    assert [futures[n].result() for n in (1, 2, 4, 5)] == [10, 20, 40, 50]
    committer.close()


def test_close_commits_what_is_queued_then_refuses_more() -> None:
    ledger = SlowLedger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.commit, max_batch=100)
    futures = [committer.submit(n) for n in range(5)]

    committer.close()

    assert all(f.done() for f in futures)
    with pytest.raises(StoreClosed, match=r"closed"):
        committer.submit(9)


def test_a_cancelled_item_is_not_committed() -> None:
    ledger = SlowLedger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.commit, max_batch=100)
    committer.submit(0)
    time.sleep(0.01)

    cancelled = committer.submit(1)
    assert cancelled.cancel()
    committer.submit(2).result()

    assert ledger.batches == [[0], [2]]
    committer.close()
