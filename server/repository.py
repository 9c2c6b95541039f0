"""The model repository on disk.

    REPO/<model>/config.toml        what the graph does not say (optional)
    REPO/<model>/<n>/model.onnx     version n; the highest n is served by default
    REPO/<model>/<n>/weights.safetensors, metadata.json   written by the trainer

Only the server writes the repository, and a version appears by an atomic rename of a
complete folder, so a folder with a number for a name is always whole. A person may
still drop a version folder in by hand; the server picks it up on its next poll.
Folders whose name is not a number (such as the server's staging folders) are ignored.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activeserve.core.config import ModelConfig, load_model_config
from activeserve.server.errors import ModelNotFound

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "weights.safetensors"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ModelRepository:
    """Read access to a repository folder."""

    root: Path

    def models(self) -> list[str]:
        """Names of the model folders, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            path.name
            for path in self.root.iterdir()
            if path.is_dir() and _MODEL_NAME.match(path.name)
        )

    def versions(self, model: str) -> list[int]:
        """Version numbers of `model` that hold a model file, ascending."""
        folder = self.model_dir(model)
        return sorted(
            int(path.name)
            for path in folder.iterdir()
            if path.is_dir() and path.name.isdigit() and (path / MODEL_FILE).is_file()
        )

    def latest(self, model: str) -> int:
        versions = self.versions(model)
        if not versions:
            raise ModelNotFound(
                f"model {model!r} has no version folder with a {MODEL_FILE} under "
                f"{self.model_dir(model)}; expected e.g. {self.model_dir(model) / '1'}"
            )
        return versions[-1]

    def model_dir(self, model: str) -> Path:
        folder = self.root / model
        if not _MODEL_NAME.match(model) or not folder.is_dir():
            raise ModelNotFound(
                f"no model {model!r} in repository {str(self.root)!r}; "
                f"models there: {self.models()!r}"
            )
        return folder

    def version_dir(self, model: str, version: int) -> Path:
        folder = self.model_dir(model) / str(version)
        if not (folder / MODEL_FILE).is_file():
            raise ModelNotFound(
                f"model {model!r} has no version {version}; versions: "
                f"{self.versions(model)!r}"
            )
        return folder

    def metadata(self, model: str, version: int) -> dict[str, Any]:
        """A version's metadata.json; empty for a version dropped in without one."""
        path = self.version_dir(model, version) / METADATA_FILE
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            logger.warning(
                "model %s version %d: unreadable %s: %s",
                model,
                version,
                METADATA_FILE,
                error,
            )
            return {}
        return data if isinstance(data, dict) else {}

    def config(self, model: str) -> ModelConfig:
        """The model's config.toml, or the documented defaults where it has none."""
        return load_model_config(self.model_dir(model) / CONFIG_FILE)
