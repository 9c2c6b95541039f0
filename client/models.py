"""Typed values the SDK returns for model versions: listing, fetching, publishing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VersionInfo:
    """One version of a model: its number, whether it serves, its metadata.json."""

    version: int
    serving: bool
    metadata: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ModelVersions:
    """Every version of `model`, ascending; `serving` is the one served (0: none)."""

    model: str
    serving: int
    versions: tuple[VersionInfo, ...]


@dataclass(frozen=True)
class FetchedVersion:
    """The files of one version, by name: "model.onnx", "metadata.json",
    "weights.safetensors" where the version has them, and the model's "config.toml"
    where it has one. `metadata` is metadata.json parsed ({} without one)."""

    model: str
    version: int
    files: dict[str, bytes] = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class PublishResult:
    """The version number the server gave a published version, and how far its probe
    outputs were from the expected ones."""

    model: str
    version: int
    probe_max_abs_diff: float
