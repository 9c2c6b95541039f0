from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from activeserve.server.queue import open_store

# Adds samples from four threads and prints each id once `add` has returned.
_CHILD = """
import struct, sys, threading
from activeserve.server.queue import NewSample, open_store

store = open_store(sys.argv[1])
printing = threading.Lock()

def work(worker):
    for n in range(1_000_000):
        result = store.add(NewSample(
            model_name="digits", model_version="1",
            input_bytes=struct.pack("<ii", worker, n), datatype="INT32", shape=(2,),
            probabilities=(0.5, 0.5), scores={"score": 0.7}, priority=0.7,
            predicted_label=0,
        ))
        with printing:
            print(result.sample_id, flush=True)

threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""

_IDS_BEFORE_KILL = 60
_TIMEOUT_S = 20.0


def test_every_add_that_returned_survives_sigkill(store_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None

    lines: list[str] = []
    deadline = time.monotonic() + _TIMEOUT_S
    while len(lines) < _IDS_BEFORE_KILL and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    # Lines the child printed between our last read and the kill count too.
    lines.extend(child.stdout.readlines())
    errors = child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    ids = [int(line) for line in lines if line.endswith("\n")]
    assert len(ids) >= _IDS_BEFORE_KILL, f"child printed too few ids: {errors}"
    assert child.returncode == -signal.SIGKILL

    with open_store(store_url) as reopened:
        missing = [i for i in ids if reopened.get(i) is None]
    assert missing == []
