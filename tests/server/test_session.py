"""The ONNX Runtime session wrapper: signature, provider, and its direct run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from support.onnx_models import expected_logits, linear_classifier

from activeserve.core.config import RuntimeConfig
from activeserve.server.runtime import session as session_module
from activeserve.server.runtime.session import OnnxSession


@pytest.fixture
def model_path(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    path = tmp_path / "model.onnx"
    weights, bias = linear_classifier(path, seed=5)
    return path, weights, bias


def test_signature_and_provider_are_read_from_the_graph(model_path) -> None:
    path, _, _ = model_path

    session = OnnxSession(path, RuntimeConfig(device="cpu"))

    assert session.provider == "CPUExecutionProvider"
    assert [(s.name, s.datatype, s.shape) for s in session.inputs] == [
        ("input", "FP32", (-1, 1, 8, 8))
    ]
    assert [(s.name, s.datatype, s.shape) for s in session.outputs] == [
        ("logits", "FP32", (-1, 10))
    ]


def test_the_direct_run_equals_onnx_runtimes_public_run(model_path) -> None:
    path, weights, bias = model_path
    session = OnnxSession(path, RuntimeConfig(device="cpu"))
    public = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = np.random.default_rng(2).random((5, 1, 8, 8), dtype=np.float32)

    [direct] = session.run({"input": rows})
    [reference] = public.run(["logits"], {"input": rows})

    assert session._run is not None  # the binding's run is in use on the CPU
    np.testing.assert_array_equal(direct, reference)
    np.testing.assert_allclose(direct, expected_logits(rows, weights, bias), atol=1e-5)


def test_without_the_binding_the_public_run_serves(model_path, monkeypatch) -> None:
    path, weights, bias = model_path
    monkeypatch.setattr(session_module, "_direct_run", lambda session, provider: None)
    session = OnnxSession(path, RuntimeConfig(device="cpu"))
    rows = np.random.default_rng(3).random((2, 1, 8, 8), dtype=np.float32)

    [logits] = session.run({"input": rows})

    np.testing.assert_allclose(logits, expected_logits(rows, weights, bias), atol=1e-5)


def test_device_sessions_keep_the_public_run_and_its_fallback() -> None:
    class _Binding:
        def run(self, *args: object) -> None:
            raise AssertionError("not to be called")

    class _Session:
        _sess = _Binding()

    fake = _Session()
    assert session_module._direct_run(fake, "CUDAExecutionProvider") is None  # type: ignore[arg-type]
    assert session_module._direct_run(fake, "CPUExecutionProvider") is not None  # type: ignore[arg-type]
