"""`activeserve models list` and `activeserve models rollback`, run as commands against
a running server."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from safetensors.numpy import save as safetensors_bytes
from support.onnx_models import expected_logits, linear_classifier

from activeserve.client import Client


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "activeserve.client.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _publish_version_3(address: str, tmp_path) -> None:
    path = tmp_path / "model.onnx"
    W, b = linear_classifier(path, seed=3)
    probe = np.random.default_rng(3).random((2, 1, 8, 8), dtype=np.float32)
    with Client(address) as client:
        client.publish(
            "digits",
            onnx=path.read_bytes(),
            weights=safetensors_bytes({"W": W, "b": b}),
            metadata={
                "created_at": "2025-01-02T03:04:05+00:00",
                "labels_used": 120,
                "metrics": {"validation_accuracy": 0.93125},
            },
            parent_version=2,
            probe_input=probe,
            probe_expected=expected_logits(probe, W, b).astype(np.float32),
        )


def test_models_list_prints_a_row_per_version(
    make_repository, start_server, tmp_path
) -> None:
    server = start_server(make_repository(versions=(1, 2)), poll_interval_s=0)
    _publish_version_3(server.address, tmp_path)

    done = _cli("models", "list", "digits", "--server", server.address)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "model digits (serving version 3)"
    assert lines[1].split() == [
        "version",
        "created_at",
        "parent",
        "labels",
        "val_acc",
    ]
    assert lines[2].split() == ["1", "-", "-", "-", "-"]
    assert lines[3].split() == ["2", "-", "-", "-", "-"]
    assert lines[4].split() == [
        "3",
        "*",
        "2025-01-02T03:04:05+00:00",
        "2",
        "120",
        "0.9313",
    ]


def test_models_rollback_serves_the_version_before_or_the_one_named(
    make_repository, start_server
) -> None:
    server = start_server(make_repository(versions=(1, 2, 3)), poll_interval_s=0)

    back = _cli("models", "rollback", "digits", "--server", server.address)
    to_one = _cli(
        "models", "rollback", "digits", "--to", "1", "--server", server.address
    )
    listed = _cli("models", "list", "digits", "--server", server.address)

    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == "model digits: now serving version 2"
    assert to_one.stdout.strip() == "model digits: now serving version 1"
    assert listed.stdout.splitlines()[2].split() == ["1", "*", "-", "-", "-", "-"]
    with Client(server.address) as client:
        inputs = np.zeros((1, 1, 8, 8), dtype=np.float32)
        assert client.predict("digits", inputs, flag=False).version == 1


def test_models_commands_report_server_errors(make_repository, start_server) -> None:
    server = start_server(make_repository(), poll_interval_s=0)

    unknown = _cli("models", "list", "cats", "--server", server.address)
    oldest = _cli("models", "rollback", "digits", "--server", server.address)

    assert unknown.returncode == 1
    assert "no model 'cats'" in unknown.stderr
    assert oldest.returncode == 1
    assert "no earlier version to roll back to" in oldest.stderr
