from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from activeserve.core.config import (
    ModelConfig,
    TrainingConfig,
    load_model_config,
    table_keys,
)
from activeserve.core.errors import ConfigError
from activeserve.core.views import ViewConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"

FULL = """
[model]
labels = ["cat", "dog"]
output = "probabilities"
input_name = "pixels"

[batching]
enabled = false
max_batch_size = 8
max_queue_delay_ms = 5

[runtime]
device = "cpu"
intra_op_threads = 2

[uncertainty]
views = 5
augmentations = ["shift", "noise"]
shift_px = 2
alpha = 0.5
lambda_diversity = 0.0
cascade = true
cascade_score = "margin"

[flag]
policy = "threshold"
score = "diversity"
threshold = 0.3
budget_per_hour = 100
randomised = true

[training]
factory = "pkg.models:net"
policy = "hq"
epochs = 3

[training.factory_kwargs]
num_classes = 2
hidden = [16, 8]

[stopping]
label_budget = 500
plateau_rounds = 2
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_missing_file_gives_every_default(tmp_path: Path) -> None:
    assert load_model_config(tmp_path / "absent.toml") == ModelConfig()


def test_an_empty_file_gives_every_default(tmp_path: Path) -> None:
    assert load_model_config(_write(tmp_path, "")) == ModelConfig()


def test_every_table_is_read_into_its_value_class(tmp_path: Path) -> None:
    config = load_model_config(_write(tmp_path, FULL))

    assert config.model.labels == ("cat", "dog")
    assert config.model.input_name == "pixels"
    assert config.model.output_name is None
    assert config.batching.max_queue_delay_ms == 5.0
    assert isinstance(config.batching.max_queue_delay_ms, float)
    assert config.runtime.intra_op_threads == 2
    assert config.uncertainty.views == ViewConfig(
        count=5, augmentations=("shift", "noise"), shift_px=2
    )
    assert config.uncertainty.scores.alpha == 0.5
    assert config.uncertainty.scores.lambda_diversity == 0.0
    assert config.uncertainty.cascade_score == "margin"
    assert config.flag.score == "diversity"
    assert config.flag.budget_per_hour == 100.0
    assert config.training.factory_kwargs == {"num_classes": 2, "hidden": [16, 8]}
    assert config.stopping.label_budget == 500


@pytest.mark.parametrize("text", ["", FULL])
def test_to_dict_round_trips_through_from_dict(tmp_path: Path, text: str) -> None:
    config = load_model_config(_write(tmp_path, text))

    again = ModelConfig.from_dict(config.to_dict())

    assert again == config


def test_to_dict_leaves_out_absent_keys_and_writes_lists() -> None:
    data = ModelConfig().to_dict()

    assert "input_name" not in data["model"]
    assert "factory" not in data["training"]
    assert data["uncertainty"]["augmentations"] == ["shift"]
    assert data["uncertainty"]["views"] == 1


def test_factory_kwargs_cannot_be_changed_after_loading() -> None:
    kwargs: dict[str, object] = {"width": 32}
    training = TrainingConfig(factory_kwargs=kwargs)
    kwargs["width"] = 64

    assert training.factory_kwargs == {"width": 32}
    with pytest.raises(TypeError):
        training.factory_kwargs["width"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"flagg": {}}, r"unknown table \[flagg\] \(did you mean 'flag'\?\)"),
        ({"views": 3}, r"unknown table \[views\]"),
        ({"flag": 3}, r"flag = 3 has type int; expected a table \[flag\]"),
        (
            {"flag": {"treshold": 0.5}},
            r"\[flag\] has no key 'treshold' \(did you mean 'threshold'\?\)",
        ),
        ({"training": {"epochs": "10"}}, r"\[training\] epochs = '10' has type str"),
        ({"training": {"epochs": 10.0}}, r"epochs = 10.0 has type float"),
        ({"batching": {"enabled": 1}}, r"enabled = 1 has type int; expected true"),
        ({"uncertainty": {"alpha": True}}, r"alpha = True has type bool"),
        ({"uncertainty": {"augmentations": "shift"}}, r"expected an array of str"),
        ({"model": {"labels": ["a", 1]}}, r"labels = \['a', 1\] has type list"),
        ({"training": {"factory_kwargs": 3}}, r"expected a table"),
    ],
)
def test_unknown_names_and_wrong_types_are_refused(
    data: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=r"^m/config.toml: .*" + match):
        ModelConfig.from_dict(data, source="m/config.toml")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"uncertainty": {"views": 0}}, r"\[uncertainty\] views = 0 is invalid"),
        ({"uncertainty": {"alpha": 1.5}}, r"\[uncertainty\] alpha = 1.5 is invalid"),
        (
            {"uncertainty": {"views": 3, "augmentations": ["rotate"]}},
            r"\[uncertainty\] augmentations = \('rotate',\) is invalid",
        ),
        ({"batching": {"max_batch_size": 0}}, r"\[batching\] max_batch_size = 0"),
        ({"runtime": {"device": "tpu"}}, r"\[runtime\] device = 'tpu' is invalid"),
        ({"runtime": {"intra_op_threads": -1}}, r"intra_op_threads = -1 is invalid"),
        ({"model": {"output": "softmax"}}, r"\[model\] output = 'softmax'"),
        ({"model": {"labels": ["a", "a"]}}, r"expected distinct, non-empty label"),
        ({"model": {"input_name": ""}}, r"\[model\] input_name = '' is invalid"),
        ({"flag": {"top_fraction": 2.0}}, r"\[flag\] top_fraction = 2.0 is invalid"),
        ({"stopping": {"tau": 0.0}}, r"\[stopping\] tau = 0.0 is invalid"),
        ({"training": {"factory": "pkg.models"}}, r"expected 'module:function'"),
        ({"training": {"policy": "q"}}, r"\[training\] policy = 'q' is invalid"),
        ({"training": {"learning_rate": 0.0}}, r"learning_rate = 0.0 is invalid"),
        ({"training": {"validation_fraction": 1.0}}, r"validation_fraction = 1.0"),
        ({"training": {"seed": -1}}, r"\[training\] seed = -1 is invalid"),
    ],
)
def test_values_out_of_range_name_the_key_the_value_and_what_fits(
    data: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=r"^m/config.toml: .*" + match):
        ModelConfig.from_dict(data, source="m/config.toml")


def test_a_views_based_flag_score_needs_more_than_one_view() -> None:
    data = {"flag": {"score": "mutual_information"}}

    with pytest.raises(ConfigError, match=r"\[flag\] score = 'mutual_information'"):
        ModelConfig.from_dict(data)


def test_the_cascade_needs_a_single_view_score_and_more_views() -> None:
    diversity = {"uncertainty": {"views": 3, "cascade_score": "diversity"}}
    one_view = {"uncertainty": {"cascade": True}}

    with pytest.raises(ConfigError, match=r"cascade_score = 'diversity' is invalid"):
        ModelConfig.from_dict(diversity)
    with pytest.raises(ConfigError, match=r"cascade = True is invalid; expected false"):
        ModelConfig.from_dict(one_view)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[flag\npolicy = 1\n")

    with pytest.raises(ConfigError, match=r"config.toml: not valid TOML: .*fix"):
        load_model_config(path)


def test_the_file_path_is_named_in_value_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "[stopping]\nwindow = 0\n")

    with pytest.raises(ConfigError, match=re.escape(f"{path}: [stopping] window = 0")):
        load_model_config(path)


def test_docs_describe_every_table_and_key() -> None:
    text = DOCS.read_text(encoding="utf-8")

    for table, keys in table_keys().items():
        section = text.split(f"## `[{table}]`", 1)[1].split("\n## ", 1)[0]
        for key in keys:
            assert f"| `{key}` |" in section, f"[{table}] {key} missing in docs"


def test_the_docs_example_is_a_valid_config(tmp_path: Path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]

    config = load_model_config(_write(tmp_path, example))

    assert config.uncertainty.views.count == 5
