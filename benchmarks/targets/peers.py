"""Targets (e): MLServer and PyTriton serving the ONNX model with their own batching.

Each peer runs from a virtual environment of its own, made by
``benchmarks/peers/setup.sh`` under ``.bench-venvs/`` (or ``$BENCH_VENVS``), with
onnxruntime inside; the code they run lives in ``benchmarks/peers/``. Both get the
same batching limits as activeserve: at most ``max_batch_size`` rows, waiting at most
``max_queue_delay_ms`` for a batch to fill.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks.models import ExportedModel
from benchmarks.targets.base import Launch, RunContext, ServerTarget, free_port

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerBatching:
    """The batching limits every peer is configured with, and their defaults."""

    max_batch_size: int = 64
    max_queue_delay_ms: float = 2.0


def venv_dir(context: RunContext, name: str) -> Path:
    """The peer's virtual environment: ``$BENCH_VENVS/<name>`` or the repo's own."""
    root = os.environ.get("BENCH_VENVS")
    base = Path(root) if root else context.repo_root / ".bench-venvs"
    return base / name


def missing_venv(context: RunContext, name: str, executable: str) -> str | None:
    """Why a peer's venv cannot be used, or ``None`` when its executable is there."""
    path = venv_dir(context, name) / "bin" / executable
    if path.exists():
        return None
    return f"{str(path)!r} is missing; run: bash benchmarks/peers/setup.sh {name}"


class MLServerTarget(ServerTarget):
    """MLServer 1.x with a custom onnxruntime runtime and adaptive batching."""

    name = "mlserver"
    description = "MLServer, custom onnxruntime runtime, adaptive batching"

    def __init__(self, batching: PeerBatching, parallel_workers: int = 1) -> None:
        self.batching = batching
        # MLServer's own default: inference in one worker process beside the
        # server's; 0 would run it in the server's event loop.
        self.parallel_workers = parallel_workers

    def unavailable_reason(self, context: RunContext) -> str | None:
        return missing_venv(context, "mlserver", "mlserver")

    def launch(self, model: ExportedModel, port: int, context: RunContext) -> Launch:
        root = context.workdir / "mlserver" / model.spec.name
        model_dir = root / model.spec.name
        model_dir.mkdir(parents=True, exist_ok=True)

        settings = {
            "debug": False,
            "host": "127.0.0.1",
            "grpc_port": port,
            "http_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": self.parallel_workers,
            "load_models_at_startup": True,
        }
        model_settings = {
            "name": model.spec.name,
            "implementation": "mlserver_runtime.OnnxRuntimeModel",
            "max_batch_size": self.batching.max_batch_size,
            "max_batch_time": self.batching.max_queue_delay_ms / 1e3,
            "parameters": {
                "uri": str(model.onnx_path),
                "version": "1",
                "extra": {"output": model.output_name},
            },
        }
        (root / "settings.json").write_text(json.dumps(settings, indent=2))
        (model_dir / "model-settings.json").write_text(
            json.dumps(model_settings, indent=2)
        )

        peers_code = context.repo_root / "benchmarks" / "peers"
        venv = venv_dir(context, "mlserver")
        return Launch(
            command=[str(venv / "bin" / "mlserver"), "start", str(root)],
            env={
                "PYTHONPATH": str(peers_code),
                "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
            },
            cwd=root,
        )


class PyTritonTarget(ServerTarget):
    """PyTriton: Triton's dynamic batcher in front of a ``@batch`` Python function."""

    name = "pytriton"
    description = (
        "PyTriton (tritonserver), @batch onnxruntime function, dynamic batcher"
    )

    def __init__(self, batching: PeerBatching) -> None:
        self.batching = batching

    def unavailable_reason(self, context: RunContext) -> str | None:
        return missing_venv(context, "pytriton", "python")

    def launch(self, model: ExportedModel, port: int, context: RunContext) -> Launch:
        venv = venv_dir(context, "pytriton")
        script = context.repo_root / "benchmarks" / "peers" / "pytriton_server.py"
        delay_us = round(self.batching.max_queue_delay_ms * 1e3)
        return Launch(
            command=[
                str(venv / "bin" / "python"),
                str(script),
                "--onnx",
                str(model.onnx_path),
                "--model-name",
                model.spec.name,
                "--output",
                model.output_name,
                "--grpc-port",
                str(port),
                "--http-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
                "--max-batch-size",
                str(self.batching.max_batch_size),
                "--max-queue-delay-us",
                str(delay_us),
            ],
            env={"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"},
            cwd=context.workdir,
        )
