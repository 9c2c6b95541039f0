"""Pre-encoded ModelInfer responses are exactly what protobuf would serialise."""

from __future__ import annotations

import numpy as np
import pytest

from activeserve.proto import inference as oip
from activeserve.proto.codec import datatype_of, encode_raw
from activeserve.server.services.responses import ResponseEncoder, varint


class _Owner:
    """Stands for a loaded model version: the encoder caches per owner."""


def _arrays(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "logits": rng.standard_normal((rows, 10)).astype(np.float32),
        "label": rng.integers(0, 10, rows).astype(np.int64),
        "views": np.ones(rows, dtype=np.int32),
        "flagged": rng.random(rows) > 0.5,
        "embedding": rng.standard_normal((rows, 2, 3)),
    }


def _reference(
    arrays: dict[str, np.ndarray], names: list[str], request_id: str
) -> bytes:
    response = oip.ModelInferResponse(
        model_name="digits", model_version="3", id=request_id
    )
    for name in names:
        array = arrays[name]
        response.outputs.add(
            name=name, datatype=datatype_of(array.dtype), shape=list(array.shape)
        )
        response.raw_output_contents.append(encode_raw(array))
    encoded: bytes = response.SerializeToString()
    return encoded


def _encode(
    encoder: ResponseEncoder,
    owner: object,
    arrays: dict[str, np.ndarray],
    names: list[str],
    request_id: str = "req-7",
) -> bytes:
    return encoder.encode(
        owner,
        arrays,
        names,
        model_name="digits",
        model_version="3",
        request_id=request_id,
    )


@pytest.mark.parametrize("rows", [1, 5, 200])
@pytest.mark.parametrize("request_id", ["req-7", "", "é" * 70])
def test_bytes_equal_protobuf_serialisation(rows: int, request_id: str) -> None:
    encoder = ResponseEncoder()
    owner = _Owner()
    arrays = _arrays(rows)
    names = list(arrays)

    encoded = _encode(encoder, owner, arrays, names, request_id)

    assert encoded == _reference(arrays, names, request_id)
    parsed = oip.ModelInferResponse.FromString(encoded)
    assert parsed.id == request_id
    assert list(parsed.outputs[0].shape) == [rows, 10]
    np.testing.assert_array_equal(
        np.frombuffer(parsed.raw_output_contents[0], dtype=np.float32).reshape(
            rows, 10
        ),
        arrays["logits"],
    )


def test_the_cached_layout_serves_later_requests_of_other_sizes() -> None:
    encoder = ResponseEncoder()
    owner = _Owner()
    names = ["label", "logits"]

    for rows, seed in [(1, 1), (3, 2), (1, 3), (64, 4)]:
        arrays = _arrays(rows, seed)
        assert _encode(encoder, owner, arrays, names) == _reference(
            arrays, names, "req-7"
        )


def test_strided_slices_are_encoded_by_value() -> None:
    encoder = ResponseEncoder()
    base = _arrays(6)
    every_other = {name: array[::2] for name, array in base.items()}

    encoded = _encode(encoder, _Owner(), every_other, list(every_other))

    assert encoded == _reference(every_other, list(every_other), "req-7")


def test_arrays_that_break_the_layout_are_built_field_by_field() -> None:
    encoder = ResponseEncoder()
    owner = _Owner()
    names = ["logits", "embedding"]
    _encode(encoder, owner, _arrays(2), names)

    changed = _arrays(2)
    changed["embedding"] = np.zeros((2, 4), dtype=np.float64)  # other inner shape

    assert _encode(encoder, owner, changed, names) == _reference(
        changed, names, "req-7"
    )


def test_bytes_outputs_are_length_prefixed() -> None:
    encoder = ResponseEncoder()
    arrays = {"text": np.array(["cat", "dög"], dtype=object)}

    encoded = _encode(encoder, _Owner(), arrays, ["text"])

    parsed = oip.ModelInferResponse.FromString(encoded)
    assert parsed.outputs[0].datatype == "BYTES"
    assert parsed.raw_output_contents[0] == (
        b"\x03\x00\x00\x00cat\x04\x00\x00\x00d\xc3\xb6g"
    )


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**21, 2**35 + 5])
def test_varint_matches_protobuf(value: int) -> None:
    message = oip.ModelInferResponse.InferOutputTensor(shape=[value])
    # Field 3, packed: tag, payload length, the varint itself.
    assert message.SerializeToString()[2:] == varint(value)
