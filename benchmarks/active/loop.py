"""One trial of the pool-based active-learning loop, and the all-labels reference.

A trial is one selection method under one fine-tuning policy from one seed:

1. ``seed_labels`` pool rows, drawn at random by the seed (the same rows, and the
   same initial weights, for every method and policy of that seed), are labelled and
   a fresh model is trained on them;
2. each round, the method picks ``batch`` more rows of the unlabelled pool, their
   labels are revealed, ``plan_round`` plans the round under the policy (``all``:
   every label so far; ``hq``: the new labels, the labelled rows the current model
   gets wrong and a replay share, for the step budget of ``all``) and
   ``fine_tune`` continues from the current weights;
3. after every round the model's test accuracy is recorded with the number of
   labels it was trained on, until ``budget`` labels are spent.

Every trial runs to the label cap, so that all curves cover the same label grid and
their areas compare; the labels needed to reach the target are read off the curve
afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from activeserve.core.config import TrainingConfig
from activeserve.core.scores import ScoreConfig
from activeserve.core.views import ViewConfig
from activeserve.trainer.data import plan_round
from activeserve.trainer.factory import build_model
from activeserve.trainer.fine_tune import evaluate, fine_tune, predict_proba

from .datasets import Dataset
from .methods import SelectionParams, choose, method_named, pool_probabilities

logger = logging.getLogger(__name__)

# Distinct streams of one seed: the seed set, selection draws, round plans.
_SEED_SET_STREAM = 1
_SELECTION_STREAM = 2
_PLAN_STREAM = 3

# Round r of seed s trains with TrainingConfig.seed = s * _ROUND_SEED_STRIDE + r.
_ROUND_SEED_STRIDE = 10_007


@dataclass(frozen=True)
class LoopSettings:
    """The protocol's numbers; the defaults are the digits benchmark's.

    ``seed_labels`` start the loop, ``batch`` (``b``) labels are added per round up
    to ``budget`` (the label cap). ``epochs``, ``batch_size``, ``learning_rate``,
    ``weight_decay`` and ``replay_fraction`` fill ``TrainingConfig`` each round;
    ``reference_epochs`` train the all-labels reference from scratch.
    ``views`` (``m``), ``alpha`` and ``omega`` drive the AIFT methods;
    ``train_views`` is the views per candidate fine-tuning trains on (1 = the input
    alone). ``target_fraction`` of the reference's accuracy is the target.
    """

    seed_labels: int = 20
    batch: int = 20
    budget: int = 400
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    replay_fraction: float = 0.5
    reference_epochs: int = 30
    views: int = 5
    alpha: float = 0.25
    omega: float = 2.0
    train_views: int = 1
    target_fraction: float = 0.99

    def __post_init__(self) -> None:
        checks = (
            ("seed_labels", self.seed_labels >= 1, "an integer >= 1"),
            ("batch", self.batch >= 1, "an integer >= 1"),
            ("budget", self.budget >= self.seed_labels, "an integer >= seed_labels"),
            ("views", self.views >= 1, "an integer >= 1"),
            ("train_views", self.train_views >= 1, "an integer >= 1"),
            ("target_fraction", 0.0 < self.target_fraction <= 1.0, "in (0, 1]"),
        )
        for name, valid, expected in checks:
            if not valid:
                raise ValueError(
                    f"loop setting {name} = {getattr(self, name)!r} is invalid; "
                    f"expected {expected}"
                )

    def training(self, seed: int) -> TrainingConfig:
        return TrainingConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            replay_fraction=self.replay_fraction,
            seed=seed,
        )

    def selection(self, dataset: Dataset) -> SelectionParams:
        return SelectionParams(
            views=dataclasses.replace(dataset.views, count=self.views),
            scores=ScoreConfig(alpha=self.alpha),
            omega=self.omega,
        )

    def training_views(self, dataset: Dataset) -> ViewConfig:
        return dataclasses.replace(dataset.views, count=self.train_views)


@dataclass(frozen=True)
class Curve:
    """A trial's learning curve: after round ``r`` the model had been trained on
    ``labels[r]`` labels and scored ``accuracy[r]`` on the test set.

    ``steps[r]`` and ``trained_on[r]`` are round ``r``'s optimisation steps and
    candidates; ``seconds`` the trial's wall time.
    """

    method: str
    policy: str
    seed: int
    labels: tuple[int, ...]
    accuracy: tuple[float, ...]
    steps: tuple[int, ...]
    trained_on: tuple[int, ...]
    seconds: float


def fresh_model(dataset: Dataset, seed: int) -> nn.Module:
    """The untrained model of ``seed``: the same weights for every method."""
    torch.manual_seed(seed)
    return build_model(dataset.factory, dataset.factory_kwargs)


def seed_rows(dataset: Dataset, settings: LoopSettings, seed: int) -> np.ndarray:
    """The pool rows labelled before the first round: ``[seed_labels]`` int64."""
    rng = np.random.default_rng((seed, _SEED_SET_STREAM))
    rows = rng.choice(dataset.pool_size, size=settings.seed_labels, replace=False)
    return rows.astype(np.int64)


def run_trial(
    dataset: Dataset, method_name: str, policy: str, seed: int, settings: LoopSettings
) -> Curve:
    """Run one trial to the label cap and return its learning curve."""
    method = method_named(method_name)
    params = settings.selection(dataset)
    train_views = settings.training_views(dataset)
    selection_rng = np.random.default_rng((seed, _SELECTION_STREAM))
    plan_rng = np.random.default_rng((seed, _PLAN_STREAM))
    started = time.perf_counter()

    model = fresh_model(dataset, seed)
    labelled = seed_rows(dataset, settings, seed)
    is_new = np.ones(labelled.size, dtype=bool)
    budget = min(settings.budget, dataset.pool_size)
    labels: list[int] = []
    accuracy: list[float] = []
    steps: list[int] = []
    trained_on: list[int] = []

    # Each round adds at least one label, so the pool size bounds the rounds; the
    # label cap ends the loop long before.
    for round_index in range(dataset.pool_size):
        inputs = dataset.pool_inputs[labelled]
        targets = dataset.pool_labels[labelled]

        # hq asks which earlier labels the current model gets wrong.
        predictions = None
        if policy == "hq":
            predictions = predict_proba(model, inputs).argmax(axis=1)
        plan = plan_round(
            policy,
            targets,
            is_new,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            predictions=predictions,
            replay_fraction=settings.replay_fraction,
            rng=plan_rng,
        )
        round_seed = seed * _ROUND_SEED_STRIDE + round_index
        fine_tune(
            model,
            inputs,
            targets,
            plan,
            config=settings.training(round_seed),
            views=train_views,
            device="cpu",
            progress=False,
        )

        labels.append(int(labelled.size))
        accuracy.append(evaluate(model, dataset.test_inputs, dataset.test_labels))
        steps.append(plan.steps)
        trained_on.append(plan.size)
        logger.debug(
            "%s/%s seed %s: %s labels, accuracy %.4f",
            method.name,
            policy,
            seed,
            labels[-1],
            accuracy[-1],
        )
        if labelled.size >= budget:
            break

        # Choose among the rows not labelled yet; picks are positions in that list.
        unlabelled = np.setdiff1d(np.arange(dataset.pool_size), labelled)
        take = min(settings.batch, budget - labelled.size)
        probs = pool_probabilities(
            model, dataset.pool_inputs[unlabelled], method, params
        )
        picked = choose(method, probs, unlabelled.size, take, params, selection_rng)

        labelled = np.concatenate([labelled, unlabelled[picked]])
        is_new = np.zeros(labelled.size, dtype=bool)
        is_new[-picked.size :] = True

    seconds = time.perf_counter() - started
    logger.info(
        "trial %s/%s seed %s: %s rounds, final accuracy %.4f, %.1f s",
        method.name,
        policy,
        seed,
        len(labels),
        accuracy[-1],
        seconds,
    )
    return Curve(
        method=method.name,
        policy=policy,
        seed=seed,
        labels=tuple(labels),
        accuracy=tuple(accuracy),
        steps=tuple(steps),
        trained_on=tuple(trained_on),
        seconds=seconds,
    )


def run_reference(dataset: Dataset, seed: int, settings: LoopSettings) -> float:
    """Test accuracy of the seed's model trained on every pool label from scratch.

    ``reference_epochs`` passes over the whole pool in one round, on the same
    training views as the trials.
    """
    model = fresh_model(dataset, seed)
    everything = np.ones(dataset.pool_size, dtype=bool)
    plan = plan_round(
        "all",
        dataset.pool_labels,
        everything,
        epochs=settings.reference_epochs,
        batch_size=settings.batch_size,
    )
    fine_tune(
        model,
        dataset.pool_inputs,
        dataset.pool_labels,
        plan,
        config=settings.training(seed * _ROUND_SEED_STRIDE),
        views=settings.training_views(dataset),
        device="cpu",
        progress=False,
    )
    accuracy = evaluate(model, dataset.test_inputs, dataset.test_labels)
    logger.info("reference seed %s: accuracy %.4f", seed, accuracy)
    return accuracy
