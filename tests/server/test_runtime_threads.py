"""How many threads ONNX Runtime gets for a model, chosen at load by measurement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from support.onnx_models import expected_logits, linear_classifier

from activeserve.core.config import ModelConfig
from activeserve.server.runtime.model import LoadedModel


def _load(tmp_path: Path, runtime: dict[str, object]) -> LoadedModel:
    version_dir = tmp_path / "linear" / "1"
    version_dir.mkdir(parents=True)
    linear_classifier(version_dir / "model.onnx", seed=7)
    config = ModelConfig.from_dict({"runtime": {"device": "cpu", **runtime}})
    model = LoadedModel("linear", 1, version_dir, config, executor=None)
    model.warm_up()
    return model


def test_a_model_whose_runs_go_inline_runs_on_one_thread(tmp_path: Path) -> None:
    model = _load(tmp_path, {})

    assert model.session.intra_op_threads == 1
    assert model.placement.runs_inline(1)


def test_a_model_slower_than_the_inline_budget_keeps_the_default(
    tmp_path: Path,
) -> None:
    # A budget no run can meet stands in for a large model.
    model = _load(tmp_path, {"inline_run_us": 1e-6})

    assert model.session.intra_op_threads == 0
    assert not model.placement.runs_inline(1)


@pytest.mark.parametrize("runtime", [{"intra_op_threads": 2}, {"inline_run_us": 0}])
def test_a_configured_thread_count_or_no_inline_runs_keep_the_session(
    tmp_path: Path, runtime: dict[str, object]
) -> None:
    model = _load(tmp_path, runtime)

    assert model.session.intra_op_threads == runtime.get("intra_op_threads", 0)


def test_the_reloaded_session_answers_like_the_graph(tmp_path: Path) -> None:
    model = _load(tmp_path, {})
    weights, bias = linear_classifier(tmp_path / "reference.onnx", seed=7)
    rows = np.random.default_rng(4).random((3, 1, 8, 8), dtype=np.float32)

    prediction = asyncio.run(model.predict(rows))

    np.testing.assert_allclose(
        prediction.outputs["logits"], expected_logits(rows, weights, bias), atol=1e-5
    )
