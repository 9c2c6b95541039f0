"""A sample answered flagged=True survives the server being killed right after."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from activeserve.client import Client
from activeserve.server.queue import open_store

FLAG_ALL = '[flag]\npolicy = "threshold"\nscore = "entropy"\nthreshold = 0.0\n'


def _serve(repository: Path, queue_url: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "activeserve.client.cli",
            "serve",
            "--repository",
            str(repository),
            "--address",
            "127.0.0.1:0",
            "--queue",
            queue_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        if match:
            return process, match.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("server did not start")


def test_flagged_samples_survive_sigkill(make_repository, tmp_path: Path) -> None:
    repository = make_repository(config=FLAG_ALL, scale=0.2)
    queue_url = f"sqlite://{tmp_path / 'queue.db'}"
    process, address = _serve(repository, queue_url)
    rng = np.random.default_rng(0)
    acknowledged: list[int] = []

    with Client(address) as client:
        for _ in range(20):
            result = client.predict("digits", rng.random((3, 1, 8, 8), np.float32))
            acknowledged.extend(result.sample_ids[result.flagged].tolist())
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)

    assert len(acknowledged) == 60
    with open_store(queue_url) as store:
        missing = [i for i in acknowledged if store.get(i) is None]
    assert missing == []
