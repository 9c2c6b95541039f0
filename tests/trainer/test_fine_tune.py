from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from activeserve.core.config import TrainingConfig
from activeserve.core.views import ViewConfig
from activeserve.trainer.data import RoundPlan, plan_round
from activeserve.trainer.errors import DataError
from activeserve.trainer.fine_tune import (
    evaluate,
    fine_tune,
    predict_proba,
    resolve_device,
)
from activeserve.trainer.models import small_cnn

SEED_LABELS = 100
MORE_LABELS = 300
TEST_ROWS = 500


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Run torch on one thread: these models are too small to gain from more, and
    spinning threads on a busy 2-core machine make a round many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images ``[1797, 1, 8, 8]`` in [0, 1], labels [1797]."""
    inputs, labels = load_digits(return_X_y=True)
    images = (inputs / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(labels.shape[0])
    return images[order], labels[order].astype(np.int64)


def _all_plan(labels: np.ndarray, new: int, config: TrainingConfig) -> RoundPlan:
    new_mask = np.zeros(labels.shape[0], dtype=bool)
    new_mask[labels.shape[0] - new :] = True
    return plan_round(
        "all", labels, new_mask, epochs=config.epochs, batch_size=config.batch_size
    )


@pytest.fixture(scope="module")
def seed_model(digits: tuple[np.ndarray, np.ndarray]) -> torch.nn.Module:
    """A small CNN trained on the first SEED_LABELS digits; copy it before training."""
    images, labels = digits[0][:SEED_LABELS], digits[1][:SEED_LABELS]
    config = TrainingConfig(epochs=20, seed=0)
    torch.manual_seed(0)
    model = small_cnn()
    fine_tune(
        model,
        images,
        labels,
        _all_plan(labels, SEED_LABELS, config),
        config=config,
        views=ViewConfig(),
        device="cpu",
        progress=False,
    )
    return model


def test_fine_tuning_on_more_labels_raises_held_out_accuracy(
    digits: tuple[np.ndarray, np.ndarray], seed_model: torch.nn.Module
) -> None:
    images, labels = digits
    test_images, test_labels = images[-TEST_ROWS:], labels[-TEST_ROWS:]
    config = TrainingConfig(epochs=10, seed=0)
    model = copy.deepcopy(seed_model)
    before = evaluate(model, test_images, test_labels)

    labelled = SEED_LABELS + MORE_LABELS
    report = fine_tune(
        model,
        images[:labelled],
        labels[:labelled],
        _all_plan(labels[:labelled], MORE_LABELS, config),
        config=config,
        views=ViewConfig(),
        device="cpu",
        progress=False,
    )
    after = evaluate(model, test_images, test_labels)

    assert after > before + 0.05
    assert after > 0.93
    assert report.steps == 10 * 13
    assert report.final_loss < report.mean_loss


def test_an_hq_round_with_the_matched_step_budget_also_learns(
    digits: tuple[np.ndarray, np.ndarray], seed_model: torch.nn.Module
) -> None:
    images, labels = digits
    test_images, test_labels = images[-TEST_ROWS:], labels[-TEST_ROWS:]
    config = TrainingConfig(epochs=10, policy="hq", seed=0)
    model = copy.deepcopy(seed_model)
    before = evaluate(model, test_images, test_labels)

    labelled = SEED_LABELS + MORE_LABELS
    new_mask = np.arange(labelled) >= SEED_LABELS
    predictions = predict_proba(model, images[:labelled]).argmax(axis=1)
    plan = plan_round(
        config.policy,
        labels[:labelled],
        new_mask,
        epochs=config.epochs,
        batch_size=config.batch_size,
        predictions=predictions,
        replay_fraction=config.replay_fraction,
    )
    fine_tune(
        model,
        images[:labelled],
        labels[:labelled],
        plan,
        config=config,
        views=ViewConfig(),
        device="cpu",
        progress=False,
    )

    assert plan.size < labelled
    assert plan.steps == 10 * 13
    assert evaluate(model, test_images, test_labels) > before + 0.05


def test_the_same_seed_gives_identical_weights(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images, labels = digits[0][:64], digits[1][:64]
    config = TrainingConfig(epochs=2, batch_size=16, seed=5)
    views = ViewConfig(count=3, augmentations=("shift",))
    plan = _all_plan(labels, 64, config)

    states = []
    for _ in range(2):
        torch.manual_seed(0)
        model = small_cnn()
        fine_tune(
            model, images, labels, plan, config=config, views=views, progress=False
        )
        states.append(model.state_dict())

    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_a_round_is_reported_in_the_log(
    digits: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    images, labels = digits[0][:32], digits[1][:32]
    config = TrainingConfig(epochs=1, batch_size=16)
    views = ViewConfig(count=2, augmentations=("flip",))

    with caplog.at_level(logging.INFO, logger="activeserve.trainer.fine_tune"):
        report = fine_tune(
            small_cnn(),
            images,
            labels,
            _all_plan(labels, 32, config),
            config=config,
            views=views,
            device="cpu",
        )

    assert report.views_per_candidate == 2
    assert report.device == "cpu"
    assert "fine-tuned all round: 2 steps over 32 candidates x 2 views" in caplog.text


def test_training_leaves_the_model_in_eval_mode_on_its_device(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images, labels = digits[0][:16], digits[1][:16]
    config = TrainingConfig(epochs=1)
    model = small_cnn().train()

    fine_tune(
        model,
        images,
        labels,
        _all_plan(labels, 16, config),
        config=config,
        views=ViewConfig(),
        progress=False,
    )

    assert not model.training
    assert next(model.parameters()).device.type == "cpu"
    assert not torch.are_deterministic_algorithms_enabled()


def test_a_plan_beyond_the_data_is_refused(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images, labels = digits[0][:10], digits[1][:10]
    plan = RoundPlan(policy="all", indices=(0, 10), steps=1, batch_size=2, new_count=2)

    with pytest.raises(DataError, match="refers to row 10 but only 10 labelled rows"):
        fine_tune(
            small_cnn(),
            images,
            labels,
            plan,
            config=TrainingConfig(),
            views=ViewConfig(),
        )


def test_a_label_beyond_the_model_classes_is_refused_before_training(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images, labels = digits[0][:8], digits[1][:8].copy()
    labels[3] = 12
    plan = RoundPlan(
        policy="all", indices=tuple(range(8)), steps=1, batch_size=8, new_count=8
    )

    with pytest.raises(
        DataError, match=r"label 12 is out of range for a model with 10"
    ):
        fine_tune(
            small_cnn(),
            images,
            labels,
            plan,
            config=TrainingConfig(),
            views=ViewConfig(),
            progress=False,
        )


def test_probabilities_over_views_average_the_views(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    images = digits[0][:5]
    views = ViewConfig(count=4, augmentations=("shift",))
    model = small_cnn()

    averaged = predict_proba(model, images, views=views)
    single = predict_proba(model, images)

    assert averaged.shape == single.shape == (5, 10)
    assert np.allclose(averaged.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(averaged, single)


def test_labels_that_do_not_match_the_inputs_are_refused(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    with pytest.raises(DataError, match=r"labels must have shape \(4,\)"):
        evaluate(small_cnn(), digits[0][:4], digits[1][:3])


def test_no_device_means_cuda_when_available_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"

    assert resolve_device(None).type == expected
