"""Publishing versions over `activeserve.v1.Models`: what is accepted is written
atomically and served; what fails a check is refused with the right status and the
old version keeps serving; an upload cut off leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from safetensors.numpy import save as safetensors_bytes
from support.onnx_models import expected_logits, linear_classifier

from activeserve.client import Client, ClientError
from activeserve.proto import models_pb2, models_pb2_grpc
from activeserve.proto.codec import to_tensor

INPUTS = np.random.default_rng(7).random((4, 1, 8, 8), dtype=np.float32)


@dataclass(frozen=True)
class Payload:
    """A version to publish: its files, its probe, and the weights that make it."""

    onnx: bytes
    weights: bytes
    probe_input: np.ndarray
    probe_expected: np.ndarray
    W: np.ndarray
    b: np.ndarray


def make_payload(
    folder: Path, seed: int, shape: tuple[int, ...] = (1, 8, 8), classes: int = 10
) -> Payload:
    path = folder / f"payload-{seed}" / "model.onnx"
    W, b = linear_classifier(path, seed=seed, input_shape=shape, num_classes=classes)
    probe = np.random.default_rng(seed).random((3, *shape), dtype=np.float32)
    return Payload(
        onnx=path.read_bytes(),
        weights=safetensors_bytes({"W": W, "b": b}),
        probe_input=probe,
        probe_expected=expected_logits(probe, W, b).astype(np.float32),
        W=W,
        b=b,
    )


def publish(client: Client, payload: Payload, **overrides: Any) -> int:
    arguments: dict[str, Any] = {
        "onnx": payload.onnx,
        "weights": payload.weights,
        "metadata": {"labels_used": 20, "metrics": {"validation_accuracy": 0.9}},
        "parent_version": 1,
        "probe_input": payload.probe_input,
        "probe_expected": payload.probe_expected,
    }
    arguments.update(overrides)
    return client.publish("digits", **arguments).version


def version_folders(repository: Path) -> list[str]:
    return sorted(path.name for path in (repository / "digits").iterdir())


def test_publish_writes_the_version_and_serves_it(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository(config='[model]\noutput = "logits"\n')
    server = start_server(repository, poll_interval_s=0)
    payload = make_payload(tmp_path, seed=2)

    with Client(server.address) as client:
        result = client.publish(
            "digits",
            onnx=payload.onnx,
            weights=payload.weights,
            metadata={"labels_used": 20, "metrics": {"validation_accuracy": 0.9}},
            parent_version=1,
            probe_input=payload.probe_input,
            probe_expected=payload.probe_expected,
            chunk_bytes=1000,
        )
        prediction = client.predict("digits", INPUTS, flag=False)

    assert result.version == 2
    assert result.probe_max_abs_diff <= 1e-4
    assert prediction.version == 2
    np.testing.assert_allclose(
        prediction.outputs["logits"],
        expected_logits(INPUTS, payload.W, payload.b),
        atol=1e-4,
    )

    folder = repository / "digits" / "2"
    assert (folder / "model.onnx").read_bytes() == payload.onnx
    assert (folder / "weights.safetensors").read_bytes() == payload.weights
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["parent_version"] == 1
    assert metadata["labels_used"] == 20
    assert metadata["version"] == 2
    assert metadata["sha256"]["model.onnx"] == hashlib.sha256(payload.onnx).hexdigest()
    serving = json.loads((repository / "digits" / "serving.json").read_text())
    assert serving["version"] == 2
    assert version_folders(repository) == ["1", "2", "config.toml", "serving.json"]


def test_list_and_fetch_versions_return_files_metadata_and_config(
    make_repository, start_server, tmp_path
) -> None:
    config = '[model]\noutput = "logits"\n'
    repository = make_repository(config=config)
    server = start_server(repository, poll_interval_s=0)
    # Over 1 MiB, so that it travels in several chunks each way.
    payload = make_payload(tmp_path, seed=2)
    big_weights = safetensors_bytes({"W": np.zeros((600, 600), np.float32)})

    with Client(server.address) as client:
        publish(client, payload, weights=big_weights, chunk_bytes=300_000)
        versions = client.list_versions("digits")
        served = client.fetch_version("digits")
        first = client.fetch_version("digits", 1)

    assert versions.serving == 2
    assert [(v.version, v.serving) for v in versions.versions] == [
        (1, False),
        (2, True),
    ]
    assert versions.versions[0].metadata == {}
    assert versions.versions[1].metadata["metrics"] == {"validation_accuracy": 0.9}

    assert served.version == 2
    assert served.files["model.onnx"] == payload.onnx
    assert served.files["weights.safetensors"] == big_weights
    assert served.files["config.toml"] == config.encode()
    assert served.metadata["parent_version"] == 1
    assert first.version == 1
    assert sorted(first.files) == ["config.toml", "model.onnx"]
    assert first.metadata == {}


def test_fetch_of_an_unknown_version_is_not_found(
    make_repository, start_server
) -> None:
    server = start_server(make_repository(), poll_interval_s=0)

    with Client(server.address) as client, pytest.raises(ClientError) as raised:
        client.fetch_version("digits", 7)

    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert "has no version 7" in str(raised.value)


def _bad_safetensors(payload: Payload) -> dict[str, object]:
    good = payload.weights
    # The header claims one byte more of tensor data than the file holds.
    (length,) = np.frombuffer(good[:8], dtype="<u8")
    header = json.loads(good[8 : 8 + int(length)])
    header["W"]["data_offsets"][1] += 1
    text = json.dumps(header).encode()
    return {"weights": len(text).to_bytes(8, "little") + text + good[8 + int(length) :]}


REFUSALS = {
    "corrupt onnx": (
        lambda p: {"onnx": p.onnx[: len(p.onnx) // 2]},
        grpc.StatusCode.INVALID_ARGUMENT,
        "cannot be served",
    ),
    "probe mismatch": (
        lambda p: {"probe_expected": p.probe_expected + 0.5},
        grpc.StatusCode.FAILED_PRECONDITION,
        "differs from probe_expected by up to 0.5",
    ),
    "probe of the wrong shape": (
        lambda p: {"probe_expected": p.probe_expected[:, :3]},
        grpc.StatusCode.INVALID_ARGUMENT,
        "probe_expected has shape",
    ),
    "bad safetensors": (
        _bad_safetensors,
        grpc.StatusCode.INVALID_ARGUMENT,
        "not a well-formed safetensors file",
    ),
    "pickle as weights": (
        lambda p: {"weights": b"\x80\x04\x95" + b"\x00" * 64},
        grpc.StatusCode.INVALID_ARGUMENT,
        "not a well-formed safetensors file",
    ),
    "metadata not an object": (
        lambda p: {"metadata": ["not", "an", "object"]},
        grpc.StatusCode.INVALID_ARGUMENT,
        "expected a JSON object",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_upload_keeps_the_old_version_serving(
    case: str, make_repository, start_server, tmp_path
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=0)
    change, code, message = REFUSALS[case]
    payload = make_payload(tmp_path, seed=2)

    with Client(server.address) as client:
        with pytest.raises(ClientError, match=message) as raised:
            publish(client, payload, **change(payload))
        after = client.predict("digits", INPUTS, flag=False)

    assert raised.value.code == code
    assert after.version == 1
    assert version_folders(repository) == ["1"]


def test_a_version_with_another_input_signature_is_refused(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=0)
    payload = make_payload(tmp_path, seed=2, shape=(1, 4, 4))

    with Client(server.address) as client:
        with pytest.raises(ClientError, match="must keep the input") as raised:
            publish(client, payload)
        assert client.predict("digits", INPUTS, flag=False).version == 1

    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert version_folders(repository) == ["1"]


def test_a_version_with_other_classes_is_refused(
    make_repository, start_server, tmp_path
) -> None:
    server = start_server(make_repository(), poll_interval_s=0)
    payload = make_payload(tmp_path, seed=2, classes=3)

    with (
        Client(server.address) as client,
        pytest.raises(ClientError, match="with 3 classes") as raised,
    ):
        publish(client, payload)

    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_an_unknown_model_is_not_found(make_repository, start_server, tmp_path) -> None:
    server = start_server(make_repository(), poll_interval_s=0)
    payload = make_payload(tmp_path, seed=2)

    with Client(server.address) as client, pytest.raises(ClientError) as raised:
        client.publish(
            "cats",
            onnx=payload.onnx,
            weights=payload.weights,
            metadata={},
            parent_version=1,
            probe_input=payload.probe_input,
            probe_expected=payload.probe_expected,
        )

    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert "no model 'cats'" in str(raised.value)


def _header(payload: Payload, **sha256: str) -> models_pb2.PublishHeader:
    return models_pb2.PublishHeader(
        model_name="digits",
        parent_version=1,
        metadata_json="{}",
        probe_input=to_tensor(payload.probe_input),
        probe_expected=to_tensor(payload.probe_expected),
        probe_atol=1e-4,
        sha256=sha256,
    )


def _chunks(
    header: models_pb2.PublishHeader, files: dict[str, bytes]
) -> Iterator[models_pb2.PublishChunk]:
    yield models_pb2.PublishChunk(header=header)
    for name, data in files.items():
        yield models_pb2.PublishChunk(
            file=models_pb2.FileChunk(file_name=name, data=data)
        )


def test_a_sha256_mismatch_is_refused(make_repository, start_server, tmp_path) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=0)
    payload = make_payload(tmp_path, seed=2)
    header = _header(payload, **{"model.onnx": hashlib.sha256(b"other").hexdigest()})

    with grpc.insecure_channel(server.address) as channel:
        stub = models_pb2_grpc.ModelsStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Publish(_chunks(header, {"model.onnx": payload.onnx}), timeout=30)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has sha256" in raised.value.details()
    assert version_folders(repository) == ["1"]


def test_a_file_the_header_did_not_announce_is_refused(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=0)
    payload = make_payload(tmp_path, seed=2)
    header = _header(
        payload, **{"model.onnx": hashlib.sha256(payload.onnx).hexdigest()}
    )
    files = {"model.onnx": payload.onnx, "../escape.py": b"print('hi')"}

    with grpc.insecure_channel(server.address) as channel:
        stub = models_pb2_grpc.ModelsStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Publish(_chunks(header, files), timeout=30)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'../escape.py' has no sha256" in raised.value.details()
    assert version_folders(repository) == ["1"]
    assert not (repository / "escape.py").exists()


def test_an_upload_over_the_size_limit_is_refused(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=0, max_upload_mb=1)
    payload = make_payload(tmp_path, seed=2)
    oversized = replace(payload, weights=b"\x00" * (1024 * 1024 + 1))

    with Client(server.address) as client:
        with pytest.raises(ClientError, match="exceeds 1048576 bytes") as raised:
            publish(client, oversized)
        assert client.predict("digits", INPUTS, flag=False).version == 1

    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert version_folders(repository) == ["1"]


def test_a_publish_cancelled_mid_upload_publishes_nothing(
    make_repository, start_server, tmp_path
) -> None:
    repository = make_repository()
    server = start_server(repository, poll_interval_s=0)
    payload = make_payload(tmp_path, seed=2)
    header = _header(
        payload,
        **{
            "model.onnx": hashlib.sha256(payload.onnx).hexdigest(),
            "weights.safetensors": hashlib.sha256(payload.weights).hexdigest(),
        },
    )
    release = threading.Event()

    def stalled() -> Iterator[models_pb2.PublishChunk]:
        # The trainer is killed after sending part of the model.
        yield models_pb2.PublishChunk(header=header)
        yield models_pb2.PublishChunk(
            file=models_pb2.FileChunk(file_name="model.onnx", data=payload.onnx[:100])
        )
        release.wait(30)

    with grpc.insecure_channel(server.address) as channel:
        stub = models_pb2_grpc.ModelsStub(channel)
        call = stub.Publish.future(stalled(), timeout=30)
        _wait_for(lambda: any(_staging(repository)), "a staging folder")
        call.cancel()
        _wait_for(lambda: not any(_staging(repository)), "the staging folder to go")
        release.set()

    with Client(server.address) as client:
        assert client.predict("digits", INPUTS, flag=False).version == 1
        assert client.list_versions("digits").serving == 1
    assert version_folders(repository) == ["1"]


def test_stale_staging_folders_are_removed_at_start_up(
    make_repository, start_server
) -> None:
    repository = make_repository()
    stale = repository / "digits" / ".staging-left-by-a-crash"
    fresh = repository / "digits" / ".staging-upload-in-progress"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    for path in (stale / "model.onnx", stale):
        os.utime(path, (an_hour_ago, an_hour_ago))

    start_server(repository, poll_interval_s=0, stale_staging_s=600.0)

    assert not stale.exists()
    # Younger than stale_staging_s: another server sharing the repository may be
    # receiving it.
    assert fresh.exists()


def _staging(repository: Path) -> list[Path]:
    return list((repository / "digits").glob(".staging-*"))


def _wait_for(
    condition: Callable[[], bool], what: str, timeout_s: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
