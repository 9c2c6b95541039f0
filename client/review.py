"""A flagged sample leased to one reviewer, and the three answers they can give."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from activeserve.proto import feedback_pb2
from activeserve.proto.codec import from_tensor

if TYPE_CHECKING:
    from activeserve.client.client import Client


@dataclass
class ReviewItem:
    """One sample to label: the input as a numpy array, the model's prediction at flag
    time, its scores and version. Answer with `submit`, `skip` or `unclassifiable`."""

    sample_id: int
    input: np.ndarray
    predicted_label: int
    probabilities: np.ndarray
    scores: dict[str, float]
    model: str
    model_version: str
    class_labels: list[str]
    lease_token: str
    lease_expires_at: float
    _client: Client = field(repr=False)
    _reviewer: str = field(repr=False)
    answered: bool = False

    @classmethod
    def from_proto(
        cls,
        client: Client,
        sample: feedback_pb2.Sample,
        class_labels: list[str],
        reviewer: str,
    ) -> ReviewItem:
        return cls(
            sample_id=sample.id,
            input=from_tensor(sample.input, tensor="input"),
            predicted_label=sample.predicted_label,
            probabilities=np.asarray(sample.probabilities, dtype=np.float32),
            scores=dict(sample.scores),
            model=sample.model_name,
            model_version=sample.model_version,
            class_labels=class_labels,
            lease_token=sample.lease_token,
            lease_expires_at=sample.lease_expires_at,
            _client=client,
            _reviewer=reviewer,
        )

    @property
    def predicted_class(self) -> str:
        """The predicted class's name (its id as text when the model names none)."""
        if 0 <= self.predicted_label < len(self.class_labels):
            return self.class_labels[self.predicted_label]
        return str(self.predicted_label)

    def class_id(self, label: int | str) -> int:
        """Class id of a label given as an id or as one of `class_labels`."""
        if isinstance(label, str) and label in self.class_labels:
            return self.class_labels.index(label)
        if isinstance(label, str) and not label.lstrip("-").isdigit():
            raise ValueError(
                f"label {label!r} is not a class of model {self.model!r}; "
                f"expected one of {self.class_labels!r} or a class id"
            )
        return int(label)

    def submit(self, label: int | str) -> bool:
        """Record the human label; returns False when the same label was already
        recorded (submitting twice is harmless)."""
        request = feedback_pb2.SubmitLabelRequest(
            sample_id=self.sample_id,
            label=self.class_id(label),
            reviewer=self._reviewer,
            lease_token=self.lease_token,
        )
        response = self._client.call(self._client.feedback.SubmitLabel, request)
        self.answered = True
        return bool(response.recorded)

    def skip(self) -> None:
        """Leave the sample unlabelled; no one is asked for it again."""
        request = feedback_pb2.SkipRequest(
            sample_id=self.sample_id,
            reviewer=self._reviewer,
            lease_token=self.lease_token,
        )
        self._client.call(self._client.feedback.Skip, request)
        self.answered = True

    def unclassifiable(self) -> None:
        """Mark the sample as one no class fits (the data's own ambiguity)."""
        request = feedback_pb2.MarkUnclassifiableRequest(
            sample_id=self.sample_id,
            reviewer=self._reviewer,
            lease_token=self.lease_token,
        )
        self._client.call(self._client.feedback.MarkUnclassifiable, request)
        self.answered = True

    def release(self) -> None:
        """Give the sample back to the queue unanswered."""
        if not self.lease_token:
            return
        request = feedback_pb2.ReleaseRequest(
            sample_id=self.sample_id, lease_token=self.lease_token
        )
        self._client.call(self._client.feedback.Release, request)
        # Without a token an answer is still taken, unless another reviewer has
        # leased the sample since.
        self.lease_token = ""
