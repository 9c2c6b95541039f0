"""The model repository on disk, and the few writes the server makes to it.

    REPO/<model>/config.toml        what the graph does not say (optional)
    REPO/<model>/<n>/model.onnx     version n
    REPO/<model>/<n>/weights.safetensors, metadata.json   written by the trainer
    REPO/<model>/serving.json       the version chosen to serve, when one was chosen
    REPO/<model>/.staging-<id>/     an upload being received (never served)

Which version serves: the one `serving.json` names, unless a version newer than every
version known when it was written has appeared since; otherwise the highest n. The
server writes `serving.json` when a publish, a rollback or a hand-dropped version
changes the served version, so a rollback survives a restart.

The server writes a version by receiving it into a staging folder and renaming the
complete folder to its number (`commit_version`), so a numbered folder the server
made is always whole. A person may still drop a version folder in by hand; the
server picks it up on its next poll, and retries until its model.onnx loads. Copying
the folder under a name that is not a number and renaming it when complete avoids
the retries. Folders whose name is not a number are ignored by the scan.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from activeserve.core.config import ModelConfig, load_model_config
from activeserve.server.errors import ModelNotFound

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "weights.safetensors"
SERVING_FILE = "serving.json"
STAGING_PREFIX = ".staging-"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ServingChoice:
    """What `serving.json` records: the `version` chosen to serve, and the highest
    version number known (`newest_known`) when the choice was made."""

    version: int
    newest_known: int


@dataclass(frozen=True)
class ModelRepository:
    """Access to a repository folder; every method blocks on the filesystem."""

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

    def next_version(self, model: str) -> int:
        """One above every numbered folder of `model`, complete or not, so that a
        new version never lands on a folder someone is still copying."""
        numbers = [
            int(path.name)
            for path in self.model_dir(model).iterdir()
            if path.name.isdigit()
        ]
        return max(numbers, default=0) + 1

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

    def read_serving(self, model: str) -> ServingChoice | None:
        """The choice `serving.json` records; None when there is none or it is
        unreadable (the newest version then serves)."""
        path = self.model_dir(model) / SERVING_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            return ServingChoice(
                version=int(data["version"]), newest_known=int(data["newest_known"])
            )
        except (OSError, ValueError, TypeError, KeyError) as error:
            logger.warning(
                "model %s: ignoring unreadable %s (%s); serving the newest version",
                model,
                path,
                error,
            )
            return None

    def write_serving(self, model: str, choice: ServingChoice) -> None:
        """Record `choice` in `serving.json` atomically (temporary file, rename)."""
        folder = self.model_dir(model)
        text = json.dumps(
            {
                "version": choice.version,
                "newest_known": choice.newest_known,
                "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            indent=2,
        )
        temporary = folder / f".{SERVING_FILE}.{uuid.uuid4().hex}"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, folder / SERVING_FILE)
        _fsync_dir(folder)

    def new_staging_dir(self, model: str) -> Path:
        """A fresh, empty staging folder inside the model's folder."""
        folder = self.model_dir(model) / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        folder.mkdir()
        return folder

    def sync_folder(self, folder: Path) -> None:
        """Flush every file of `folder`, and the folder itself, to disk."""
        for path in folder.iterdir():
            with open(path, "rb") as file:
                os.fsync(file.fileno())
        _fsync_dir(folder)

    def commit_version(self, model: str, staging: Path, version: int) -> Path:
        """Make the complete folder `staging` version `version` by one rename.

        The caller has flushed the files (`sync_folder`), so that after a crash the
        version is either whole or absent. Raises FileExistsError when a folder of
        that number appeared meanwhile (dropped in by hand).
        """
        target = self.model_dir(model) / str(version)
        if target.exists():
            # os.rename would silently replace an empty folder: refuse instead.
            raise FileExistsError(f"{target} appeared while version {version} was made")
        os.rename(staging, target)
        _fsync_dir(target.parent)
        return target

    def remove_stale_staging(self, older_than_s: float) -> list[Path]:
        """Remove staging folders untouched for `older_than_s` seconds (left by a
        server that died mid-upload); returns those removed.

        The age guards uploads in progress on another server sharing the
        repository: an upload touches its folder with every chunk it writes.
        """
        removed = []
        now = time.time()
        for model in self.models():
            for path in self.model_dir(model).iterdir():
                if not (path.name.startswith(STAGING_PREFIX) and path.is_dir()):
                    continue
                if now - _last_touched(path) < older_than_s:
                    continue
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
                logger.info("model %s: removed stale staging folder %s", model, path)
        return removed


def _last_touched(folder: Path) -> float:
    """The newest modification time of `folder` and the files in it."""
    try:
        times = [folder.stat().st_mtime]
        times.extend(path.stat().st_mtime for path in folder.iterdir())
    except FileNotFoundError:
        # Removed meanwhile (its upload finished or failed): nothing to clean.
        return time.time()
    return max(times)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
