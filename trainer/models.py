"""Bundled model factories.

Each factory returns a ``torch.nn.Module`` in eval mode whose forward pass maps a
float32 batch to class LOGITS (no softmax: the server applies it, and the loss wants
logits). Every model here exports to ONNX with a dynamic batch axis. A model config
names one of them as ``"activeserve.trainer.models:small_cnn"`` with keyword arguments
beside it.

- :func:`small_cnn` for small images ``[N, C, H, W]`` (8x8 digits and the like);
- :func:`mlp` for tabular rows ``[N, F]``;
- :func:`resnet18_like` for the serving benchmark: the ResNet-18 layout of He et al.
  (2016), about 11.7M parameters at 1000 classes, input ``[N, 3, 224, 224]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Channel widths of ResNet-18's four stages, and blocks per stage.
_RESNET18_WIDTHS = (64, 128, 256, 512)
_RESNET18_BLOCKS = (2, 2, 2, 2)


def _require_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def small_cnn(
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 8,
    width: int = 32,
) -> nn.Module:
    """A three-convolution network for small square images.

    Input ``[N, in_channels, image_size, image_size]`` float32, output logits
    ``[N, num_classes]``. Two 2x2 max-poolings shrink the image by four, so
    ``image_size`` must be at least 4. With the defaults (about 30k parameters) it
    reaches about 99% test accuracy on scikit-learn's 8x8 digits when trained on all
    of them.
    """
    for name, value in [
        ("num_classes", num_classes),
        ("in_channels", in_channels),
        ("width", width),
    ]:
        _require_positive(name, value)
    if image_size < 4:
        raise ValueError(
            f"image_size must be at least 4 (two 2x2 poolings), got {image_size!r}"
        )

    pooled = (image_size // 2) // 2
    model = nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * pooled * pooled, num_classes),
    )
    return model.eval()


def mlp(
    in_features: int,
    num_classes: int,
    hidden: Sequence[int] = (64, 64),
) -> nn.Module:
    """A fully connected ReLU network for tabular rows.

    Input ``[N, in_features]`` float32, output logits ``[N, num_classes]``. ``hidden``
    lists the widths of the hidden layers; an empty sequence gives logistic regression.
    """
    _require_positive("in_features", in_features)
    _require_positive("num_classes", num_classes)
    for width in hidden:
        _require_positive("each hidden width", width)

    layers: list[nn.Module] = []
    previous = in_features
    for width in hidden:
        layers += [nn.Linear(previous, width), nn.ReLU()]
        previous = width
    layers.append(nn.Linear(previous, num_classes))
    return nn.Sequential(*layers).eval()


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet's basic block)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

        # The shortcut needs a projection only where the block changes the shape.
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual: torch.Tensor = self.relu(out + self.shortcut(x))
        return residual


class _ResNet18Like(nn.Module):
    """ResNet-18's layout: a 7x7 stem, four stages of two basic blocks, linear head."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        stem_width = _RESNET18_WIDTHS[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )

        stages: list[nn.Module] = []
        previous = stem_width
        for index, (width, blocks) in enumerate(
            zip(_RESNET18_WIDTHS, _RESNET18_BLOCKS, strict=True)
        ):
            # Every stage but the first halves the resolution in its first block.
            stride = 1 if index == 0 else 2
            stage = [_BasicBlock(previous, width, stride)]
            stage += [_BasicBlock(width, width, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            previous = width
        self.stages = nn.Sequential(*stages)

        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.stages(self.stem(x)))
        logits: torch.Tensor = self.head(torch.flatten(features, 1))
        return logits


def resnet18_like(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """A ResNet-18-shaped network, randomly initialised, for serving benchmarks.

    Input ``[N, in_channels, H, W]`` float32 (224x224 is the reference size; global
    average pooling accepts any size of at least 32x32), output logits
    ``[N, num_classes]``. With the defaults it has 11,689,512 parameters, as the
    reference architecture. It is a re-implementation of the layout, not a loader of
    pretrained weights.
    """
    _require_positive("num_classes", num_classes)
    _require_positive("in_channels", in_channels)
    return _ResNet18Like(num_classes, in_channels).eval()
