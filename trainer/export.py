"""ONNX export of a trained model, and the checks that it matches PyTorch.

:func:`export_onnx` uses PyTorch's default exporter (``torch.onnx.export(...,
dynamo=True)``, built on ``torch.export`` and onnxscript) and writes a graph with:

- one input named ``"input"``, float32 ``[batch, *S]``, and one output named
  ``"logits"``, ``[batch, K]``, where ``batch`` is a symbolic (dynamic) axis, so the
  server's dynamic batcher can send any batch size;
- opset :data:`ONNX_OPSET` (18, the opset the exporter's torchlib is written for;
  ONNX Runtime 1.17 and later run it);
- the weights inside the one ``.onnx`` file. Protobuf caps a file at 2 GiB, so a model
  whose tensors exceed :data:`MAX_INLINE_BYTES` is written with its weights in an
  external data file beside it (``<name>.onnx.data``), which must then travel with it.

The file is then passed through ``onnx.checker.check_model``. :func:`check_parity` runs
it in ONNX Runtime on the CPU and compares with PyTorch.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from activeserve.trainer.errors import ExportError

logger = logging.getLogger(__name__)

#: The ONNX opset of exported models.
ONNX_OPSET = 18

#: Name of the graph's input and output, as the model config and the server expect.
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

#: Name given to the dynamic batch axis in the graph.
BATCH_AXIS = "batch"

#: Tensors above this many bytes go to an external data file (protobuf's 2 GiB cap,
#: with room for the graph itself).
MAX_INLINE_BYTES = 1_800_000_000

#: Default tolerance of :func:`check_parity`, absolute, on logits.
DEFAULT_PARITY_ATOL = 1e-4


def _tensor_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def export_onnx(model: nn.Module, example: np.ndarray, path: Path) -> None:
    """Export ``model`` to ONNX at ``path``, with a dynamic batch axis, and check it.

    ``example`` is a float batch ``[n, *S]`` (any ``n >= 1``) that fixes every axis but
    the first. The model is exported from a CPU copy in eval mode, so the caller's
    model is left where and as it is. Raises :class:`ExportError` when the exporter or
    the ONNX checker fails, or the graph's batch axis came out fixed.
    """
    if example.ndim < 2 or example.shape[0] < 1:
        raise ExportError(
            f"example must be a batch [n, *S] with n >= 1, got shape {example.shape!r}"
        )

    cpu_model = _cpu_eval_copy(model)
    example_tensor = torch.from_numpy(example.astype(np.float32, copy=False))
    inline = _tensor_bytes(cpu_model) <= MAX_INLINE_BYTES
    if not inline:
        logger.warning(
            "model tensors exceed %s bytes: writing them to %s.data beside the graph",
            MAX_INLINE_BYTES,
            path,
        )

    try:
        # The exporter's internals raise deprecation notices about PyTorch's own
        # APIs, which nobody here can act on; silence them for this call only.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                cpu_model,
                (example_tensor,),
                str(path),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=ONNX_OPSET,
                dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
                external_data=not inline,
                verbose=False,
            )
    except Exception as exc:
        raise ExportError(
            f"torch.onnx.export failed for {type(model).__name__} with example shape "
            f"{example.shape!r}: {exc}"
        ) from exc

    _name_batch_axis(path, inline)
    try:
        # With external data, the checker must be given the path, not the proto.
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the ONNX checker rejects {str(path)!r}: {exc}") from exc

    logger.info(
        "exported %s to %s (opset %s, input %s [%s, %s])",
        type(model).__name__,
        path,
        ONNX_OPSET,
        INPUT_NAME,
        BATCH_AXIS,
        ", ".join(str(d) for d in example.shape[1:]),
    )


def _cpu_eval_copy(model: nn.Module) -> nn.Module:
    """A CPU copy of ``model`` in eval mode, or the model itself if already so."""
    on_cpu = all(t.device.type == "cpu" for t in model.state_dict().values())
    if on_cpu and not model.training:
        return model
    # Copy rather than move, to leave the caller's model where and as it is.
    clone = copy.deepcopy(model).to("cpu")
    return clone.eval()


def _name_batch_axis(path: Path, inline: bool) -> None:
    """Give the graph's batch axis the name ``batch``, and check that it is symbolic.

    The exporter names it after its internal symbol (``s31``); a stable name reads
    better in the server's model metadata.
    """
    graph_model = onnx.load(str(path), load_external_data=False)
    symbol: str | None = None
    for value in [*graph_model.graph.input, *graph_model.graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        if not first.dim_param:
            raise ExportError(
                f"{value.name!r} in {str(path)!r} has a fixed batch axis of "
                f"{first.dim_value!r}; expected a dynamic one (does the model's "
                "forward depend on the batch size?)"
            )
        symbol = symbol or first.dim_param
        if first.dim_param == symbol:
            first.dim_param = BATCH_AXIS

    if inline:
        onnx.save(graph_model, str(path))
    else:
        # The external data file is already written; keep the graph's references.
        onnx.save(graph_model, str(path), save_as_external_data=False)


def check_parity(
    model: nn.Module,
    onnx_path: Path,
    probe: np.ndarray,
    atol: float = DEFAULT_PARITY_ATOL,
) -> float:
    """Compare ONNX Runtime (CPU) with PyTorch on ``probe [n, *S]``; return max diff.

    Runs the probe batch as a whole and its first row alone (batch size 1), so a graph
    that only works at the example's batch size fails here. Returns the largest
    absolute difference between the logits; raises :class:`ExportError` when it is
    above ``atol`` or ONNX Runtime cannot run the file.
    """
    probe = probe.astype(np.float32, copy=False)
    try:
        session = ort.InferenceSession(
            str(onnx_path), providers=["CPUExecutionProvider"]
        )
        onnx_logits = [
            session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
            for batch in (probe, probe[:1])
        ]
    except Exception as exc:
        raise ExportError(
            f"ONNX Runtime cannot run {str(onnx_path)!r} on a probe of shape "
            f"{probe.shape!r}: {exc}"
        ) from exc

    cpu_model = _cpu_eval_copy(model)
    with torch.inference_mode():
        torch_logits = cpu_model(torch.from_numpy(probe)).numpy()

    max_diff = max(
        float(np.max(np.abs(onnx_logits[0] - torch_logits))),
        float(np.max(np.abs(onnx_logits[1] - torch_logits[:1]))),
    )
    if not max_diff <= atol:
        raise ExportError(
            f"ONNX Runtime and PyTorch disagree on {str(onnx_path)!r}: max abs logit "
            f"difference {max_diff!r} exceeds atol {atol!r}"
        )

    logger.info("ONNX parity of %s: max abs diff %.3g", onnx_path, max_diff)
    return max_diff
