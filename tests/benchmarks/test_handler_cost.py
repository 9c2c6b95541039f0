"""The handler-cost benchmark times every step of a real ModelInfer call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.onnx_models import linear_classifier

from benchmarks import handler_cost
from benchmarks.models import SMALL_CNN, ExportedModel

STEPS = [
    "parse",
    "decode",
    "onnxruntime",
    "scores",
    "predict",
    "outputs",
    "encode",
    "handler",
]


@pytest.fixture
def small_model(tmp_path: Path) -> ExportedModel:
    path = tmp_path / "small_cnn.onnx"
    linear_classifier(path, input_shape=SMALL_CNN.input_shape, num_classes=10)
    return ExportedModel(
        spec=SMALL_CNN, onnx_path=path, input_name="input", output_name="logits"
    )


def test_every_step_is_timed_and_the_handler_costs_at_least_its_model_step(
    small_model: ExportedModel, tmp_path: Path
) -> None:
    result = asyncio.run(
        handler_cost.measure_model(small_model, tmp_path, calls=200, repeats=2)
    )

    assert list(result) == STEPS
    assert all(value > 0.0 for value in result.values())
    # The handler runs the model step and more; the model step runs the graph.
    assert result["handler"] > result["predict"] > result["onnxruntime"]


def test_the_repository_turns_every_batching_delay_off(
    small_model: ExportedModel, tmp_path: Path
) -> None:
    asyncio.run(handler_cost.measure_model(small_model, tmp_path, calls=5, repeats=1))

    config = (
        tmp_path / "repository-small_cnn" / "small_cnn" / "config.toml"
    ).read_text()
    assert "max_queue_delay_ms = 0.0" in config
    assert "busy_queue_delay_ms = 0.0" in config


def test_the_table_lists_each_step_per_model() -> None:
    table = handler_cost.format_table(
        {"small_cnn": dict.fromkeys(STEPS, 12.5), "resnet18": dict.fromkeys(STEPS, 9e3)}
    )

    lines = table.splitlines()
    assert lines[0].split() == ["step", "(us", "per", "call)", "small_cnn", "resnet18"]
    assert lines[2].split() == ["parse", "12.5", "9,000.0"]
    assert len(lines) == 2 + len(STEPS)


def test_bad_counts_are_refused_with_the_values_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        handler_cost.parse_args(["--calls", "0"])
    assert "--calls 0" in capsys.readouterr().err
