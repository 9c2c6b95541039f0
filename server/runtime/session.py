"""One ONNX Runtime session, with the signature the server needs to validate requests.

The execution provider is chosen from the model's `[runtime] device`; the one reported
is what `session.get_providers()` says after the session is made, because
onnxruntime-gpu lists CUDA as available even on a machine with no GPU and then
silently runs on the CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from activeserve.core.config import RuntimeConfig
from activeserve.server.errors import ModelLoadError

logger = logging.getLogger(__name__)

# ONNX Runtime's tensor type names -> Open Inference Protocol datatypes.
_ORT_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, datatype and shape of a graph input or output; -1 = a free dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


def providers_for(device: str) -> list[str]:
    """Execution providers to ask for, best first, for a `[runtime] device` value."""
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ModelLoadError(
                "device 'cuda' was asked for but this onnxruntime has no CUDA provider "
                f"(available: {available!r}); install onnxruntime-gpu or set "
                "[runtime] device = 'auto'"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxSession:
    """A loaded ONNX graph. `run` is thread-safe, as ONNX Runtime's `run` is."""

    def __init__(self, path: Path, config: RuntimeConfig) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.intra_op_threads
        options.inter_op_num_threads = config.inter_op_threads
        options.log_severity_level = 3
        spinning = "1" if config.allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        options.add_session_config_entry("session.inter_op.allow_spinning", spinning)

        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=providers_for(config.device)
            )
        except ModelLoadError:
            raise
        except Exception as error:
            raise ModelLoadError(
                f"ONNX Runtime cannot load {str(path)!r}: {error}"
            ) from error

        self.path = path
        # As asked for: 0 is ONNX Runtime's own default, one thread per core.
        self.intra_op_threads = config.intra_op_threads
        self.provider: str = self._session.get_providers()[0]
        self.inputs = tuple(_spec(arg) for arg in self._session.get_inputs())
        self.outputs = tuple(_spec(arg) for arg in self._session.get_outputs())
        self._output_names = [spec.name for spec in self.outputs]
        self._run = _direct_run(self._session, self.provider)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in graph order for the given named inputs."""
        if self._run is not None:
            outputs: list[Any] = self._run(self._output_names, feeds, None)
        else:
            outputs = self._session.run(self._output_names, feeds)
        return [np.asarray(output) for output in outputs]


def _direct_run(session: ort.InferenceSession, provider: str) -> Any:
    """The binding's own `run`, or None to use the public one.

    `InferenceSession.run` checks the feed names in Python (about 16 us a call on
    the benchmark machine, a third of a small model's run) and retries on the CPU
    when a device provider fails. The server has checked the feeds already, and a
    CPU session has nothing to fall back to, so CPU sessions call the binding
    directly; should a release of ONNX Runtime no longer have it, the public call
    serves.
    """
    if provider != "CPUExecutionProvider":
        return None
    binding = getattr(session, "_sess", None)
    return getattr(binding, "run", None)


def _spec(arg: Any) -> TensorSpec:
    datatype = _ORT_TYPES.get(arg.type)
    if datatype is None:
        raise ModelLoadError(
            f"graph tensor {arg.name!r} has type {arg.type!r}, which activeserve does "
            f"not serve; supported: {sorted(_ORT_TYPES)!r}"
        )
    shape = tuple(dim if isinstance(dim, int) else -1 for dim in arg.shape)
    return TensorSpec(name=arg.name, datatype=datatype, shape=shape)
