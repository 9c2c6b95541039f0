"""The sections of a model's configuration, one value class per TOML table.

``ModelSection`` (``[model]``), ``BatchingConfig`` (``[batching]``), ``RuntimeConfig``
(``[runtime]``), ``UncertaintyConfig`` (``[uncertainty]``) and ``TrainingConfig``
(``[training]``). ``[flag]`` and ``[stopping]`` are ``FlagConfig`` and
``StoppingConfig``, which live beside the rules they configure. Each class checks its
values when built and raises ``ConfigError`` naming the field, the value and what fits;
``activeserve.core.config`` assembles them and reads the file.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ConfigError
from .scores import ScoreConfig
from .views import ViewConfig

__all__ = [
    "CASCADE_SCORES",
    "DEVICES",
    "OUTPUT_KINDS",
    "TRAINING_POLICIES",
    "BatchingConfig",
    "ModelSection",
    "RuntimeConfig",
    "TrainingConfig",
    "UncertaintyConfig",
]

OUTPUT_KINDS: tuple[str, ...] = ("logits", "probabilities")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
TRAINING_POLICIES: tuple[str, ...] = ("all", "hq")

# Scores that mean something for one view: the cascade ranks inputs before the other
# views exist, so diversity and mutual information (0 for one view) cannot serve.
CASCADE_SCORES: tuple[str, ...] = ("score", "entropy", "least_confidence", "margin")


def _check(owner: object, checks: tuple[tuple[str, bool, str], ...]) -> None:
    """Raise ``ConfigError`` for the first ``(field, valid, expected)`` not valid."""
    for name, valid, expected in checks:
        if not valid:
            raise ConfigError.invalid(
                type(owner).__name__, name, getattr(owner, name), expected
            )


@dataclass(frozen=True)
class ModelSection:
    """What the network is: class labels, output kind, tensor names (None = first)."""

    labels: tuple[str, ...] = ()
    output: str = "logits"
    input_name: str | None = None
    output_name: str | None = None

    def __post_init__(self) -> None:
        _check(
            self,
            (
                (
                    "labels",
                    len(set(self.labels)) == len(self.labels) and all(self.labels),
                    "distinct, non-empty label names",
                ),
                ("output", self.output in OUTPUT_KINDS, f"one of {OUTPUT_KINDS!r}"),
                (
                    "input_name",
                    self.input_name is None or bool(self.input_name),
                    "a tensor name, or no key for the first input",
                ),
                (
                    "output_name",
                    self.output_name is None or bool(self.output_name),
                    "a tensor name, or no key for the first output",
                ),
            ),
        )


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching: concurrent requests share runs of up to ``max_batch_size``
    rows. Rows that arrive while a run is in flight form the next batch. When the
    runtime is idle, a call waits up to ``max_queue_delay_ms`` for more rows, and
    ``busy_queue_delay_ms`` for the next call when it arrived less than that long
    after the previous one, or while recent calls arrived that close together on
    average: dense traffic finds company within that time, while a call that comes
    alone runs at once. A batch waits on while calls keep coming that close
    together, up to ``busy_max_delay_ms`` after its oldest call arrived, or until it
    holds as many rows as recent batches did. 0 turns each off."""

    enabled: bool = True
    max_batch_size: int = 64
    max_queue_delay_ms: float = 0.0
    busy_queue_delay_ms: float = 0.5
    busy_max_delay_ms: float = 2.0

    def __post_init__(self) -> None:
        _check(
            self,
            (
                ("max_batch_size", self.max_batch_size >= 1, "an integer >= 1"),
                (
                    "max_queue_delay_ms",
                    math.isfinite(self.max_queue_delay_ms)
                    and self.max_queue_delay_ms >= 0.0,
                    "milliseconds >= 0",
                ),
                (
                    "busy_queue_delay_ms",
                    math.isfinite(self.busy_queue_delay_ms)
                    and self.busy_queue_delay_ms >= 0.0,
                    "milliseconds >= 0",
                ),
                (
                    "busy_max_delay_ms",
                    math.isfinite(self.busy_max_delay_ms)
                    and self.busy_max_delay_ms >= 0.0,
                    "milliseconds >= 0",
                ),
            ),
        )


