"""Model weights as safetensors, never pickle.

A version folder keeps the weights the trainer continues from next round beside its
``model.onnx``. They are stored as safetensors because loading a pickle executes code
from the file; a safetensors file holds named tensors and nothing else. What is saved is
the model's ``state_dict()``: parameters and buffers (BatchNorm statistics included).

Loading checks every name and shape against the model first and reports all mismatches
in one :class:`WeightsError`, rather than the first one PyTorch meets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import load_file, save, save_file
from torch import nn

from activeserve.trainer.errors import WeightsError

logger = logging.getLogger(__name__)


def _tensors_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as contiguous CPU tensors that own their memory.

    Cloning breaks storage shared between entries (tied weights), which safetensors
    refuses to write.
    """
    return {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in model.state_dict().items()
    }


def _apply(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str, strict: bool
) -> None:
    """Check ``tensors`` against the model's state and load them into it."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{name}: file {tuple(tensors[name].shape)!r}, "
        f"model {tuple(expected[name].shape)!r}"
        for name in sorted(set(tensors) & set(expected))
        if tensors[name].shape != expected[name].shape
    ]

    problems: list[str] = []
    if mismatched:
        problems.append(f"shape mismatches: {mismatched!r}")
    if strict and missing:
        problems.append(f"missing from the weights: {missing!r}")
    if strict and unexpected:
        problems.append(f"not in the model: {unexpected!r}")
    if problems:
        raise WeightsError(
            f"weights from {source} do not fit the {type(model).__name__} model: "
            + "; ".join(problems)
            + "; build the model with the factory and arguments the weights were "
            "trained with"
        )

    model.load_state_dict(dict(tensors), strict=False)
    logger.debug(
        "loaded %s tensors from %s (%s missing, %s ignored)",
        len(tensors),
        source,
        len(missing),
        len(unexpected),
    )


def save_weights(
    model: nn.Module, path: Path, metadata: Mapping[str, str] | None = None
) -> None:
    """Write the model's ``state_dict()`` to ``path`` as safetensors.

    ``metadata`` is stored in the file's header as strings.
    """
    save_file(_tensors_of(model), str(path), metadata=dict(metadata or {}))
    logger.debug("saved weights to %s", path)


def load_weights(model: nn.Module, path: Path, strict: bool = True) -> None:
    """Load safetensors weights from ``path`` into ``model`` in place.

    With ``strict`` every tensor of the model must be in the file and every tensor of
    the file in the model; without it, missing and extra names are tolerated. A shape
    mismatch, an unreadable or absent file is a :class:`WeightsError` either way.
    """
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise WeightsError(
            f"cannot read weights file {str(path)!r}: {exc}; expected a safetensors "
            "file written by save_weights"
        ) from exc
    _apply(model, tensors, repr(str(path)), strict)


def weights_to_bytes(model: nn.Module) -> bytes:
    """The model's ``state_dict()`` serialised as one safetensors buffer."""
    return save(_tensors_of(model))


def weights_from_bytes(model: nn.Module, data: bytes, strict: bool = True) -> None:
    """Load a safetensors buffer from :func:`weights_to_bytes` into ``model``.

    Same checks as :func:`load_weights`.
    """
    try:
        tensors = load_bytes(data)
    except SafetensorError as exc:
        raise WeightsError(
            f"cannot parse a safetensors buffer of {len(data)!r} bytes: {exc}; "
            "expected bytes from weights_to_bytes"
        ) from exc
    _apply(model, tensors, "a safetensors buffer", strict)
