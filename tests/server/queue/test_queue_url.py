from __future__ import annotations

from pathlib import Path

import pytest

from activeserve.server.queue import (
    InvalidStoreURL,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    open_store,
)


@pytest.mark.parametrize(
    "url",
    ["mysql://db/queue", "queue.db", "sqlite://", "sqlite:///q.db?mode=ro", ""],
)
def test_unsupported_urls_name_the_url_and_the_accepted_forms(url: str) -> None:
    with pytest.raises(InvalidStoreURL, match=r"sqlite:///absolute/path/queue\.db"):
        open_store(url)


def test_password_in_a_bad_url_is_not_echoed() -> None:
    with pytest.raises(InvalidStoreURL) as caught:
        open_store("mysql://ann:s3cret@db/queue")

    assert "s3cret" not in str(caught.value)
    assert "ann:***@db/queue" in str(caught.value)


def test_sqlite_in_a_missing_directory_says_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURL, match=r"does not exist; create it first"):
        open_store(f"sqlite://{tmp_path}/absent/queue.db")


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(InvalidStoreURL, match=r"in-memory SQLite queue is not durable"):
        open_store("sqlite://:memory:")


def test_unreachable_postgres_is_unavailable_and_hides_the_password() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_store("postgresql://ann:s3cret@127.0.0.1:1/queue?connect_timeout=1")

    assert "s3cret" not in str(caught.value)


def test_schema_is_created_once_and_reopening_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/queue.db"
    with open_store(url) as store:
        assert store.stats("digits").flagged_total == 0

    with open_store(url) as store:
        assert store.get(1) is None


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite://{tmp_path}/queue.db"
    open_store(url).close()
    with sqlite3.connect(tmp_path / "queue.db") as connection:
        connection.execute("UPDATE schema_version SET version = 99")
    connection.close()

    with pytest.raises(StoreError, match=r"schema version 99 .* is not the version 1"):
        open_store(url)


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/queue.db")
    store.close()
    store.close()

    with pytest.raises(StoreClosed, match=r"closed"):
        store.lease("digits", 1, 10.0, "ann")
