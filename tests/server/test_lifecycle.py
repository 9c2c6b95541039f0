"""`activeserve serve` as a process: start-up log, health, and graceful shutdown."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.processes import serve


def test_sigterm_finishes_in_flight_requests_and_exits_0(
    make_repository, tmp_path: Path
) -> None:
    config = "[batching]\nmax_batch_size = 64\nmax_queue_delay_ms = 1500.0\n"
    server = serve(make_repository(config=config), tmp_path / "log", "--drain-s", "1")
    client = triton.InferenceServerClient(server.address)
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
    server.process.send_signal(signal.SIGTERM)

    time.sleep(0.3)
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="")).status
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING

    thread.join(30)
    assert server.process.wait(30) == 0, server.output()
    assert isinstance(results[0], np.ndarray), results
    output = server.output()
    assert "model digits version 1 loaded" in output
    assert "on CPUExecutionProvider" in output
    assert output.rstrip().endswith("stopped")


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
