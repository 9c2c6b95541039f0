"""Values that go into and come out of a label-request queue store.

A flagged input enters as a :class:`NewSample` and lives in the store as a
:class:`Sample` moving through the states of :class:`SampleState`::

    pending ──lease──▶ leased ──submit_label──▶ labelled
       ▲                 │ ├──mark_unclassifiable──▶ unclassifiable
       └─release/expiry──┘ └──skip──▶ skipped

A lease that expires without a verdict makes its sample pending again; the store
reports such a sample as pending without rewriting it. A skipped sample is no longer
offered by ``lease`` but can still be labelled by whoever comes back to it.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import numpy as np

from activeserve.server.queue.errors import InvalidSample

__all__ = [
    "AddOutcome",
    "AddResult",
    "NewSample",
    "QueueStats",
    "Sample",
    "SampleState",
    "SubmitResult",
    "content_hash",
]

# Bytes per element of each Open Inference Protocol datatype; BYTES has no fixed size.
_ITEM_SIZES: dict[str, int | None] = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "BF16": 2,
    "FP32": 4,
    "FP64": 8,
    "BYTES": None,
}


class SampleState(str, Enum):
    """Where a sample is in its review; the value is what the store persists."""

    PENDING = "pending"
    LEASED = "leased"
    LABELLED = "labelled"
    SKIPPED = "skipped"
    UNCLASSIFIABLE = "unclassifiable"


def content_hash(datatype: str, shape: tuple[int, ...], input_bytes: bytes) -> str:
    """sha256 (hex) identifying an input: same bytes, datatype and shape, same hash.

    The datatype and shape are part of the digest so that, say, four FP32 zeros and
    sixteen UINT8 zeros (the same bytes) are different inputs.
    """
    digest = hashlib.sha256()
    header = f"{datatype}:{','.join(str(d) for d in shape)}:".encode()
    digest.update(struct.pack("<I", len(header)))
    digest.update(header)
    digest.update(input_bytes)
    return digest.hexdigest()


@dataclass(frozen=True)
class NewSample:
    """A flagged input offered to the queue.

    Attributes:
        model_name, model_version: The model (and version) that flagged the input.
        input_bytes: The input tensor's raw contents, little-endian, row-major, as in
            the Open Inference Protocol's ``raw_input_contents``.
        datatype: Open Inference Protocol datatype of the input, e.g. ``"FP32"``.
        shape: The input's shape; ``prod(shape) * itemsize == len(input_bytes)``
            for every datatype but ``BYTES``.
        probabilities: Class probabilities, shape ``[K]``; any sequence or numpy
            array is accepted and stored as float32.
        scores: Uncertainty scores by name (``score``, ``entropy``, ``diversity``,
            ``least_confidence``, ``margin``, ``mutual_information``, ...).
        priority: How worth labelling the input is; higher is more. Must be finite.
        predicted_label: The model's class at flag time, ``0 <= predicted_label < K``.
        max_pending: The model's own bound on pending samples (its ``[flag]
            max_pending``); None means the store's ``QueueConfig.max_pending``.

    Raises:
        InvalidSample: When the fields disagree; the message names the field.
    """

    model_name: str
    model_version: str
    input_bytes: bytes
    datatype: str
    shape: tuple[int, ...]
    probabilities: tuple[float, ...]
    scores: Mapping[str, float]
    priority: float
    predicted_label: int
    max_pending: int | None = None

    def __post_init__(self) -> None:
        if self.max_pending is not None and self.max_pending < 1:
            raise InvalidSample(
                f"max_pending {self.max_pending!r} must be a positive bound, or None "
                "for the store's default"
            )

        if not self.model_name:
            raise InvalidSample("model_name is empty; give the flagging model's name")

        if self.datatype not in _ITEM_SIZES:
            raise InvalidSample(
                f"datatype {self.datatype!r} is not an Open Inference Protocol "
                f"datatype; expected one of {sorted(_ITEM_SIZES)}"
            )

        shape = tuple(int(d) for d in self.shape)
        if any(d < 0 for d in shape):
            raise InvalidSample(f"shape {shape!r} has a negative dimension")
        object.__setattr__(self, "shape", shape)

        item_size = _ITEM_SIZES[self.datatype]
        if item_size is not None:
            expected = math.prod(shape) * item_size
            if len(self.input_bytes) != expected:
                raise InvalidSample(
                    f"input_bytes holds {len(self.input_bytes)} bytes but a "
                    f"{self.datatype} tensor of shape {shape!r} needs {expected}"
                )

        probabilities = np.asarray(self.probabilities, dtype=np.float32).reshape(-1)
        if probabilities.size == 0 or not np.all(np.isfinite(probabilities)):
            raise InvalidSample(
                f"probabilities {self.probabilities!r} must be a non-empty vector "
                f"of finite numbers"
            )
        object.__setattr__(self, "probabilities", tuple(probabilities.tolist()))

        object.__setattr__(
            self, "scores", {str(k): float(v) for k, v in self.scores.items()}
        )

        if not math.isfinite(self.priority):
            raise InvalidSample(f"priority {self.priority!r} must be a finite number")

        num_classes = probabilities.size
        if not 0 <= self.predicted_label < num_classes:
            raise InvalidSample(
                f"predicted_label {self.predicted_label!r} is not a class index for "
                f"{num_classes} probabilities; expected 0..{num_classes - 1}"
            )

    @cached_property
    def content_hash(self) -> str:
        """sha256 hex of (datatype, shape, input_bytes); the store dedupes on it."""
        return content_hash(self.datatype, self.shape, self.input_bytes)


@dataclass(frozen=True)
class Sample:
    """A queued sample as the store holds it, read at one instant.

    ``state`` is the effective state at read time: a sample whose lease has expired
    reads as ``PENDING`` while still showing the expired lease's ``lease_token``,
    ``leased_by`` and ``lease_expires_at``. Times are seconds since the epoch, taken
    from the store's clock. ``label_seq`` is the cursor of a labelled or
    unclassifiable sample (``labelled_after``), ``None`` otherwise. ``reviewer`` is
    who gave the verdict (label, skip or unclassifiable).
    """

    id: int
    model_name: str
    model_version: str
    input_bytes: bytes = field(repr=False)
    datatype: str
    shape: tuple[int, ...]
    probabilities: tuple[float, ...] = field(repr=False)
    scores: Mapping[str, float]
    priority: float
    predicted_label: int
    content_hash: str
    state: SampleState
    created_at: float
    updated_at: float
    labelled_at: float | None = None
    label: int | None = None
    reviewer: str | None = None
    leased_by: str | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    label_seq: int | None = None


class AddOutcome(str, Enum):
    """What ``add`` did with a NewSample."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    """The same input was queued before for this model (in any state)."""
    REJECTED = "rejected"
    """The model's pending queue is full of samples with higher or equal priority."""


