"""The two models the serving benchmark runs, their payloads and their ONNX export.

The networks come from the project's own trainer (``activeserve.trainer.models``) and
are exported with its ``export_onnx``, with seeded random weights: serving cost does not
depend on what the weights learned. The export runs in a child process
(``python -m benchmarks.export_models``) so that torch never loads into the process
that generates the load.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

logger = logging.getLogger(__name__)

#: The repository root: the export child runs there, so ``-m benchmarks...`` resolves.
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Timeout of the export child; a ResNet-18 export takes seconds on 2 cores.
EXPORT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark model and how the default run measures it.

    ``input_shape`` is one row without the batch axis, ``(channels, height, width)``;
    the model maps ``[batch, *input_shape]`` float32 to ``[batch, num_classes]``.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    concurrencies: tuple[int, ...]
    warmup_s: float
    duration_s: float


#: The small CNN on 8x8 digits-like inputs: the per-request overhead dominates.
SMALL_CNN = ModelSpec(
    name="small_cnn",
    input_shape=(1, 8, 8),
    num_classes=10,
    concurrencies=(1, 8, 32, 64),
    warmup_s=1.0,
    duration_s=4.0,
)

#: A ResNet-18-sized network on 224x224 RGB: the compute dominates. Fewer, shorter
#: cells keep the whole default run within minutes on 2 cores.
RESNET18 = ModelSpec(
    name="resnet18",
    input_shape=(3, 224, 224),
    num_classes=1000,
    concurrencies=(1, 8, 32),
    warmup_s=2.0,
    duration_s=4.0,
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (SMALL_CNN, RESNET18)}


@dataclass(frozen=True)
class ExportedModel:
    """A model exported to ONNX, with the tensor names every target must use."""

    spec: ModelSpec
    onnx_path: Path
    input_name: str
    output_name: str

    @property
    def output_shape(self) -> tuple[int, int]:
        """The output of a one-row request: ``(1, num_classes)``."""
        return (1, self.spec.num_classes)


def make_payloads(
    spec: ModelSpec, count: int, seed: int
) -> list[npt.NDArray[np.float32]]:
    """``count`` one-row inputs, each shaped ``[1, *spec.input_shape]``, seeded."""
    rng = np.random.default_rng(seed)
    shape = (1, *spec.input_shape)
    return [rng.standard_normal(shape, dtype=np.float32) for _ in range(count)]


def export_models(
    specs: Sequence[ModelSpec], out_dir: Path, seed: int
) -> list[ExportedModel]:
    """Export each model to ``out_dir/<name>.onnx`` in a child process; describe them.

    The tensor names are read back from the ONNX file, so the benchmark follows
    whatever names the trainer's exporter chose. The output named ``logits`` is
    preferred when the model has several.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "benchmarks.export_models",
        "--out",
        str(out_dir),
        "--seed",
        str(seed),
        *(spec.name for spec in specs),
    ]
    logger.info("exporting %s to %s", ", ".join(s.name for s in specs), out_dir)
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT_S,
        check=False,
        cwd=REPO_ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"exporting models failed with exit code {completed.returncode!r}:\n"
            f"{completed.stderr.strip()}\nIs activeserve.trainer installed "
            "(pip install -e '.[trainer]')?"
        )

    return [describe(spec, out_dir / f"{spec.name}.onnx") for spec in specs]


def describe(spec: ModelSpec, onnx_path: Path) -> ExportedModel:
    """Read the input and output names of an exported model."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_names = [tensor.name for tensor in session.get_inputs()]
    output_names = [tensor.name for tensor in session.get_outputs()]
    if len(input_names) != 1:
        raise RuntimeError(
            f"model {spec.name!r} at {str(onnx_path)!r} has inputs {input_names!r}; "
            "the benchmark expects exactly one image input"
        )
    output_name = "logits" if "logits" in output_names else output_names[0]

    return ExportedModel(
        spec=spec,
        onnx_path=onnx_path,
        input_name=input_names[0],
        output_name=output_name,
    )
