"""Every kind of bad request gets its own gRPC status and a message naming the value
given and the one expected; the server then answers the next good request."""

from __future__ import annotations

import re

import grpc
import numpy as np
import pytest

from activeserve.proto import inference as oip


@pytest.fixture
def served(make_repository, start_server):
    return start_server(make_repository(versions=(1, 2)), max_message_mb=1)


@pytest.fixture
def stub(served):
    with grpc.insecure_channel(served.address) as channel:
        yield oip.InferenceStub(channel)


def _request(
    *,
    model: str = "digits",
    version: str = "",
    name: str = "input",
    datatype: str = "FP32",
    shape: tuple[int, ...] = (1, 1, 8, 8),
    raw: bytes | None = None,
) -> object:
    request = oip.ModelInferRequest(model_name=model, model_version=version)
    request.inputs.add(name=name, datatype=datatype, shape=list(shape))
    if raw is None:
        raw = np.zeros(shape, dtype=np.float32).tobytes()
    request.raw_input_contents.append(raw)
    return request


def _good(stub) -> None:
    response = stub.ModelInfer(_request())
    assert response.model_version == "2"


BAD_REQUESTS = [
    pytest.param(
        _request(model="missing"),
        grpc.StatusCode.NOT_FOUND,
        r"no model 'missing'.*models there: \['digits'\]",
        id="unknown-model",
    ),
    pytest.param(
        _request(version="7"),
        grpc.StatusCode.NOT_FOUND,
        r"no version 7; versions: \[1, 2\]",
        id="unknown-version",
    ),
    pytest.param(
        _request(version="latest"),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"version 'latest' is not a version number",
        id="version-not-a-number",
    ),
    pytest.param(
        _request(name="pixels"),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"no input 'pixels'; expected 'input'",
        id="wrong-input-name",
    ),
    pytest.param(
        _request(datatype="FP64", raw=np.zeros((1, 1, 8, 8)).tobytes()),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"datatype 'FP64' given, model 'digits' expects 'FP32'",
        id="wrong-datatype",
    ),
    pytest.param(
        _request(shape=(1, 1, 4, 16)),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"shape \[1, 1, 4, 16\] given, model 'digits' expects \[-1, 1, 8, 8\]",
        id="wrong-shape",
    ),
    pytest.param(
        _request(raw=b"\x00" * 100),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"raw contents hold 100 bytes; shape \[1, 1, 8, 8\] of FP32 needs 256 bytes",
        id="raw-byte-count",
    ),
    pytest.param(
        _request(raw=np.full((1, 1, 8, 8), np.nan, np.float32).tobytes()),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"64 value\(s\) are NaN or infinite .*needs finite values",
        id="nan",
    ),
    pytest.param(
        _request(shape=(0, 1, 8, 8), raw=b""),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"no rows; expected at least one candidate",
        id="empty-batch",
    ),
]


@pytest.mark.parametrize(("request_", "code", "message"), BAD_REQUESTS)
def test_bad_request_gets_a_clear_status(stub, request_, code, message) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request_)

    assert caught.value.code() == code
    assert re.search(message, caught.value.details()), caught.value.details()
    _good(stub)


def test_infinite_values_are_refused(stub) -> None:
    values = np.zeros((2, 1, 8, 8), np.float32)
    values[1, 0, 3, 4] = np.inf

    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(_request(shape=(2, 1, 8, 8), raw=values.tobytes()))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "first at index [1, 0, 3, 4]" in caught.value.details()
    _good(stub)


def test_raw_and_typed_contents_mixed_are_refused(stub) -> None:
    request = _request()
    request.inputs[0].contents.fp32_contents.extend([0.0] * 64)

    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "send one or the other" in caught.value.details()
    _good(stub)


def test_typed_contents_of_the_wrong_length_are_refused(stub) -> None:
    request = oip.ModelInferRequest(model_name="digits")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[1, 1, 8, 8])
    tensor.contents.fp32_contents.extend([0.0] * 10)

    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "fp32_contents holds 10 values; shape [1, 1, 8, 8] needs 64" in (
        caught.value.details()
    )
    _good(stub)


def test_unknown_requested_output_is_refused(stub) -> None:
    request = _request()
    request.outputs.add(name="embedding")

    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "['embedding'] do not exist" in caught.value.details()
    _good(stub)


def test_a_message_over_the_size_limit_is_resource_exhausted(stub) -> None:
    rows = 5000  # 5000 x 256 bytes = 1.2 MiB, over the 1 MiB limit of this server
    request = _request(shape=(rows, 1, 8, 8))

    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _good(stub)


def test_methods_outside_the_protocol_subset_are_unimplemented(served) -> None:
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(served.address)

    # ModelConfig is a Triton extension that activeserve does not implement.
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_config("digits")

    assert caught.value.status() == "StatusCode.UNIMPLEMENTED"
