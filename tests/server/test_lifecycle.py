"""`activeserve serve` as a process: start-up log, health, and graceful shutdown."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _start(repository: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
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
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        match = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        if match:
            return process, match.group(1), "".join(lines)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("server did not start:\n" + "".join(lines))


def test_sigterm_finishes_in_flight_requests_and_exits_0(make_repository) -> None:
    config = "[batching]\nmax_batch_size = 64\nmax_queue_delay_ms = 1500.0\n"
    process, address, startup = _start(
        make_repository(config=config), "--drain-s", "1.0"
    )
    client = triton.InferenceServerClient(address)
    results: list[object] = []

    def slow_request() -> None:
        # Waits in the batcher for up to 1.5 s: in flight when SIGTERM lands.
        tensor = triton.InferInput("input", [1, 1, 8, 8], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 1, 8, 8), np.float32))
        try:
            results.append(client.infer("digits", [tensor]).as_numpy("label"))
        except Exception as error:
            results.append(error)

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)

    time.sleep(0.3)
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="")).status
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING

    thread.join(30)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert isinstance(results[0], np.ndarray), results
    assert "model digits version 1 loaded" in startup
    assert "on CPUExecutionProvider" in startup
    assert "stopped" in output


def test_reflection_lists_the_services(make_repository, start_server) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    server = start_server(make_repository())
    with grpc.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (response,) = list(stub.ServerReflectionInfo(iter([request])))
        listed = {s.name for s in response.list_services_response.service}

        symbol = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="inference.GRPCInferenceService"
        )
        (found,) = list(stub.ServerReflectionInfo(iter([symbol])))

    assert "inference.GRPCInferenceService" in listed
    assert "grpc.health.v1.Health" in listed
    assert found.file_descriptor_response.file_descriptor_proto


def test_repository_extension_loads_and_unloads(make_repository, start_server) -> None:
    repository = make_repository(versions=(1,))
    server = start_server(repository)
    client = triton.InferenceServerClient(server.address)

    index = client.get_model_repository_index(as_json=True)["models"]
    assert index == [{"name": "digits", "version": "1", "state": "READY"}]

    client.unload_model("digits")
    assert not client.is_model_ready("digits")

    from support.onnx_models import linear_classifier

    linear_classifier(repository / "digits" / "2" / "model.onnx", seed=2)
    client.load_model("digits")
    assert client.is_model_ready("digits", "2")
