"""One round of continuous fine-tuning, from the served version to a published one.

A round (see ``aift.md``, "Fine-tuning", and :mod:`activeserve.trainer.data`):

1. fetch the SERVING version and rebuild its network (:mod:`.served`);
2. split the labels held into train and validation, each candidate on a side fixed by
   its sample id (``validation_mask``), and add the user's validation file if any;
3. plan the round under the config's ``[training] policy`` (``hq`` asks the served
   network for its predictions on the training labels first);
4. measure the served network on the validation data, fine-tune it on the plan with
   the config's own ``[uncertainty]`` views (the views the server scores with), and
   measure it again;
5. publish the new version only when its validation accuracy is at least the served
   one's minus ``[training] epsilon``; otherwise keep the served version.

Accuracy here is the top class of the probabilities averaged over the views, as the
server predicts. With the same seed, labels and served weights a round gives the same
network (see :mod:`.fine_tune` for the determinism it relies on).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from activeserve.client import Client
from activeserve.core.config import ModelConfig
from activeserve.trainer.data import plan_round, validation_mask
from activeserve.trainer.errors import DataError, TrainerError
from activeserve.trainer.export import DEFAULT_PARITY_ATOL
from activeserve.trainer.fine_tune import (
    TrainReport,
    evaluate,
    fine_tune,
    predict_proba,
)
from activeserve.trainer.publishing import pack_version, publish_version
from activeserve.trainer.served import ServedVersion, fetch_served
from activeserve.trainer.state import LabelledSet
from activeserve.trainer.versioning import VersionMetadata

logger = logging.getLogger(__name__)

#: The metadata metric the server's plateau rule reads.
VALIDATION_METRIC = "validation_accuracy"
PARENT_VALIDATION_METRIC = "parent_validation_accuracy"

Outcome = Literal["published", "rejected", "skipped"]


@dataclass(frozen=True)
class RoundOptions:
    """How rounds run, beyond the model's config.

    ``device``: where to train (None: CUDA when available, else CPU).
    ``probe_rows``: validation inputs sent with a version for the server to check it
    on. ``probe_atol``: largest absolute logit difference the server may find on
    them. ``parity_atol``: the same, for ONNX Runtime against PyTorch before upload.
    ``progress``: draw a progress bar when stderr is a terminal.
    """

    device: str | None = None
    probe_rows: int = 8
    probe_atol: float = 1e-4
    parity_atol: float = DEFAULT_PARITY_ATOL
    progress: bool = False

    def __post_init__(self) -> None:
        if self.probe_rows < 1:
            raise TrainerError(f"probe_rows must be >= 1, got {self.probe_rows!r}")
        if not (self.probe_atol > 0.0 and self.parity_atol > 0.0):
            raise TrainerError(
                f"probe_atol and parity_atol must be > 0, got {self.probe_atol!r} "
                f"and {self.parity_atol!r}"
            )


@dataclass(frozen=True)
class LabelledArrays:
    """Labelled inputs the user brings: ``inputs [N, *S]``, ``labels [N]`` int class
    indices. Used as extra validation data, or as the labels the first version was
    trained on, which every round trains on beside the reviewers' labels."""

    inputs: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_file(cls, path: Path) -> LabelledArrays:
        """Read an ``.npz`` holding arrays ``inputs`` and ``labels``."""
        try:
            with np.load(path) as arrays:
                inputs = np.asarray(arrays["inputs"], dtype=np.float32)
                labels = np.asarray(arrays["labels"])
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(
                f"cannot read labelled data file {str(path)!r}: {exc}; expected an "
                ".npz with arrays 'inputs' [N, *S] and 'labels' [N] (np.savez)"
            ) from exc
        if labels.shape != (inputs.shape[0],) or not np.issubdtype(
            labels.dtype, np.integer
        ):
            raise DataError(
                f"labelled data file {str(path)!r}: labels have shape {labels.shape!r} "
                f"and dtype {labels.dtype!s}; expected integer class indices of "
                f"shape {(inputs.shape[0],)!r}, one per input"
            )
        return cls(inputs=inputs, labels=labels.astype(np.int64))


