"""The payload of a model version folder, written locally.

A version folder ``REPO/<model>/<n>/`` holds three files:

``model.onnx``
    the graph the server runs (see :mod:`activeserve.trainer.export`);
``weights.safetensors``
    the PyTorch weights the next round continues from (see
    :mod:`activeserve.trainer.weights`);
``metadata.json``
    where the version came from: parent version, labels used, metrics, creation time,
    model factory and input shape (:class:`VersionMetadata`).

:func:`write_version_payload` fills a folder it is given, for ``activeserve init`` and
for the trainer before it publishes. It does not make the version appear atomically:
the server owns the repository and moves a complete folder into place by rename.
``metadata.json`` is written last, so a folder that has it is complete.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from activeserve.trainer.errors import VersionError
from activeserve.trainer.export import (
    DEFAULT_PARITY_ATOL,
    ONNX_OPSET,
    check_parity,
    export_onnx,
)
from activeserve.trainer.weights import save_weights

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "weights.safetensors"
METADATA_FILE = "metadata.json"

#: Version of the metadata.json layout, so that a reader can tell old files apart.
METADATA_FORMAT = 1


def utc_now_iso() -> str:
    """The current UTC time in ISO 8601 with an explicit offset, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class VersionMetadata:
    """What ``metadata.json`` of a version says.

    ``parent_version`` is the version this one was fine-tuned from (None for a first
    version); ``labels_used`` the number of labelled candidates trained on so far;
    ``metrics`` named figures such as ``{"val_accuracy": 0.97}``; ``created_at`` an ISO
    8601 time; ``factory`` and ``factory_kwargs`` how to rebuild the network for the
    weights; ``input_shape`` the shape ``S`` of one candidate (the model's input is
    ``[batch, *S]``); ``onnx_opset`` and ``parity_max_abs_diff`` come from the export.
    ``extra`` keeps any other keys, so files written by hand or by a newer trainer
    survive a read and a rewrite.
    """

    parent_version: int | None = None
    labels_used: int = 0
    metrics: Mapping[str, float] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now_iso)
    factory: str | None = None
    factory_kwargs: Mapping[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    onnx_opset: int = ONNX_OPSET
    parity_max_abs_diff: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields, ``extra`` merged in, and ``format``."""
        data = asdict(self)
        extra = data.pop("extra")
        data["input_shape"] = list(self.input_shape)
        return {"format": METADATA_FORMAT, **extra, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VersionMetadata:
        """Build from a dict like :meth:`to_dict`'s; unknown keys go to ``extra``.

        Missing keys take their defaults (``created_at``: now). Raises
        :class:`VersionError` when a known key has a value of the wrong kind.
        """
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {key: value for key, value in data.items() if key in known}
        extra = {
            key: value
            for key, value in data.items()
            if key not in known and key not in ("format", "extra")
        }
        extra.update(data.get("extra", {}))

        try:
            metadata = cls(**values, extra=extra)
            metadata = replace(
                metadata,
                input_shape=tuple(int(d) for d in metadata.input_shape),
                metrics={str(k): float(v) for k, v in metadata.metrics.items()},
                factory_kwargs=dict(metadata.factory_kwargs),
                labels_used=int(metadata.labels_used),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise VersionError(
                f"version metadata {dict(data)!r} is malformed: {exc}; expected the "
                "keys of VersionMetadata with JSON values of their types"
            ) from exc
        return metadata


def write_metadata(path: Path, metadata: VersionMetadata) -> None:
    """Write ``metadata`` to ``path`` as indented JSON.

    Raises :class:`VersionError` when ``metrics``, ``factory_kwargs`` or ``extra``
    hold a value JSON cannot represent.
    """
    try:
        text = json.dumps(metadata.to_dict(), indent=2, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise VersionError(
            f"version metadata cannot be written as JSON: {exc}; keep metrics, "
            "factory_kwargs and extra to numbers, strings, lists and dicts"
        ) from exc
    path.write_text(text + "\n", encoding="utf-8")


def read_metadata(path: Path) -> VersionMetadata:
    """Read ``metadata.json``; a missing or malformed file raises VersionError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VersionError(
            f"cannot read version metadata {str(path)!r}: {exc}; expected a JSON "
            "object written by write_metadata"
        ) from exc
    if not isinstance(data, dict):
        raise VersionError(
            f"version metadata {str(path)!r} holds a {type(data).__name__}, expected "
            "a JSON object"
        )
    return VersionMetadata.from_dict(data)


def write_version_payload(
    directory: Path,
    model: nn.Module,
    example: np.ndarray,
    metadata: VersionMetadata | Mapping[str, Any],
    *,
    parity_atol: float = DEFAULT_PARITY_ATOL,
) -> VersionMetadata:
    """Fill ``directory`` with model.onnx, weights.safetensors and metadata.json.

    ``example`` is a float batch ``[n, *S]`` of real or typical inputs: it fixes the
    graph's shape and serves as the parity probe. ``metadata`` is a
    :class:`VersionMetadata` or a dict of its keys; ``input_shape`` (when empty),
    ``onnx_opset`` and ``parity_max_abs_diff`` are filled in here. The directory is
    created if needed; files of the same names in it are replaced. Returns the metadata
    as written. Raises :class:`~activeserve.trainer.errors.ExportError` when export or
    parity fails, in which case no ``metadata.json`` is written.
    """
    if not isinstance(metadata, VersionMetadata):
        metadata = VersionMetadata.from_dict(metadata)
    directory.mkdir(parents=True, exist_ok=True)

    model_path = directory / MODEL_FILE
    export_onnx(model, example, model_path)
    max_diff = check_parity(model, model_path, example, atol=parity_atol)

    save_weights(model, directory / WEIGHTS_FILE)

    metadata = replace(
        metadata,
        input_shape=metadata.input_shape or tuple(int(d) for d in example.shape[1:]),
        onnx_opset=ONNX_OPSET,
        parity_max_abs_diff=max_diff,
    )
    write_metadata(directory / METADATA_FILE, metadata)

    logger.info(
        "wrote version payload to %s (parent %s, %s labels)",
        directory,
        metadata.parent_version,
        metadata.labels_used,
    )
    return metadata
