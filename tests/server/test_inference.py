"""The Open Inference Protocol service, driven by tritonclient against a real server."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from activeserve.core.scores import ScoreConfig, single_view_scores, softmax
from activeserve.proto import names


def _infer(
    client: triton.InferenceServerClient,
    batch: np.ndarray,
    *,
    model: str = "digits",
    version: str = "",
    outputs: list[str] | None = None,
) -> triton.InferResult:
    tensor = triton.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    requested = [triton.InferRequestedOutput(name) for name in outputs or []]
    return client.infer(
        model, [tensor], model_version=version, outputs=requested or None
    )


def test_health_and_metadata_answer_tritonclient(make_repository, start_server) -> None:
    server = start_server(make_repository(versions=(1, 2)))
    client = triton.InferenceServerClient(server.address)

    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits")
    assert not client.is_model_ready("digits", "1")

    metadata = client.get_server_metadata(as_json=True)
    assert metadata["name"] == "activeserve"
    assert "model_repository" in metadata["extensions"]
    assert "execution_provider:CPUExecutionProvider" in metadata["extensions"]

    model = client.get_model_metadata("digits", as_json=True)
    assert model["versions"] == ["1", "2"]
    assert model["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": ["-1", "1", "8", "8"]}
    ]
    output_names = [output["name"] for output in model["outputs"]]
    assert output_names[:3] == ["logits", names.PROBABILITIES, names.LABEL]
    assert set(names.SCORE_OUTPUTS) <= set(output_names)


def test_outputs_equal_a_direct_onnx_runtime_run(make_repository, start_server) -> None:
    repository = make_repository()
    server = start_server(repository)
    client = triton.InferenceServerClient(server.address)
    batch = np.random.default_rng(1).random((5, 1, 8, 8), dtype=np.float32)

    result = _infer(client, batch)

    session = ort.InferenceSession(
        str(repository / "digits" / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    (direct,) = session.run(None, {"input": batch})
    np.testing.assert_allclose(result.as_numpy("logits"), direct, atol=1e-5)
    probabilities = softmax(direct.astype(np.float64))
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), probabilities, atol=1e-5
    )
    np.testing.assert_array_equal(result.as_numpy("label"), direct.argmax(axis=1))

    expected = single_view_scores(probabilities, ScoreConfig())
    for name in names.SCORE_OUTPUTS:
        np.testing.assert_allclose(
            result.as_numpy(name), expected.get(name), rtol=1e-5, atol=1e-6
        )
    assert result.get_response().model_version == "1"


def test_scores_of_known_probability_vectors(make_repository, start_server) -> None:
    # An identity graph on [N, 2] probabilities lets the test choose them exactly.
    repository = make_repository(
        input_shape=(2,),
        num_classes=2,
        config='[model]\noutput = "probabilities"\n',
    )
    _write_identity(repository / "digits" / "1" / "model.onnx")
    server = start_server(repository)
    client = triton.InferenceServerClient(server.address)

    probs = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]], dtype=np.float32)
    tensor = triton.InferInput("input", [3, 2], "FP32")
    tensor.set_data_from_numpy(probs)
    result = client.infer("digits", [tensor])

    # Hand-computed: H = -sum p log p (natural log); LC = 1 - max p; margin = p1 - p2.
    entropy = [np.log(2.0), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)), 0.0]
    np.testing.assert_allclose(result.as_numpy("entropy"), entropy, atol=1e-5)
    np.testing.assert_allclose(
        result.as_numpy("least_confidence"), [0.5, 0.1, 0.0], atol=1e-6
    )
    np.testing.assert_allclose(result.as_numpy("margin"), [0.0, 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(result.as_numpy("diversity"), [0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(result.as_numpy("score"), entropy, atol=1e-5)


def test_typed_contents_are_accepted(make_repository, start_server) -> None:
    from activeserve.proto import inference as oip

    server = start_server(make_repository())
    import grpc

    with grpc.insecure_channel(server.address) as channel:
        stub = oip.InferenceStub(channel)
        request = oip.ModelInferRequest(model_name="digits")
        tensor = request.inputs.add(name="input", datatype="FP32", shape=[1, 1, 8, 8])
        tensor.contents.fp32_contents.extend([0.5] * 64)
        response = stub.ModelInfer(request)

    assert response.outputs[0].name == "logits"
    assert len(response.raw_output_contents) == len(response.outputs)
    assert not any(output.HasField("contents") for output in response.outputs)


def test_requested_outputs_come_back_in_the_requested_order(
    make_repository, start_server
) -> None:
    server = start_server(make_repository())
    client = triton.InferenceServerClient(server.address)
    batch = np.zeros((2, 1, 8, 8), dtype=np.float32)

    result = _infer(client, batch, outputs=["score", "label"])

    assert [o.name for o in result.get_response().outputs] == ["score", "label"]


def test_any_version_is_served_on_request(make_repository, start_server) -> None:
    server = start_server(make_repository(versions=(1, 2, 3)))
    client = triton.InferenceServerClient(server.address)
    batch = np.ones((1, 1, 8, 8), dtype=np.float32)

    newest = _infer(client, batch)
    first = _infer(client, batch, version="1")

    assert newest.get_response().model_version == "3"
    assert first.get_response().model_version == "1"
    assert not np.allclose(newest.as_numpy("logits"), first.as_numpy("logits"))


def test_concurrent_requests_share_runtime_calls(make_repository, start_server) -> None:
    config = "[batching]\nmax_batch_size = 64\nmax_queue_delay_ms = 20.0\n"
    server = start_server(make_repository(config=config))
    client = triton.InferenceServerClient(server.address)
    rng = np.random.default_rng(3)
    batches = [rng.random((1, 1, 8, 8), dtype=np.float32) for _ in range(24)]
    results: dict[int, np.ndarray] = {}

    def call(index: int) -> None:
        results[index] = _infer(client, batches[index]).as_numpy("logits")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    model = server.call(server.server.registry.get("digits"))
    stats = model.batcher.stats
    assert stats.items == len(batches)
    assert stats.runs < len(batches)

    # Each caller got its own rows back.
    alone = start_server(make_repository(config="[batching]\nenabled = false\n"))
    alone_client = triton.InferenceServerClient(alone.address)
    for index, batch in enumerate(batches):
        expected = _infer(alone_client, batch).as_numpy("logits")
        np.testing.assert_allclose(results[index], expected, atol=1e-6)


def test_a_request_larger_than_the_batch_is_split(
    make_repository, start_server
) -> None:
    config = "[batching]\nmax_batch_size = 4\n"
    server = start_server(make_repository(config=config))
    client = triton.InferenceServerClient(server.address)
    batch = np.random.default_rng(4).random((10, 1, 8, 8), dtype=np.float32)

    result = _infer(client, batch)

    model = server.call(server.server.registry.get("digits"))
    assert model.batcher.stats.largest_batch <= 4
    assert result.as_numpy("logits").shape == (10, 10)


def _write_identity(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["probs"])],
        "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_unknown_model_is_not_found(make_repository, start_server) -> None:
    server = start_server(make_repository())
    client = triton.InferenceServerClient(server.address)

    with pytest.raises(InferenceServerException, match="no model 'nope'") as caught:
        _infer(client, np.zeros((1, 1, 8, 8), np.float32), model="nope")
    assert caught.value.status() == "StatusCode.NOT_FOUND"
