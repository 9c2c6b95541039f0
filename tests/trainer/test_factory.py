from __future__ import annotations

import pytest
import torch

from activeserve.trainer.errors import FactoryError
from activeserve.trainer.factory import build_model, load_factory
from activeserve.trainer.models import small_cnn


def not_a_model() -> str:
    return "a string"


def test_load_factory_resolves_a_bundled_factory() -> None:
    assert load_factory("activeserve.trainer.models:small_cnn") is small_cnn


def test_load_factory_follows_a_dotted_attribute_path() -> None:
    factory = load_factory("torch.nn:Linear.__call__")

    assert callable(factory)


def test_build_model_passes_the_keyword_arguments() -> None:
    model = build_model(
        "activeserve.trainer.models:mlp", {"in_features": 3, "num_classes": 2}
    )

    assert model(torch.zeros(4, 3)).shape == (4, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("activeserve.trainer.models.small_cnn", "not of the form 'module:function'"),
        (":small_cnn", "not of the form"),
        ("activeserve.trainer.nowhere:small_cnn", "cannot import module"),
        ("activeserve.trainer.models:tiny_cnn", "has no attribute 'tiny_cnn'"),
        ("activeserve.trainer.models:logger.name", "is not callable"),
    ],
)
def test_load_factory_explains_a_bad_spec(spec: str, message: str) -> None:
    with pytest.raises(FactoryError, match=message):
        load_factory(spec)


def test_build_model_names_the_arguments_a_factory_rejects() -> None:
    with pytest.raises(FactoryError, match=r"rejected arguments \{'depth': 3\}"):
        build_model("activeserve.trainer.models:small_cnn", {"depth": 3})


def test_build_model_refuses_a_factory_that_returns_no_module() -> None:
    with pytest.raises(FactoryError, match=r"returned 'str', expected a torch\.nn"):
        build_model(f"{__name__}:not_a_model")
