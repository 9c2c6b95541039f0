"""The benchmark's CPU split: parsing, checking and applying it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from benchmarks.cpu_split import (
    CpuSplit,
    CpuSplitError,
    parse_cpu_list,
    usable_cpus,
)


def test_cpu_lists_read_as_taskset_writes_them() -> None:
    assert parse_cpu_list("1") == {1}
    assert parse_cpu_list("0,2") == {0, 2}
    assert parse_cpu_list("2-4,7") == {2, 3, 4, 7}


@pytest.mark.parametrize("text", ["", "a", "3-1", "1,,2", "-1"])
def test_a_malformed_cpu_list_names_itself(text: str) -> None:
    with pytest.raises(CpuSplitError, match="CPU"):
        parse_cpu_list(text)


def test_the_load_generator_keeps_every_core_the_server_does_not_get() -> None:
    split = CpuSplit.for_server(frozenset({1}), available=frozenset({0, 1, 2}))

    assert split.client == {0, 2}
    assert split.server_command(["serve", "--x"]) == [
        "taskset",
        "--cpu-list",
        "1",
        "serve",
        "--x",
    ]
    assert split.as_dict() == {"server_cpus": [1], "client_cpus": [0, 2]}


@pytest.mark.parametrize(
    ("server", "message"),
    [({5}, r"\[5\] are not usable"), ({0, 1}, "leave"), (set(), "leave")],
)
def test_a_split_that_cannot_be_made_says_why(server: set[int], message: str) -> None:
    with pytest.raises(CpuSplitError, match=message):
        CpuSplit.for_server(frozenset(server), available=frozenset({0, 1}))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset")
def test_a_server_command_and_its_children_run_on_the_servers_cores() -> None:
    cpus = sorted(usable_cpus())
    split = CpuSplit.for_server(frozenset({cpus[-1]}))
    child = (
        "import os, subprocess, sys; "
        "print(sorted(os.sched_getaffinity(0))); "
        "subprocess.run([sys.executable, '-c', "
        "'import os; print(sorted(os.sched_getaffinity(0)))'], check=True)"
    )

    output = subprocess.run(
        split.server_command([sys.executable, "-c", child]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")

    assert output[:2] == [str([cpus[-1]]), str([cpus[-1]])]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
def test_pinning_moves_every_thread_of_the_process() -> None:
    script = (
        "import os, threading, time\n"
        "from benchmarks.cpu_split import pin_this_process\n"
        "started = threading.Event()\n"
        "def wait():\n"
        "    started.set(); time.sleep(1)\n"
        "worker = threading.Thread(target=wait); worker.start(); started.wait()\n"
        f"pin_this_process(frozenset({{{min(os.sched_getaffinity(0))}}}))\n"
        "print(sorted(os.sched_getaffinity(worker.native_id)))\n"
        "worker.join()\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

    output = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    ).stdout

    assert output.strip() == str([min(os.sched_getaffinity(0))])
