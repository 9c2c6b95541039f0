"""Hot swaps: publishes under load drop no request and every answer comes from the
version it names; retired versions are freed; versions dropped in by hand are picked up;
rollbacks are served, survive restarts and are not undone by the polls."""

from __future__ import annotations

import json
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from safetensors.numpy import save as safetensors_bytes
from support.onnx_models import expected_logits, linear_classifier
from support.processes import serve

from activeserve.client import Client, ClientError

POLL_S = 0.25
# A version found by a poll still has to load and warm up before it serves.
PICKUP_S = POLL_S + 5.0
SHAPE = (1, 8, 8)


def weights_of(
    folder: Path, seed: int, shape: tuple[int, ...] = SHAPE, classes: int = 10
) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write the linear model of `seed` under `folder`; (path, W, b)."""
    path = folder / f"model-{seed}" / "model.onnx"
    W, b = linear_classifier(path, seed=seed, input_shape=shape, num_classes=classes)
    return path, W, b


def upload_of(
    folder: Path, seed: int, shape: tuple[int, ...] = SHAPE, classes: int = 10
) -> dict[str, Any]:
    """`Client.publish` arguments for the linear model of `seed`, with a probe
    computed from its weights."""
    path, W, b = weights_of(folder, seed, shape, classes)
    probe = np.random.default_rng(seed).random((2, *shape), dtype=np.float32)
    return {
        "onnx": path.read_bytes(),
        "weights": safetensors_bytes({"W": W, "b": b}),
        "metadata": {"labels_used": seed},
        "parent_version": seed - 1,
        "probe_input": probe,
        "probe_expected": expected_logits(probe, W, b).astype(np.float32),
    }


def publish_seed(client: Client, folder: Path, seed: int) -> int:
    """Publish the linear model of `seed`; returns the version it became."""
    return client.publish("digits", **upload_of(folder, seed)).version


def served_version(client: Client) -> int:
    inputs = np.zeros((1, 1, 8, 8), dtype=np.float32)
    return client.predict("digits", inputs, flag=False).version


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout_s}s")


def test_ten_publishes_under_load_fail_no_request(
    make_repository, start_server, tmp_path
) -> None:
    server = start_server(make_repository(), poll_interval_s=0)
    # Version v is the linear model of seed v: its logits tell it apart.
    expected = {v: weights_of(tmp_path, v)[1:] for v in range(1, 12)}
    inputs = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    stop = threading.Event()
    answers: list[tuple[int, np.ndarray]] = []
    failures: list[BaseException] = []

    def load() -> None:
        with Client(server.address) as client:
            while not stop.is_set():
                try:
                    result = client.predict("digits", inputs, flag=False)
                except Exception as error:
                    failures.append(error)
                    continue
                answers.append((result.version, result.outputs["logits"]))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        with Client(server.address) as client:
            for version in range(2, 12):
                time.sleep(0.05)
                assert publish_seed(client, tmp_path, version) == version
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    assert failures == []
    assert len({version for version, _ in answers}) >= 6
    for version, logits in answers:
        W, b = expected[version]
        np.testing.assert_allclose(logits, expected_logits(inputs, W, b), atol=1e-4)
    assert answers[-1][0] == 11


def test_retired_versions_are_freed_once_their_calls_finish(
    make_repository, start_server, tmp_path
) -> None:
    server = start_server(make_repository(), poll_interval_s=0)
    registry = server.server.registry
    retired: list[weakref.ref[object]] = []

    with Client(server.address) as client:
        for seed in range(2, 7):
            served_version(client)
            retired.append(weakref.ref(registry.serving()["digits"]))
            publish_seed(client, tmp_path, seed)

    # Freed by reference counting as soon as their batchers stop, with no garbage
    # collection forced: nothing keeps an old session (its weights) alive.
    wait_until(
        lambda: all(ref() is None for ref in retired), 10.0, "retired versions freed"
    )


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def test_thirty_swaps_keep_server_memory_bounded(make_repository, tmp_path) -> None:
    # 4096 x 256 float32 weights: 4 MiB a version, so keeping the 20 versions after
    # the first ten would add 80+ MiB. Without a leak the server's resident memory
    # wanders within about 30 MiB (allocator arenas), with no trend.
    shape, classes = (1, 64, 64), 256
    repository = make_repository(input_shape=shape, num_classes=classes)
    upload = upload_of(tmp_path, 2, shape, classes)
    server = serve(repository, tmp_path / "server.log", "--poll-interval-s", "0")
    rss = []
    try:
        with Client(server.address) as client:
            for _ in range(30):
                client.publish("digits", **upload)
                rss.append(_rss_mib(server.process.pid))
    finally:
        server.stop()

    growth = max(rss[10:]) - max(rss[:10])
    assert growth < 40, f"server memory grew {growth:.0f} MiB over 20 swaps: {rss}"


def test_a_version_dropped_in_by_hand_is_served_after_the_next_poll(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=POLL_S)

    # Copied under another name and renamed, as the repository docs advise.
    linear_classifier(repository / "digits" / "copying" / "model.onnx", seed=2)
    (repository / "digits" / "copying").rename(repository / "digits" / "2")

    with Client(server.address) as client:
        wait_until(lambda: served_version(client) == 2, PICKUP_S, "pick-up")
    serving = json.loads((repository / "digits" / "serving.json").read_text())
    assert serving["version"] == 2


def test_an_incomplete_version_folder_is_retried_until_it_loads(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=POLL_S)
    complete = tmp_path / "complete.onnx"
    linear_classifier(complete, seed=2)
    folder = repository / "digits" / "2"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(complete.read_bytes()[:200])

    with Client(server.address) as client:
        time.sleep(4 * POLL_S)
        assert served_version(client) == 1

        shutil.copyfile(complete, folder / "model.onnx")
        wait_until(lambda: served_version(client) == 2, PICKUP_S, "pick-up")


def test_a_new_model_folder_is_loaded_by_the_poll(
    make_repository, start_server
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=POLL_S)
    linear_classifier(repository / "letters" / "1" / "model.onnx", seed=5)
    inputs = np.zeros((1, 1, 8, 8), dtype=np.float32)

    def letters_served() -> bool:
        try:
            return client.predict("letters", inputs, flag=False).version == 1
        except ClientError:
            return False

    with Client(server.address) as client:
        wait_until(letters_served, PICKUP_S, "the new model served")


def test_rollback_survives_restarts_and_polls(make_repository, start_server) -> None:
    repository = make_repository(versions=(1, 2, 3))
    first = start_server(repository, poll_interval_s=POLL_S)

    with Client(first.address) as client:
        assert served_version(client) == 3
        assert client.rollback("digits") == 2
        assert served_version(client) == 2
        time.sleep(4 * POLL_S)
        assert served_version(client) == 2
        assert client.list_versions("digits").serving == 2
    first.call(first.server.stop())

    second = start_server(repository, poll_interval_s=POLL_S)
    with Client(second.address) as client:
        assert served_version(client) == 2
        assert client.rollback("digits", 1) == 1
        with pytest.raises(ClientError, match="no earlier version") as raised:
            client.rollback("digits")
        assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(ClientError, match="has no version 9") as missing:
            client.rollback("digits", 9)
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
        assert served_version(client) == 1

        # A version newer than any known ends the rollback.
        linear_classifier(repository / "digits" / "4" / "model.onnx", seed=4)
        wait_until(lambda: served_version(client) == 4, PICKUP_S, "pick-up of 4")
    serving = json.loads((repository / "digits" / "serving.json").read_text())
    assert serving == {**serving, "version": 4, "newest_known": 4}


def test_a_publish_after_a_rollback_serves_the_new_version(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository(versions=(1, 2))
    server = start_server(repository, poll_interval_s=POLL_S)

    with Client(server.address) as client:
        assert client.rollback("digits") == 1
        assert publish_seed(client, tmp_path, 3) == 3
        assert served_version(client) == 3
        time.sleep(3 * POLL_S)
        assert served_version(client) == 3
