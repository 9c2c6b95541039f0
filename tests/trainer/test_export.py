from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from activeserve.trainer.errors import ExportError
from activeserve.trainer.export import (
    BATCH_AXIS,
    INPUT_NAME,
    ONNX_OPSET,
    OUTPUT_NAME,
    check_parity,
    export_onnx,
)
from activeserve.trainer.models import mlp, resnet18_like, small_cnn


def _images(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, 1, 8, 8), dtype=np.float32)


@pytest.fixture(scope="module")
def exported_cnn(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, torch.nn.Module]:
    """A randomly initialised small CNN and its export from a batch of 2."""
    torch.manual_seed(0)
    model = small_cnn()
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(model, _images(2), path)
    return path, model


def test_the_export_is_one_self_contained_file(
    exported_cnn: tuple[Path, torch.nn.Module],
) -> None:
    path, _ = exported_cnn

    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def test_the_graph_names_its_input_output_batch_axis_and_opset(
    exported_cnn: tuple[Path, torch.nn.Module],
) -> None:
    graph_model = onnx.load(str(exported_cnn[0]))
    (graph_input,) = graph_model.graph.input
    (graph_output,) = graph_model.graph.output
    input_dims = graph_input.type.tensor_type.shape.dim
    output_dims = graph_output.type.tensor_type.shape.dim

    assert (graph_input.name, graph_output.name) == (INPUT_NAME, OUTPUT_NAME)
    assert [d.dim_param or d.dim_value for d in input_dims] == [BATCH_AXIS, 1, 8, 8]
    assert [d.dim_param or d.dim_value for d in output_dims] == [BATCH_AXIS, 10]
    assert {o.domain: o.version for o in graph_model.opset_import}[""] == ONNX_OPSET


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_runtime_runs_any_batch_size(
    exported_cnn: tuple[Path, torch.nn.Module], batch: int
) -> None:
    session = ort.InferenceSession(
        str(exported_cnn[0]), providers=["CPUExecutionProvider"]
    )

    (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: _images(batch)})

    assert logits.shape == (batch, 10)


def test_onnx_runtime_agrees_with_pytorch_within_tolerance(
    exported_cnn: tuple[Path, torch.nn.Module],
) -> None:
    path, model = exported_cnn

    assert check_parity(model, path, _images(7, seed=1), atol=1e-4) < 1e-4


def test_a_model_changed_after_export_fails_the_parity_check(
    exported_cnn: tuple[Path, torch.nn.Module],
) -> None:
    path, _ = exported_cnn
    torch.manual_seed(1)
    other = small_cnn()

    with pytest.raises(ExportError, match="max abs logit difference"):
        check_parity(other, path, _images(3))


def test_a_tabular_model_in_training_mode_exports_and_stays_in_it(
    tmp_path: Path,
) -> None:
    model = mlp(in_features=5, num_classes=3).train()
    path = tmp_path / "mlp.onnx"
    rows = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)

    export_onnx(model, rows[:1], path)

    assert check_parity(model, path, rows) < 1e-4
    assert model.training


def test_an_example_without_a_batch_axis_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"example must be a batch \[n, \*S\]"):
        export_onnx(mlp(5, 3), np.zeros(5, dtype=np.float32), tmp_path / "m.onnx")


def test_an_example_of_the_wrong_shape_fails_the_export(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"torch.onnx.export failed for Sequential"):
        export_onnx(mlp(5, 3), np.zeros((2, 4), dtype=np.float32), tmp_path / "m.onnx")


@pytest.mark.slow
def test_the_benchmark_resnet_exports_self_contained_with_a_dynamic_batch(
    tmp_path: Path,
) -> None:
    model = resnet18_like()
    path = tmp_path / "model.onnx"
    probe = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)

    export_onnx(model, probe[:1], path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert check_parity(model, path, probe) < 1e-4
