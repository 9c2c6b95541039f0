"""Targets (c) and (d): activeserve itself, with and without dynamic batching.

Each run writes a model repository of its own, ``<workdir>/activeserve-.../<model>/``
with ``config.toml`` and ``1/model.onnx``, and starts::

    activeserve serve --repository DIR --address 127.0.0.1:PORT

from the interpreter's own environment. With ``views`` above 1 the server runs every
request through that many augmented views, which is what the m-view cost check of
the benchmark measures.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.models import ExportedModel
from benchmarks.targets.base import Launch, RunContext, ServerTarget

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchingConfig:
    """The ``[batching]`` table of the model's config.toml, with its defaults."""

    enabled: bool = True
    max_batch_size: int = 64
    # None: activeserve's own default (no deliberate wait; batches form while a run
    # is in flight).
    max_queue_delay_ms: float | None = None
    busy_queue_delay_ms: float | None = None


def config_toml(output_name: str, batching: BatchingConfig, views: int) -> str:
    """The model's config.toml: batching as given, ``views`` views, flagging off."""
    enabled = "true" if batching.enabled else "false"
    return (
        "[model]\n"
        f'output = "{output_name}"\n'
        "\n"
        "[batching]\n"
        f"enabled = {enabled}\n"
        f"max_batch_size = {batching.max_batch_size}\n"
        + (
            f"max_queue_delay_ms = {batching.max_queue_delay_ms}\n"
            if batching.max_queue_delay_ms is not None
            else ""
        )
        + (
            f"busy_queue_delay_ms = {batching.busy_queue_delay_ms}\n"
            if batching.busy_queue_delay_ms is not None
            else ""
        )
        + "\n"
        "[uncertainty]\n"
        f"views = {views}\n"
        "\n"
        "[flag]\n"
        "enabled = false\n"
    )


def write_repository(
    root: Path, model: ExportedModel, batching: BatchingConfig, views: int
) -> Path:
    """Write ``root/<model>/config.toml`` and ``root/<model>/1/model.onnx``."""
    model_dir = root / model.spec.name
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model.onnx_path, version_dir / "model.onnx")
    (model_dir / "config.toml").write_text(
        config_toml(model.output_name, batching, views)
    )
    return root


def activeserve_command() -> Path:
    """The ``activeserve`` console script beside the running interpreter."""
    return Path(sys.executable).parent / "activeserve"


class ActiveserveTarget(ServerTarget):
    """activeserve as a child process, one model repository per target and model."""

    def __init__(self, name: str, batching: BatchingConfig, views: int = 1) -> None:
        if views < 1:
            raise ValueError(f"views {views!r} is below 1; pass --views 1 or more")
        self.name = name
        self.batching = batching
        self.views = views
        mode = (
            f"dynamic batching (max {batching.max_batch_size}, "
            f"{batching.max_queue_delay_ms} ms)"
            if batching.enabled
            else "no batching"
        )
        self.description = f"activeserve, {mode}, {views} view(s)"

    def unavailable_reason(self, context: RunContext) -> str | None:
        command = activeserve_command()
        if not command.exists():
            return (
                f"{str(command)!r} is missing; install the project with "
                "pip install -e '.[server]'"
            )
        return None

    def launch(self, model: ExportedModel, port: int, context: RunContext) -> Launch:
        root = context.workdir / "repositories" / f"{self.name}-{model.spec.name}"
        write_repository(root, model, self.batching, self.views)
        return Launch(
            command=[
                str(activeserve_command()),
                "serve",
                "--repository",
                str(root),
                "--address",
                f"127.0.0.1:{port}",
            ],
        )
