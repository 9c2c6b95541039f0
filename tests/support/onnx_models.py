"""Small ONNX graphs built with onnx.helper, for tests that need a real model file
without training one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def linear_classifier(
    path: Path,
    *,
    input_shape: tuple[int, ...] = (1, 8, 8),
    num_classes: int = 10,
    seed: int = 0,
    scale: float = 1.0,
    input_name: str = "input",
    output_name: str = "logits",
    softmax: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Write `Flatten -> MatMul -> Add [-> Softmax]`, batch axis dynamic, to `path`.

    Returns the weights `(W [F, K], b [K])` so tests can compute expected outputs.
    """
    rng = np.random.default_rng(seed)
    features = int(np.prod(input_shape))
    weights = (rng.standard_normal((features, num_classes)) * scale).astype(np.float32)
    bias = (rng.standard_normal(num_classes) * 0.1).astype(np.float32)

    nodes = [
        helper.make_node("Flatten", [input_name], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node(
            "Add", ["mm", "b"], ["logits_raw" if softmax else output_name]
        ),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits_raw"], [output_name], axis=1))

    graph = helper.make_graph(
        nodes,
        "linear_classifier",
        [
            helper.make_tensor_value_info(
                input_name, TensorProto.FLOAT, ["batch", *input_shape]
            )
        ],
        [
            helper.make_tensor_value_info(
                output_name, TensorProto.FLOAT, ["batch", num_classes]
            )
        ],
        initializer=[
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return weights, bias


def expected_logits(
    inputs: np.ndarray, weights: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    flat = inputs.reshape(len(inputs), -1).astype(np.float64)
    return flat @ weights.astype(np.float64) + bias.astype(np.float64)
