"""A trained network packed as a version, and handed to the server.

:func:`pack_version` exports the network to ONNX, checks ONNX Runtime against PyTorch
(:func:`~activeserve.trainer.versioning.write_version_payload` does both, and writes
the weights and metadata), and reads the files back as bytes. The probe the server
checks the upload with is a few real inputs and ONNX Runtime's own logits for them
from the exported file, so the server compares like with like: the same graph on the
same runtime, where only the machine may differ.

:func:`publish_version` uploads the package with ``Client.publish``; the server loads
it, runs the probe, writes the version atomically and swaps it in.

Limit: a network whose tensors exceed the exporter's inline limit (about 1.8 GB) is
exported with an external data file, which ``Publish`` cannot carry; packing it raises
:class:`ExportError`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from torch import nn

from activeserve.client import Client
from activeserve.trainer.errors import ExportError
from activeserve.trainer.export import DEFAULT_PARITY_ATOL, INPUT_NAME, OUTPUT_NAME
from activeserve.trainer.versioning import (
    METADATA_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    VersionMetadata,
    write_version_payload,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionPackage:
    """A version ready to publish.

    ``onnx`` and ``weights`` are the files' bytes; ``metadata`` the JSON object of
    ``metadata.json`` as written (export figures filled in); ``probe_input`` ``[n,
    *S]`` float32 and ``probe_expected`` ``[n, K]`` float32, ONNX Runtime's logits of
    the exported graph on it.
    """

    onnx: bytes
    weights: bytes
    metadata: Mapping[str, Any]
    probe_input: np.ndarray
    probe_expected: np.ndarray


def pack_version(
    network: nn.Module,
    probe: np.ndarray,
    metadata: VersionMetadata,
    *,
    parity_atol: float = DEFAULT_PARITY_ATOL,
) -> VersionPackage:
    """Export ``network`` and pack it with ``metadata``, probed on ``probe [n, *S]``.

    ``probe`` also fixes the graph's input shape (its first axis stays dynamic).
    Raises :class:`ExportError` when export or the parity check fails, or the graph
    would need an external data file.
    """
    probe = np.ascontiguousarray(probe, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="activeserve-version-") as folder:
        directory = Path(folder)
        written = write_version_payload(
            directory, network, probe, metadata, parity_atol=parity_atol
        )
        if any(path.name.startswith(f"{MODEL_FILE}.") for path in directory.iterdir()):
            raise ExportError(
                f"the exported graph of {type(network).__name__} keeps its weights in "
                "an external data file, which publishing cannot carry; models above "
                "about 1.8 GB cannot be published"
            )

        onnx_bytes = (directory / MODEL_FILE).read_bytes()
        weights = (directory / WEIGHTS_FILE).read_bytes()
        metadata_json = json.loads((directory / METADATA_FILE).read_text("utf-8"))
        expected = _runtime_logits(directory / MODEL_FILE, probe)

    logger.debug(
        "packed a version: %s bytes of ONNX, %s of weights, parity %s",
        len(onnx_bytes),
        len(weights),
        written.parity_max_abs_diff,
    )
    return VersionPackage(
        onnx=onnx_bytes,
        weights=weights,
        metadata=metadata_json,
        probe_input=probe,
        probe_expected=expected,
    )


def _runtime_logits(path: Path, probe: np.ndarray) -> np.ndarray:
    """ONNX Runtime's (CPU) ``[n, K]`` logits of the graph at ``path`` on ``probe``."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run([OUTPUT_NAME], {INPUT_NAME: probe})
    return np.asarray(outputs[0], dtype=np.float32)


@dataclass(frozen=True)
class Published:
    """What the server answered: the new version and the probe's largest difference."""

    version: int
    probe_max_abs_diff: float


def publish_version(
    client: Client,
    model_name: str,
    package: VersionPackage,
    *,
    parent_version: int,
    probe_atol: float,
) -> Published:
    """Upload ``package`` as the next version of ``model_name``.

    ``parent_version`` is the version it was trained from; the server may refuse the
    upload (the SDK's ``Conflict``) when that is no longer the served version.
    ``probe_atol`` is the largest absolute logit difference the server accepts
    between its own run of the probe and ``package.probe_expected``.
    """
    result = client.publish(
        model_name,
        onnx=package.onnx,
        weights=package.weights,
        metadata=dict(package.metadata),
        parent_version=parent_version,
        probe_input=package.probe_input,
        probe_expected=package.probe_expected,
        probe_atol=probe_atol,
    )
    return Published(
        version=int(result.version),
        probe_max_abs_diff=float(result.probe_max_abs_diff),
    )