@dataclass(frozen=True)
class RuntimeConfig:
    """ONNX Runtime placement.

    ``intra_op_threads = 0`` chooses by measurement: a model whose one-row run fits
    ``inline_run_us`` runs on the event loop's thread alone (1 thread), since a pool
    of workers only adds wake-ups to a run that short; any other model gets ONNX
    Runtime's default, one thread per core. ``inter_op_threads = 0`` is ONNX
    Runtime's default.

    ``allow_spinning`` lets the intra-op workers busy-wait between the operators of
    a run instead of sleeping: a ResNet-18-sized run on 2 cores took about a fifth
    less time with it. It has no effect on a single-threaded session.

    ``inline_run_us``: runs measured to take less than this many microseconds run on
    the server's event loop thread instead of a runtime thread, because handing a
    run to a thread and back costs more than such a run (150 to 230 us measured on a
    2-core virtual machine). 0 sends every run to a runtime thread.
    """

    device: str = "auto"
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    allow_spinning: bool = True
    inline_run_us: float = 250.0

    def __post_init__(self) -> None:
        _check(
            self,
            (
                ("device", self.device in DEVICES, f"one of {DEVICES!r}"),
                ("intra_op_threads", self.intra_op_threads >= 0, "an integer >= 0"),
                ("inter_op_threads", self.inter_op_threads >= 0, "an integer >= 0"),
                (
                    "inline_run_us",
                    math.isfinite(self.inline_run_us) and self.inline_run_us >= 0.0,
                    "microseconds >= 0",
                ),
            ),
        )


@dataclass(frozen=True)
class UncertaintyConfig:
    """Views and scores, and the cascade that spares views on confident inputs.

    With ``cascade``, the server scores each input alone first and makes the other
    views only for those whose single-view ``cascade_score`` uncertainty (``1 -
    margin`` for the margin) is at least ``cascade_threshold``.
    """

    views: ViewConfig = field(default_factory=ViewConfig)
    scores: ScoreConfig = field(default_factory=ScoreConfig)
    cascade: bool = False
    cascade_score: str = "entropy"
    cascade_threshold: float = 0.1

    def __post_init__(self) -> None:
        _check(
            self,
            (
                (
                    "cascade_score",
                    self.cascade_score in CASCADE_SCORES,
                    f"one of {CASCADE_SCORES!r} (a score that needs one view)",
                ),
                (
                    "cascade_threshold",
                    math.isfinite(self.cascade_threshold),
                    "a finite number",
                ),
                (
                    "cascade",
                    not self.cascade or self.views.count > 1,
                    "false when views = 1 (there are no further views to spare)",
                ),
            ),
        )


@dataclass(frozen=True)
class TrainingConfig:
    """How the trainer fine-tunes each round.

    ``factory`` is ``"module:function"`` returning a ``torch.nn.Module``, called with
    ``factory_kwargs``; ``policy`` is ``"all"`` (every label so far) or ``"hq"``
    (ACFT-HQ: new labels, labelled candidates the model gets wrong, a replay share);
    ``epsilon`` is how much validation accuracy a new version may lose against the
    served one and still be published.
    """

    factory: str | None = None
    factory_kwargs: Mapping[str, object] = field(default_factory=dict)
    policy: str = "all"
    # Measured best by benchmarks/active_learning.py on digits: with 10 epochs at
    # 1e-3 the first rounds stay nearly untrained.
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    min_new_labels: int = 20
    replay_fraction: float = 0.5
    validation_fraction: float = 0.2
    epsilon: float = 0.005
    seed: int = 0

    def __post_init__(self) -> None:
        # A read-only copy, so that the frozen config cannot change under a caller.
        frozen_kwargs = types.MappingProxyType(dict(self.factory_kwargs))
        object.__setattr__(self, "factory_kwargs", frozen_kwargs)

        module, _, function = (self.factory or "").partition(":")
        _check(
            self,
            (
                (
                    "factory",
                    self.factory is None or bool(module and function),
                    "'module:function', e.g. 'activeserve.trainer.models:small_cnn'",
                ),
                (
                    "policy",
                    self.policy in TRAINING_POLICIES,
                    f"one of {TRAINING_POLICIES!r}",
                ),
                ("epochs", self.epochs >= 1, "an integer >= 1"),
                ("batch_size", self.batch_size >= 1, "an integer >= 1"),
                (
                    "learning_rate",
                    math.isfinite(self.learning_rate) and self.learning_rate > 0.0,
                    "a rate > 0, e.g. 1e-3",
                ),
                ("weight_decay", self.weight_decay >= 0.0, "a number >= 0"),
                ("min_new_labels", self.min_new_labels >= 1, "an integer >= 1"),
                (
                    "replay_fraction",
                    0.0 <= self.replay_fraction <= 1.0,
                    "a fraction in [0, 1]",
                ),
                (
                    "validation_fraction",
                    0.0 <= self.validation_fraction < 1.0,
                    "a fraction in [0, 1)",
                ),
                ("epsilon", 0.0 <= self.epsilon < 1.0, "a tolerance in [0, 1)"),
                ("seed", self.seed >= 0, "an integer >= 0"),
            ),
        )
