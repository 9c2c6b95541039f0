"""Errors raised by the trainer.

Every error the trainer raises on purpose derives from :class:`TrainerError`, so a
caller (the training service, the CLI) can catch one type and report it::

    TrainerError
    ├── FactoryError   a "module:function" model factory cannot be resolved or called
    ├── WeightsError   a safetensors file is unreadable or does not fit the model
    ├── DataError      labelled data or a round plan is malformed
    ├── ExportError    ONNX export failed, or the ONNX model disagrees with PyTorch
    └── VersionError   a version folder's metadata is missing or malformed

Messages name the offending value with ``!r``, the value expected, and how to fix it.
"""

from __future__ import annotations


class TrainerError(Exception):
    """Base of every error the trainer raises on purpose."""


class FactoryError(TrainerError):
    """A model factory spec cannot be resolved, or calling it did not give a model."""


class WeightsError(TrainerError):
    """A weights file or buffer cannot be read, or its tensors do not fit the model."""


class DataError(TrainerError):
    """Labelled data, a policy name or a round plan is malformed."""


class ExportError(TrainerError):
    """ONNX export, the ONNX checker or the ONNX Runtime parity check failed."""


class VersionError(TrainerError):
    """A version folder's ``metadata.json`` is missing, unreadable or malformed."""
