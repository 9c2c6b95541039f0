from __future__ import annotations

import numpy as np
import pytest

from activeserve.server.queue import InvalidSample, NewSample, content_hash


def _sample(**changes: object) -> NewSample:
    fields: dict[str, object] = {
        "model_name": "digits",
        "model_version": "1",
        "input_bytes": bytes(16),
        "datatype": "FP32",
        "shape": (2, 2),
        "probabilities": (0.2, 0.8),
        "scores": {"score": 1.0},
        "priority": 1.0,
        "predicted_label": 1,
    }
    fields.update(changes)
    return NewSample(**fields)  # type: ignore[arg-type]


def test_same_bytes_with_another_shape_or_datatype_is_another_input() -> None:
    data = bytes(16)

    assert content_hash("FP32", (2, 2), data) != content_hash("FP32", (4,), data)
    assert content_hash("FP32", (4,), data) != content_hash("UINT8", (16,), data)
    assert content_hash("FP32", (4,), data) == _sample(shape=(4,)).content_hash


def test_probabilities_are_stored_as_float32_from_any_sequence() -> None:
    sample = _sample(probabilities=np.array([0.1, 0.9], dtype=np.float64))

    assert isinstance(sample.probabilities, tuple)
    assert sample.probabilities == (float(np.float32(0.1)), float(np.float32(0.9)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_bytes": bytes(15)}, r"holds 15 bytes but a FP32 tensor of shape"),
        ({"datatype": "FLOAT"}, r"datatype 'FLOAT' is not an Open Inference"),
        ({"shape": (-1, 4)}, r"shape \(-1, 4\) has a negative dimension"),
        ({"probabilities": ()}, r"must be a non-empty vector"),
        ({"priority": float("nan")}, r"priority nan must be a finite number"),
        ({"predicted_label": 2}, r"predicted_label 2 is not a class index"),
        ({"model_name": ""}, r"model_name is empty"),
    ],
)
def test_inconsistent_samples_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidSample, match=message):
        _sample(**changes)


def test_bytes_inputs_have_no_length_check() -> None:
    sample = _sample(datatype="BYTES", shape=(1,), input_bytes=b"\x03\x00\x00\x00abc")

    assert sample.datatype == "BYTES"
