"""``activeserve init``: a new model in a repository, before the server starts.

:func:`init_model` writes ``REPO/<name>/config.toml`` and version 1 (``model.onnx``,
``weights.safetensors``, ``metadata.json``) from a PyTorch model. The whole model
folder is built beside its final place, under a name the server ignores (it starts
with a dot), and renamed into place when complete, so a server polling the repository
never sees half of it. With ``force``, an existing model folder is replaced the same
way, and its old versions are deleted.

The config written holds every key of every table, the defaults included, so that a
user sees each setting in force and can edit it; ``docs/config.md`` explains them.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from activeserve.core.config import ModelConfig
from activeserve.trainer.errors import DataError, TrainerError
from activeserve.trainer.toml_text import render_toml
from activeserve.trainer.versioning import VersionMetadata, write_version_payload

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
FIRST_VERSION = 1

# The server serves only folders whose name matches this (see the repository doc).
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

_HEADER = (
    "Model configuration written by `activeserve init`.\n"
    "Every key is shown with the value in force; docs/config.md explains each one."
)


def init_model(
    repo: Path,
    name: str,
    model: nn.Module,
    example_input: np.ndarray,
    labels: Sequence[str],
    factory: str,
    factory_kwargs: Mapping[str, Any],
    config_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Create model ``name`` in repository ``repo`` with ``model`` as version 1.

    ``example_input`` is a float batch ``[n, *S]`` of typical inputs: it fixes the
    ONNX graph's input shape and is the parity probe. ``labels`` names the classes in
    output order (empty: classes known by index only); ``factory`` and
    ``factory_kwargs`` must rebuild ``model``'s architecture, since the trainer loads
    the weights into what they build. ``config_overrides`` holds tables in the TOML
    layout (``{"training": {"epochs": 5}}``) merged over those; a key set both there
    and by an argument must agree. ``metadata`` adds keys to version 1's
    metadata.json (``metrics``, ``labels_used``...).

    Returns the model folder. Raises :class:`TrainerError` when the folder exists
    (unless ``force``), the name is not one the server serves, the labels do not match
    the model's outputs, or the config is invalid (``ConfigError``, from core).
    """
    _check_name(name)
    target = repo / name
    if target.exists() and not force:
        raise TrainerError(
            f"model folder {str(target)!r} exists already; choose another name, or "
            "pass --force (force=True) to replace it and delete its versions"
        )
    example = np.asarray(example_input, dtype=np.float32)
    _check_labels(model, example, labels)

    config = _config(labels, factory, factory_kwargs, config_overrides or {})
    version_metadata = VersionMetadata.from_dict(
        {
            **dict(metadata or {}),
            "parent_version": None,
            "factory": factory,
            "factory_kwargs": dict(factory_kwargs),
        }
    )

    repo.mkdir(parents=True, exist_ok=True)
    staging = _fresh_folder(repo, f".{name}.init")
    try:
        text = render_toml(config.to_dict(), header=_HEADER)
        (staging / CONFIG_FILE).write_text(text, encoding="utf-8")
        write_version_payload(
            staging / str(FIRST_VERSION), model, example, version_metadata
        )
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    logger.info(
        "model %s: created %s with version %s (%s, %s classes)",
        name,
        target,
        FIRST_VERSION,
        factory,
        len(labels) or "unnamed",
    )
    return target


def _check_name(name: str) -> None:
    if not _MODEL_NAME.match(name):
        raise TrainerError(
            f"model name {name!r} is not one the server serves; expected letters, "
            "digits, '_', '.' or '-', starting with a letter or digit, at most 128"
        )


def _check_labels(model: nn.Module, example: np.ndarray, labels: Sequence[str]) -> None:
    if example.ndim < 2 or example.shape[0] < 1:
        raise DataError(
            f"example_input must be a batch [n, *S] with n >= 1, got shape "
            f"{example.shape!r}"
        )
    if not labels:
        return

    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    try:
        with torch.inference_mode():
            outputs = model.eval()(torch.from_numpy(example[:1]).to(device))
    finally:
        model.train(was_training)
    classes = int(outputs.shape[-1])
    if classes != len(labels):
        raise DataError(
            f"{len(labels)!r} labels {list(labels)!r} given for a model with "
            f"{classes!r} outputs; give one label per output class, or none"
        )


def _config(
    labels: Sequence[str],
    factory: str,
    factory_kwargs: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, Any]],
) -> ModelConfig:
    """The model config: ``overrides`` with labels and factory filled in."""
    given: dict[tuple[str, str], Any] = {
        ("training", "factory"): factory,
        ("training", "factory_kwargs"): dict(factory_kwargs),
    }
    if labels:
        given["model", "labels"] = list(labels)

    document: dict[str, dict[str, Any]] = {
        table: dict(keys) for table, keys in overrides.items()
    }
    for (table, key), value in given.items():
        keys = document.setdefault(table, {})
        if key in keys and _plain(keys[key]) != _plain(value):
            raise TrainerError(
                f"the config sets [{table}] {key} = {keys[key]!r}, but {value!r} was "
                "given as an argument; give it in one place, or the same value in both"
            )
        keys[key] = value
    return ModelConfig.from_dict(document, source="the new model's config")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the complete ``staging`` folder to ``target``, replacing an old one."""
    if not target.exists():
        staging.rename(target)
        return

    # Two renames, not an in-place rewrite: the model is whole at every moment, old
    # or new, though for an instant it is absent.
    retired = _fresh_folder(target.parent, f".{target.name}.old")
    target.rename(retired / target.name)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
    logger.info("replaced the existing model folder %s", target)


def _fresh_folder(parent: Path, prefix: str) -> Path:
    """A new, empty folder in ``parent`` that the server ignores (a leading dot).

    Made with ``mkdir`` rather than ``tempfile.mkdtemp``, whose mode 0700 the folder
    would keep after the rename, hiding the model from a server run as another user.
    """
    folder = parent / f"{prefix}-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    return folder


def example_batch(
    input_shape: Sequence[int], rows: int = 4, seed: int = 0
) -> np.ndarray:
    """A float32 batch ``[rows, *input_shape]`` of standard normal values.

    For ``activeserve init`` without real inputs: enough to fix the graph's shape
    and to compare ONNX Runtime with PyTorch on values that are not all alike.
    """
    if not input_shape or any(d < 1 for d in input_shape):
        raise DataError(
            f"input shape {tuple(input_shape)!r} is not a shape of positive sizes; "
            "give the shape of one input without the batch axis, e.g. 1,8,8"
        )
    generator = np.random.default_rng(seed)
    return generator.standard_normal((rows, *input_shape)).astype(np.float32)