@dataclass(frozen=True)
class RoundResult:
    """What a round did. ``outcome``: ``published`` (a new ``version``),
    ``rejected`` (trained, but worse than the served version by more than epsilon),
    or ``skipped`` (not trained; ``reason`` says why). Accuracies and ``report`` are
    None for a skipped round. ``config`` is the model config the round read."""

    model_name: str
    outcome: Outcome
    parent_version: int
    reason: str = ""
    version: int | None = None
    validation_accuracy: float | None = None
    parent_validation_accuracy: float | None = None
    report: TrainReport | None = None
    train_labels: int = 0
    new_labels: int = 0
    validation_samples: int = 0
    seconds: float = 0.0
    config: ModelConfig = field(default_factory=ModelConfig, repr=False)


@dataclass(frozen=True)
class _Split:
    train_inputs: np.ndarray
    train_labels: np.ndarray
    train_new: np.ndarray
    validation_inputs: np.ndarray
    validation_labels: np.ndarray


def run_round(
    client: Client,
    model_name: str,
    labelled: LabelledSet,
    *,
    options: RoundOptions,
    validation: LabelledArrays | None = None,
    seed_data: LabelledArrays | None = None,
) -> RoundResult:
    """Fine-tune the served version of ``model_name`` on ``labelled`` and publish it.

    ``validation`` is added to the held-out labels; ``seed_data`` (the labels the
    first version was trained on) to the training labels, as earlier labels.

    Returns the round's result; it raises the SDK's ``ClientError`` when the server
    cannot be reached or refuses the upload, and
    :class:`~activeserve.trainer.errors.TrainerError` subclasses when the data, the
    model or its export are unusable.
    """
    if len(labelled) == 0:
        raise DataError(
            f"model {model_name!r}: a round needs labelled samples, got none; wait "
            "for reviewers to label flagged samples"
        )
    started = time.perf_counter()
    served = fetch_served(client, model_name, device=options.device)
    training = served.config.training
    views = served.config.uncertainty.views

    split = _split(
        labelled, training.validation_fraction, training.seed, validation, seed_data
    )
    counted = RoundResult(
        model_name,
        "skipped",
        served.version,
        train_labels=int(split.train_labels.shape[0]),
        new_labels=int(split.train_new.sum()),
        validation_samples=int(split.validation_labels.shape[0]),
        config=served.config,
    )
    skip_reason = _skip_reason(counted, len(labelled))
    if skip_reason:
        logger.info("model %s: round skipped: %s", model_name, skip_reason)
        return replace(counted, reason=skip_reason)

    predictions = None
    if training.policy == "hq":
        probabilities = predict_proba(served.network, split.train_inputs, views=views)
        predictions = probabilities.argmax(axis=1)
    plan = plan_round(
        training.policy,
        split.train_labels,
        split.train_new,
        epochs=training.epochs,
        batch_size=training.batch_size,
        predictions=predictions,
        replay_fraction=training.replay_fraction,
        rng=np.random.default_rng(training.seed),
    )

    network = served.network
    parent_accuracy = evaluate(
        network, split.validation_inputs, split.validation_labels, views=views
    )
    report = fine_tune(
        network,
        split.train_inputs,
        split.train_labels,
        plan,
        config=training,
        views=views,
        device=options.device,
        progress=options.progress,
    )
    accuracy = evaluate(
        network, split.validation_inputs, split.validation_labels, views=views
    )
    trained = replace(
        counted,
        parent_validation_accuracy=parent_accuracy,
        validation_accuracy=accuracy,
        report=report,
    )

    if accuracy < parent_accuracy - training.epsilon:
        result = replace(
            trained,
            outcome="rejected",
            reason=(
                f"validation accuracy {accuracy:.4f} is below the served version's "
                f"{parent_accuracy:.4f} by more than epsilon {training.epsilon}"
            ),
            seconds=time.perf_counter() - started,
        )
        _log(result)
        return result

    package = pack_version(
        network,
        split.validation_inputs[: options.probe_rows],
        _metadata(served, len(labelled), trained),
        parity_atol=options.parity_atol,
    )
    published = publish_version(
        client,
        model_name,
        package,
        parent_version=served.version,
        probe_atol=options.probe_atol,
    )
    result = replace(
        trained,
        outcome="published",
        version=published.version,
        seconds=time.perf_counter() - started,
    )
    _log(result)
    return result


