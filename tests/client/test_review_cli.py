"""`activeserve review` and `activeserve queue stats`, driven end to end with piped
keyboard input against a running server."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from activeserve.client import Client

FLAG_ALL = '[flag]\npolicy = "threshold"\nscore = "entropy"\nthreshold = 0.0\n'


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "activeserve.client.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_review_reads_labels_skips_and_quits(make_repository, start_server) -> None:
    server = start_server(make_repository(config=FLAG_ALL, scale=0.2))
    with Client(server.address) as client:
        client.predict("digits", np.random.default_rng(0).random((4, 1, 8, 8), "f4"))

    done = _cli(
        "review",
        "--server",
        server.address,
        "--model",
        "digits",
        "--batch",
        "2",
        stdin="3\nbanana\n5\ns\nu\nq\n",
    )

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("sample ") >= 4
    assert "█" in out or "▓" in out  # the 8x8 input drawn as a picture
    assert "predicted" in out and "entropy=" in out
    assert "not recorded: label 'banana' is not a class" in out
    assert out.count("labelled") == 2
    assert "skipped" in out and "marked unclassifiable" in out
    assert "4 sample(s) answered." in out

    with Client(server.address) as client:
        stats = client.queue_stats("digits")
    assert stats.counts["labelled"] == 2
    assert stats.counts["skipped"] == 1
    assert stats.counts["unclassifiable"] == 1


def test_quit_releases_the_leased_samples(make_repository, start_server) -> None:
    server = start_server(make_repository(config=FLAG_ALL, scale=0.2))
    with Client(server.address) as client:
        client.predict("digits", np.random.default_rng(1).random((3, 1, 8, 8), "f4"))

    done = _cli("review", "--server", server.address, "--model", "digits", stdin="q\n")

    assert done.returncode == 0, done.stderr
    with Client(server.address) as client:
        assert client.queue_stats("digits").counts["pending"] == 3


def test_queue_stats_prints_counts_and_stopping(make_repository, start_server) -> None:
    server = start_server(make_repository(config=FLAG_ALL, scale=0.2))
    with Client(server.address) as client:
        client.predict("digits", np.random.default_rng(2).random((2, 1, 8, 8), "f4"))

    done = _cli("queue", "stats", "--server", server.address, "--model", "digits")

    assert done.returncode == 0, done.stderr
    assert "pending" in done.stdout and "2" in done.stdout
    assert "agreement" in done.stdout and "stop" in done.stdout


def test_tabular_inputs_are_shown_as_numbers() -> None:
    from activeserve.client.terminal import render_input

    text = render_input(np.arange(5, dtype=np.float32))

    assert text.startswith("shape [5]: [0. 1. 2. 3. 4.]")
