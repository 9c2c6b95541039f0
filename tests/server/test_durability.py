"""A sample answered flagged=True survives the server being killed right after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.processes import serve

from activeserve.client import Client
from activeserve.server.queue import open_store

FLAG_ALL = '[flag]\npolicy = "threshold"\nscore = "entropy"\nthreshold = 0.0\n'


def test_flagged_samples_survive_sigkill(make_repository, tmp_path: Path) -> None:
    repository = make_repository(config=FLAG_ALL, scale=0.2)
    queue_url = f"sqlite://{tmp_path / 'queue.db'}"
    server = serve(repository, tmp_path / "server.log", "--queue", queue_url)
    rng = np.random.default_rng(0)
    acknowledged: list[int] = []

    with Client(server.address) as client:
        for _ in range(20):
            result = client.predict("digits", rng.random((3, 1, 8, 8), np.float32))
            acknowledged.extend(result.sample_ids[result.flagged].tolist())
    server.kill()

    assert len(acknowledged) == 60
    with open_store(queue_url) as store:
        missing = [i for i in acknowledged if store.get(i) is None]
    assert missing == []