def _split(
    labelled: LabelledSet,
    fraction: float,
    seed: int,
    validation: LabelledArrays | None,
    seed_data: LabelledArrays | None = None,
) -> _Split:
    """Train and validation rows; the user's validation data joins the held-out, the
    user's seed data the training rows (never as new labels)."""
    if fraction == 0.0 and validation is None:
        raise DataError(
            "[training] validation_fraction = 0 and no validation file: a round "
            "cannot tell whether the new version is better; set validation_fraction "
            "> 0 or pass --validation FILE.npz"
        )
    held_out = validation_mask([str(i) for i in labelled.sample_ids], fraction, seed)
    validation_inputs = labelled.inputs[held_out]
    validation_labels = labelled.labels[held_out]

    if validation is not None:
        _check_shape(validation, labelled, "validation")
        validation_inputs = np.concatenate([validation_inputs, validation.inputs])
        validation_labels = np.concatenate([validation_labels, validation.labels])

    train_inputs = labelled.inputs[~held_out]
    train_labels = labelled.labels[~held_out]
    train_new = labelled.new_mask[~held_out]
    if seed_data is not None:
        _check_shape(seed_data, labelled, "seed data")
        train_inputs = np.concatenate([seed_data.inputs, train_inputs])
        train_labels = np.concatenate([seed_data.labels, train_labels])
        train_new = np.concatenate([np.zeros(len(seed_data.labels), bool), train_new])

    return _Split(
        train_inputs=train_inputs,
        train_labels=train_labels,
        train_new=train_new,
        validation_inputs=validation_inputs,
        validation_labels=validation_labels,
    )


def _check_shape(data: LabelledArrays, labelled: LabelledSet, what: str) -> None:
    shape = labelled.inputs.shape[1:]
    if data.inputs.shape[1:] != shape:
        raise DataError(
            f"{what} inputs have shape {data.inputs.shape[1:]!r} per sample, but "
            f"the labelled inputs have {shape!r}; give data of the model's input shape"
        )


def _skip_reason(counted: RoundResult, held: int) -> str:
    if counted.train_labels == 0:
        return f"no training labels yet ({held} held, all kept for validation)"
    if counted.validation_samples == 0:
        return (
            f"no validation samples yet ({held} labels held, none drawn for "
            "validation); waiting for more labels"
        )
    return ""


def _metadata(
    served: ServedVersion, labels_held: int, trained: RoundResult
) -> VersionMetadata:
    """metadata.json of the new version. ``metrics`` holds numbers only; the round's
    words (policy, device) and the label counts go beside it."""
    assert trained.report is not None
    assert trained.validation_accuracy is not None
    assert trained.parent_validation_accuracy is not None
    metrics = {
        VALIDATION_METRIC: trained.validation_accuracy,
        PARENT_VALIDATION_METRIC: trained.parent_validation_accuracy,
        **{
            f"train_{key}": float(value)
            for key, value in asdict(trained.report).items()
            if isinstance(value, (int, float))
        },
    }
    return VersionMetadata(
        parent_version=served.version,
        labels_used=labels_held,
        metrics=metrics,
        factory=served.factory,
        factory_kwargs=dict(served.factory_kwargs),
        extra={
            "policy": trained.report.policy,
            "device": trained.report.device,
            "labels": {
                "train": trained.train_labels,
                "new": trained.new_labels,
                "validation": trained.validation_samples,
            },
        },
    )


def _log(result: RoundResult) -> None:
    report = result.report
    assert report is not None
    logger.info(
        "model %s: round from version %s %s: %s training labels (%s new), %s "
        "validation samples, %s steps, loss %.4f (last pass %.4f), validation "
        "accuracy %.4f -> %.4f, %.1f s, new version %s%s",
        result.model_name,
        result.parent_version,
        result.outcome,
        result.train_labels,
        result.new_labels,
        result.validation_samples,
        report.steps,
        report.mean_loss,
        report.final_loss,
        result.parent_validation_accuracy,
        result.validation_accuracy,
        result.seconds,
        result.version if result.version is not None else "none",
        f" ({result.reason})" if result.reason else "",
    )
