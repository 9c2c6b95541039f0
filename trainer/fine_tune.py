"""One round of continuous fine-tuning, and the model's predictions.

:func:`fine_tune` carries out a :class:`~activeserve.trainer.data.RoundPlan` on the
model it is given, in place: each round continues from the current weights, never from
the initial ones. A fresh AdamW optimiser is made every round (its moment estimates are
not carried over); with ``weight_decay = 0`` it is plain Adam.

Views. The model is trained on the same augmented views the server scores with: every
batch of ``B`` candidates is expanded by :func:`activeserve.core.views.make_views` into
all ``B * m`` patches, each patch carrying its candidate's label, so one step sees
``B * m`` rows. All ``m`` views are used at every step (no subset is sampled), which
multiplies the cost of a step by ``m``; choose ``batch_size`` with that in mind.

Determinism. The batch order comes from a numpy generator seeded with
``TrainingConfig.seed``; ``torch.manual_seed`` is set to the same seed, and PyTorch's
deterministic algorithms are switched on for the round (and restored after). On CUDA
they need ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment before the process
starts; without it the round still runs, without the guarantee, and says so in the log.
On one machine and device, the same seed, data and starting weights give identical
weights.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from activeserve.core.config import TrainingConfig
from activeserve.core.views import ViewConfig, make_views, views_per_candidate
from activeserve.trainer.data import RoundPlan, batch_schedule
from activeserve.trainer.errors import DataError

logger = logging.getLogger(__name__)

#: Candidates per forward pass in :func:`predict_proba` (before views are added).
DEFAULT_PREDICT_BATCH = 256


@dataclass(frozen=True)
class TrainReport:
    """What one round did.

    ``mean_loss`` is the mean cross-entropy over every step, ``final_loss`` over the
    last pass through the round's candidates (its last ``ceil(candidates /
    batch_size)`` steps); both are per patch.
    """

    policy: str
    steps: int
    candidates: int
    views_per_candidate: int
    batch_size: int
    mean_loss: float
    final_loss: float
    seconds: float
    device: str


def resolve_device(device: str | None) -> torch.device:
    """``device`` as a ``torch.device``; None means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check_data(
    inputs: np.ndarray, labels: np.ndarray, plan: RoundPlan | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``inputs [N, *S]`` and ``labels [N]``; return float32 / int64 copies."""
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise DataError(
            f"inputs must be a non-empty [N, *S] array, got shape {inputs.shape!r}"
        )
    if labels.shape != (inputs.shape[0],):
        raise DataError(
            f"labels must have shape {(inputs.shape[0],)!r} to match inputs, got "
            f"{labels.shape!r}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DataError(
            f"labels must be non-negative class indices, got dtype {labels.dtype!s} "
            f"with minimum {labels.min()!r}"
        )
    if plan is not None and max(plan.indices) >= inputs.shape[0]:
        raise DataError(
            f"the round plan refers to row {max(plan.indices)!r} but only "
            f"{inputs.shape[0]!r} labelled rows were given; plan on the same arrays"
        )
    return inputs.astype(np.float32, copy=False), labels.astype(np.int64, copy=False)


def _seed_everything(seed: int, device: torch.device) -> bool:
    """Seed torch and ask for deterministic kernels; return the previous setting."""
    torch.manual_seed(seed)
    previous = torch.are_deterministic_algorithms_enabled()

    if device.type == "cuda" and "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
        logger.info(
            "CUBLAS_WORKSPACE_CONFIG is not set: this CUDA round is not bit-for-bit "
            "reproducible; set it to ':4096:8' before starting the trainer"
        )
    else:
        torch.use_deterministic_algorithms(True)
    return previous


def _check_classes(
    model: nn.Module, inputs: np.ndarray, labels: np.ndarray, device: torch.device
) -> None:
    """Fail early, and clearly, when a label is beyond the model's output classes."""
    with torch.inference_mode():
        classes = model.eval()(torch.from_numpy(inputs[:1]).to(device)).shape[1]
    if labels.max() >= classes:
        raise DataError(
            f"label {int(labels.max())!r} is out of range for a model with "
            f"{classes!r} output classes; build the model with num_classes > "
            f"{int(labels.max())!r} or fix the labels"
        )


def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def fine_tune(
    model: nn.Module,
    inputs: np.ndarray,
    labels: np.ndarray,
    plan: RoundPlan,
    *,
    config: TrainingConfig,
    views: ViewConfig,
    device: str | None = None,
    progress: bool = True,
) -> TrainReport:
    """Train ``model`` in place for one round, continuing from its current weights.

    ``inputs`` is ``[N, *S]`` (the model's input without the batch axis is ``S``),
    ``labels`` is ``[N]`` int class indices; ``plan`` picks rows of them and the step
    budget (see :func:`~activeserve.trainer.data.plan_round`). From ``config`` it reads
    ``learning_rate``, ``weight_decay`` and ``seed``. Training runs on ``device``
    (default CUDA when available, else CPU); afterwards the model is back on the device
    it came on, in eval mode. A progress bar is drawn on stderr when ``progress`` is
    true and stderr is a terminal.
    """
    inputs, labels = _check_data(inputs, labels, plan)
    target = resolve_device(device)
    home = _model_device(model)
    rng = np.random.default_rng(config.seed)
    previous_determinism = _seed_everything(config.seed, target)

    model.to(target)
    _check_classes(model, inputs, labels[list(plan.indices)], target)
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    loss_function = nn.CrossEntropyLoss()
    patches_per_candidate = views_per_candidate(views)
    losses: list[float] = []
    started = time.perf_counter()

    bar = tqdm(
        total=plan.steps,
        desc=f"fine-tune ({plan.policy})",
        unit="step",
        disable=not (progress and sys.stderr.isatty()),
    )
    try:
        for rows in batch_schedule(plan, rng):
            # All patches of a candidate share its label: repeat each label m times,
            # matching make_views' layout (candidate i at rows i*m .. i*m + m - 1).
            patches = torch.from_numpy(make_views(inputs[rows], views)).to(target)
            targets = torch.from_numpy(
                np.repeat(labels[rows], patches_per_candidate)
            ).to(target)

            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(model(patches), targets)
            loss.backward()
            optimizer.step()

            losses.append(float(loss.item()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    finally:
        bar.close()
        torch.use_deterministic_algorithms(previous_determinism)
        model.eval().to(home)

    steps_per_pass = math.ceil(plan.size / plan.batch_size)
    report = TrainReport(
        policy=plan.policy,
        steps=len(losses),
        candidates=plan.size,
        views_per_candidate=patches_per_candidate,
        batch_size=plan.batch_size,
        mean_loss=float(np.mean(losses)),
        final_loss=float(np.mean(losses[-steps_per_pass:])),
        seconds=time.perf_counter() - started,
        device=str(target),
    )
    logger.info(
        "fine-tuned %s round: %s steps over %s candidates x %s views, loss %.4f "
        "(last pass %.4f), %.1f s on %s",
        report.policy,
        report.steps,
        report.candidates,
        report.views_per_candidate,
        report.mean_loss,
        report.final_loss,
        report.seconds,
        report.device,
    )
    return report


def predict_proba(
    model: nn.Module,
    inputs: np.ndarray,
    *,
    views: ViewConfig | None = None,
    batch_size: int = DEFAULT_PREDICT_BATCH,
) -> np.ndarray:
    """Class probabilities ``[N, K]`` float32 for ``inputs [N, *S]``.

    Runs on the device the model is on, in eval mode (the model's mode is restored
    after). With ``views``, each candidate's probability is the mean of the softmax
    over its ``m`` views, as the server's dominant class; without, the input alone.
    """
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise DataError(
            f"inputs must be a non-empty [N, *S] array, got shape {inputs.shape!r}"
        )
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size!r}")

    inputs = inputs.astype(np.float32, copy=False)
    device = _model_device(model)
    was_training = model.training
    model.eval()

    chunks: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, inputs.shape[0], batch_size):
                batch = inputs[start : start + batch_size]
                patches = batch if views is None else make_views(batch, views)
                logits = model(torch.from_numpy(patches).to(device))
                probabilities = torch.softmax(logits.float(), dim=1).cpu().numpy()

                # [B * m, K] -> [B, m, K] -> mean over the views.
                per_view = probabilities.reshape(batch.shape[0], -1, logits.shape[1])
                chunks.append(per_view.mean(axis=1))
    finally:
        model.train(was_training)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def evaluate(
    model: nn.Module,
    inputs: np.ndarray,
    labels: np.ndarray,
    *,
    views: ViewConfig | None = None,
) -> float:
    """Accuracy in [0, 1] of the model's top class on ``inputs [N, *S]``, ``labels``.

    With ``views``, the top class of the probabilities averaged over the views.
    """
    inputs, labels = _check_data(inputs, labels)
    predicted = predict_proba(model, inputs, views=views).argmax(axis=1)
    return float((predicted == labels).mean())
