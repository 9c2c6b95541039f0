from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from activeserve.trainer.errors import VersionError
from activeserve.trainer.export import ONNX_OPSET
from activeserve.trainer.factory import build_model
from activeserve.trainer.versioning import (
    METADATA_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    VersionMetadata,
    read_metadata,
    write_metadata,
    write_version_payload,
)
from activeserve.trainer.weights import load_weights

FACTORY = "activeserve.trainer.models:mlp"
FACTORY_KWARGS = {"in_features": 4, "num_classes": 3, "hidden": [8]}


def test_a_payload_holds_the_graph_the_weights_and_the_metadata(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    model = build_model(FACTORY, FACTORY_KWARGS)
    example = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    directory = tmp_path / "digits" / "2"

    written = write_version_payload(
        directory,
        model,
        example,
        {
            "parent_version": 1,
            "labels_used": 120,
            "metrics": {"val_accuracy": 0.9},
            "factory": FACTORY,
            "factory_kwargs": FACTORY_KWARGS,
        },
    )

    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [MODEL_FILE, WEIGHTS_FILE, METADATA_FILE]
    )
    assert read_metadata(directory / METADATA_FILE) == written
    assert written.parent_version == 1
    assert written.input_shape == (4,)
    assert written.onnx_opset == ONNX_OPSET
    assert written.parity_max_abs_diff is not None
    assert written.parity_max_abs_diff < 1e-4


def test_the_weights_of_a_payload_rebuild_the_model_from_its_metadata(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    model = build_model(FACTORY, FACTORY_KWARGS)
    example = np.ones((1, 4), dtype=np.float32)
    write_version_payload(
        tmp_path,
        model,
        example,
        VersionMetadata(factory=FACTORY, factory_kwargs=FACTORY_KWARGS),
    )

    metadata = read_metadata(tmp_path / METADATA_FILE)
    assert metadata.factory is not None
    rebuilt = build_model(metadata.factory, metadata.factory_kwargs)
    load_weights(rebuilt, tmp_path / WEIGHTS_FILE)

    assert torch.equal(rebuilt(torch.ones(1, 4)), model(torch.ones(1, 4)))


def test_metadata_keeps_unknown_keys_through_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / METADATA_FILE
    path.write_text(
        json.dumps({"format": 1, "labels_used": 5, "reviewer_note": "hand-made"})
    )

    write_metadata(path, read_metadata(path))
    data = json.loads(path.read_text())

    assert data["reviewer_note"] == "hand-made"
    assert data["labels_used"] == 5
    assert data["format"] == 1


def test_created_at_defaults_to_an_aware_iso_time() -> None:
    created_at = VersionMetadata().created_at

    assert created_at.endswith("+00:00")


def test_a_malformed_field_is_a_version_error() -> None:
    with pytest.raises(VersionError, match=r"version metadata .* is malformed"):
        VersionMetadata.from_dict({"labels_used": "many"})


def test_a_missing_metadata_file_is_a_version_error(tmp_path: Path) -> None:
    with pytest.raises(VersionError, match="cannot read version metadata"):
        read_metadata(tmp_path / METADATA_FILE)


def test_metadata_that_is_not_an_object_is_a_version_error(tmp_path: Path) -> None:
    path = tmp_path / METADATA_FILE
    path.write_text("[1, 2]")

    with pytest.raises(VersionError, match="holds a list, expected a JSON object"):
        read_metadata(path)


def test_a_metric_json_cannot_hold_is_a_version_error(tmp_path: Path) -> None:
    metadata = VersionMetadata(extra={"when": object()})

    with pytest.raises(VersionError, match="cannot be written as JSON"):
        write_metadata(tmp_path / METADATA_FILE, metadata)