@dataclass(frozen=True)
class AddResult:
    """Result of one ``add``.

    ``sample_id`` is the new sample's id (QUEUED), the existing one's (DUPLICATE), or
    ``None`` (REJECTED). ``evicted_id`` is the pending sample deleted to make room.
    """

    outcome: AddOutcome
    sample_id: int | None
    evicted_id: int | None = None

    @property
    def queued(self) -> bool:
        return self.outcome is AddOutcome.QUEUED


@dataclass(frozen=True)
class SubmitResult:
    """Result of a verdict (label or unclassifiable).

    ``recorded`` is False when the same verdict was already recorded: the call was a
    repeat and changed nothing. ``sample`` is the sample after the call.
    """

    sample: Sample
    recorded: bool


@dataclass(frozen=True)
class QueueStats:
    """One model's queue at one instant.

    Attributes:
        counts: Samples per state, keyed by ``SampleState`` value; every state is
            present. Expired leases count as pending.
        flagged_total: Samples ever queued for the model (duplicates and rejected
            ones excluded; evicted ones included).
        evictions: Pending samples deleted to make room for higher priorities.
        labels_total: Samples in state labelled.
        oldest_pending_age_s: Age of the oldest pending sample; None if none.
        agreement: Fraction of the last ``last_n`` labelled samples whose predicted
            label at flag time equals the human label; None before the first label.
        unclassifiable_fraction: Fraction of the last ``last_n`` reviewed samples
            (labelled or unclassifiable) marked unclassifiable; None before any.
    """

    model_name: str
    counts: Mapping[str, int]
    flagged_total: int
    evictions: int
    labels_total: int
    oldest_pending_age_s: float | None
    agreement: float | None
    unclassifiable_fraction: float | None
    last_n: int

    @property
    def pending(self) -> int:
        return self.counts[SampleState.PENDING.value]

    @property
    def leased(self) -> int:
        return self.counts[SampleState.LEASED.value]
