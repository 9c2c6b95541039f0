from __future__ import annotations

from pathlib import Path

import pytest
import torch

from activeserve.trainer.errors import WeightsError
from activeserve.trainer.models import mlp, resnet18_like, small_cnn
from activeserve.trainer.weights import (
    load_weights,
    save_weights,
    weights_from_bytes,
    weights_to_bytes,
)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(
        torch.equal(left[k], right[k]) for k in left
    )


def test_weights_survive_a_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = small_cnn()
    torch.manual_seed(2)
    target = small_cnn()
    path = tmp_path / "weights.safetensors"

    save_weights(source, path, metadata={"version": "3"})
    load_weights(target, path)

    assert _same_state(source, target)


def test_weights_survive_a_bytes_round_trip_with_batchnorm_buffers() -> None:
    torch.manual_seed(1)
    source = resnet18_like(num_classes=5)
    # state_dict() tensors share memory with the model's buffers.
    source.state_dict()["stem.1.running_mean"].fill_(0.25)
    target = resnet18_like(num_classes=5)

    weights_from_bytes(target, weights_to_bytes(source))

    assert _same_state(source, target)


def test_the_file_holds_only_tensors_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"

    save_weights(mlp(4, 2), path)

    # A safetensors file starts with an 8-byte header length, then a JSON header.
    assert path.read_bytes()[8:9] == b"{"


def test_loading_into_another_shape_names_each_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    save_weights(mlp(4, 2, hidden=(8,)), path)

    with pytest.raises(WeightsError, match=r"shape mismatches: \['0.bias: file"):
        load_weights(mlp(4, 2, hidden=(9,)), path)


def test_strict_loading_names_missing_and_extra_tensors() -> None:
    data = weights_to_bytes(mlp(4, 2, hidden=(8,)))

    with pytest.raises(WeightsError, match=r"missing from the weights: \['4.bias'"):
        weights_from_bytes(mlp(4, 2, hidden=(8, 2)), data)


def test_non_strict_loading_tolerates_missing_names_but_loads_the_rest() -> None:
    source = mlp(4, 2, hidden=(8,))
    target = mlp(4, 2, hidden=(8, 2))

    weights_from_bytes(target, weights_to_bytes(source), strict=False)

    assert torch.equal(target.state_dict()["0.weight"], source.state_dict()["0.weight"])


def test_an_unreadable_file_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"not a safetensors file")

    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(mlp(4, 2), path)


def test_a_missing_file_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(mlp(4, 2), tmp_path / "absent.safetensors")


def test_garbage_bytes_are_a_weights_error() -> None:
    with pytest.raises(WeightsError, match="cannot parse a safetensors buffer of 3"):
        weights_from_bytes(mlp(4, 2), b"abc")
