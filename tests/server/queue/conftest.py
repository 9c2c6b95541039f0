"""Fixtures running every queue test against both backends: SQLite and PostgreSQL.

PostgreSQL tests use a fresh schema per test on database ``test`` at 127.0.0.1:5432
(user ``postgres``, else ``root``). When that server is unreachable they are skipped,
unless the ``CI`` environment variable is set: there a missing database is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from activeserve.server.queue import (
    ManualClock,
    NewSample,
    QueueConfig,
    QueueStore,
    open_store,
)

POSTGRES_USERS = ("postgres", "root")
POSTGRES_ADDRESS = "127.0.0.1:5432"
POSTGRES_DATABASE = "test"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """A URL of the test PostgreSQL server; skips (or fails under CI) if none."""
    problems = []
    for user in POSTGRES_USERS:
        url = f"postgresql://{user}@{POSTGRES_ADDRESS}/{POSTGRES_DATABASE}"
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error as error:
            problems.append(f"{user}: {' '.join(str(error).split())}")

    reason = (
        f"PostgreSQL database {POSTGRES_DATABASE!r} at {POSTGRES_ADDRESS} is not "
        f"reachable as {' or '.join(POSTGRES_USERS)} ({'; '.join(problems)})"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so PostgreSQL tests must run")
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A store URL whose tables land in a schema created for this test alone."""
    schema = f"activeserve_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')

    yield f"{postgres_server_url}?options=-csearch_path%3D{schema}"

    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/queue.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def open_test_store(
    store_url: str, clock: ManualClock
) -> Iterator[Callable[..., QueueStore]]:
    """Opens stores on this test's database (same clock); closes them afterwards."""
    opened: list[QueueStore] = []

    def open_one(config: QueueConfig | None = None) -> QueueStore:
        store = open_store(store_url, config=config, clock=clock)
        opened.append(store)
        return store

    yield open_one

    for store in opened:
        store.close()


@pytest.fixture
def store(open_test_store: Callable[..., QueueStore]) -> QueueStore:
    return open_test_store()


@pytest.fixture
def new_sample() -> Callable[..., NewSample]:
    """Builds a distinct NewSample per ``n``: a 2x2 FP32 input filled with ``n``."""

    def build(
        n: int,
        *,
        model_name: str = "digits",
        priority: float = 1.0,
        predicted_label: int = 0,
        num_classes: int = 3,
    ) -> NewSample:
        probabilities = np.full(num_classes, 0.1, dtype=np.float32)
        probabilities[predicted_label] = 1.0 - 0.1 * (num_classes - 1)
        return NewSample(
            model_name=model_name,
            model_version="1",
            input_bytes=np.full((2, 2), n, dtype="<f4").tobytes(),
            datatype="FP32",
            shape=(2, 2),
            probabilities=tuple(probabilities.tolist()),
            scores={"score": priority, "entropy": 0.5, "margin": 0.1},
            priority=priority,
            predicted_label=predicted_label,
        )

    return build
