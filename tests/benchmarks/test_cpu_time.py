"""Server CPU per request: the process group's CPU time, read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cpu_time import process_group_cpu_s
from benchmarks.serving import cpu_us_per_request

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="needs Linux's /proc"
)

BUSY_CHILDREN = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
end = time.monotonic() + 30
while time.monotonic() < end:
    pass
"""


def test_the_cpu_of_a_group_and_its_children_is_counted() -> None:
    # A leader of a session of its own that burns CPU, with a child that does too.
    process = subprocess.Popen(
        [sys.executable, "-c", BUSY_CHILDREN], start_new_session=True
    )
    try:
        time.sleep(0.5)
        first = process_group_cpu_s(process.pid)
        time.sleep(1.0)
        second = process_group_cpu_s(process.pid)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    assert first is not None and second is not None
    # Two busy processes on (up to) two cores for one second: well over one
    # process's share of the interval.
    assert second - first > 0.5


def test_a_group_with_no_process_has_spent_nothing() -> None:
    assert process_group_cpu_s(2**22 + 12345) == 0.0


def test_cpu_per_request_divides_by_every_answered_request() -> None:
    assert cpu_us_per_request(10.0, 12.5, 5_000) == pytest.approx(500.0)
    assert cpu_us_per_request(None, 12.5, 5_000) is None
    assert cpu_us_per_request(10.0, 12.5, 0) is None
