"""Export the benchmark models to ONNX with the trainer's own code (a CLI).

``python -m benchmarks.export_models --out DIR [--seed N] small_cnn resnet18`` writes
``DIR/<name>.onnx`` for each name. The benchmark runs this in a child process so that
torch stays out of the load generator's process.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from activeserve.trainer.export import export_onnx
from activeserve.trainer.models import resnet18_like, small_cnn
from benchmarks.models import MODELS

logger = logging.getLogger(__name__)


def build(name: str) -> torch.nn.Module:
    """The trainer's network for a benchmark model name, with its random weights."""
    if name == "small_cnn":
        return small_cnn(num_classes=10, in_channels=1, image_size=8)
    if name == "resnet18":
        return resnet18_like(num_classes=1000, in_channels=3)
    raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("names", nargs="+", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        torch.manual_seed(args.seed)
        model = build(name).eval()
        example = np.zeros((1, *MODELS[name].input_shape), dtype=np.float32)
        path = args.out / f"{name}.onnx"
        export_onnx(model, example, path)
        logger.info("exported %s to %s", name, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
