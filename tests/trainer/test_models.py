from __future__ import annotations

import pytest
import torch

from activeserve.trainer.models import mlp, resnet18_like, small_cnn


def test_small_cnn_maps_images_to_logits_per_class() -> None:
    model = small_cnn(num_classes=10, in_channels=1, image_size=8)

    logits = model(torch.zeros(5, 1, 8, 8))

    assert logits.shape == (5, 10)
    assert not model.training


def test_small_cnn_accepts_other_sizes_and_channels() -> None:
    model = small_cnn(num_classes=3, in_channels=3, image_size=28, width=8)

    assert model(torch.zeros(2, 3, 28, 28)).shape == (2, 3)


def test_small_cnn_rejects_images_too_small_to_pool_twice() -> None:
    with pytest.raises(ValueError, match="image_size must be at least 4"):
        small_cnn(image_size=3)


def test_mlp_maps_rows_to_logits_through_the_hidden_widths() -> None:
    model = mlp(in_features=6, num_classes=4, hidden=(16, 8, 5))

    linear_widths = [
        m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)
    ]

    assert model(torch.zeros(3, 6)).shape == (3, 4)
    assert linear_widths == [16, 8, 5, 4]


def test_mlp_without_hidden_layers_is_one_linear_layer() -> None:
    model = mlp(in_features=6, num_classes=2, hidden=())

    assert [type(m) for m in model.children()] == [torch.nn.Linear]


def test_mlp_rejects_a_zero_width() -> None:
    with pytest.raises(ValueError, match="each hidden width must be a positive"):
        mlp(in_features=6, num_classes=2, hidden=(8, 0))


def test_resnet18_like_has_the_reference_parameter_count() -> None:
    model = resnet18_like()

    assert sum(p.numel() for p in model.parameters()) == 11_689_512


def test_resnet18_like_classifies_a_small_image_batch() -> None:
    model = resnet18_like(num_classes=7, in_channels=1)

    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 7)
