"""`Client`: predictions with uncertainty, review of flagged samples, queue statistics.

    with Client("127.0.0.1:8001") as client:
        result = client.predict("digits", images)          # images: [N, 1, 8, 8]
        print(result.labels, result.scores["score"], result.flagged)

        for item in client.review("digits", batch=8):
            item.submit(ask_a_human(item.input))

Every call has a timeout (`timeout_s`, per client, overridable per call); a failed call
raises a `ClientError` subclass carrying the server's message and status.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from activeserve.client.errors import Conflict, from_rpc_error
from activeserve.client.results import (
    LabelledSample,
    PredictResult,
    QueueStats,
    StoppingStatus,
)
from activeserve.client.review import ReviewItem
from activeserve.proto import feedback_pb2, feedback_pb2_grpc, names
from activeserve.proto import inference as oip
from activeserve.proto.codec import datatype_of, decode_raw, encode_raw, from_tensor

logger = logging.getLogger(__name__)

MiB = 1024 * 1024


class Client:
    """A connection to one activeserve server. Thread-safe; close it when done."""

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 30.0,
        tls: bool = False,
        root_certificates: bytes | None = None,
        token: str | None = None,
        max_message_mb: int = 64,
    ) -> None:
        """`address` is HOST:PORT. With `tls`, the channel is encrypted (server
        certificates checked against `root_certificates`, or the system's roots);
        `token`, when given, travels as a bearer token on every call."""
        options = [
            ("grpc.max_receive_message_length", max_message_mb * MiB),
            ("grpc.max_send_message_length", max_message_mb * MiB),
        ]
        if tls:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self.address = address
        self.timeout_s = timeout_s
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.inference = oip.InferenceStub(self._channel)
        # Stubs of the services, for calls the methods below do not cover.
        self.feedback = feedback_pb2_grpc.FeedbackStub(self._channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    @property
    def channel(self) -> grpc.Channel:
        """The underlying channel, for stubs of other services."""
        return self._channel

    def call(self, method: Any, request: Any, timeout_s: float | None = None) -> Any:
        """Invoke a unary stub method with the client's timeout and credentials."""
        try:
            return method(
                request,
                timeout=timeout_s or self.timeout_s,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def is_ready(self, model: str | None = None) -> bool:
        """Whether the server (or one model on it) is ready to serve."""
        if model is None:
            return bool(
                self.call(self.inference.ServerReady, oip.ServerReadyRequest()).ready
            )
        request = oip.ModelReadyRequest(name=model)
        return bool(self.call(self.inference.ModelReady, request).ready)

    def predict(
        self,
        model: str,
        inputs: np.ndarray,
        *,
        version: str = "",
        input_name: str = "input",
        candidate_views: int | None = None,
        flag: bool = True,
        timeout_s: float | None = None,
    ) -> PredictResult:
        """Predictions and uncertainty for `inputs` (`[N, ...]`, one row a candidate).

        `candidate_views = m` says the rows are your own views, `m` consecutive rows per
        candidate; `flag = False` keeps these inputs out of the label queue.
        """
        inputs = np.ascontiguousarray(inputs)
        request = oip.ModelInferRequest(model_name=model, model_version=version)
        request.inputs.add(
            name=input_name,
            datatype=datatype_of(inputs.dtype),
            shape=list(inputs.shape),
        )
        request.raw_input_contents.append(encode_raw(inputs))
        if candidate_views is not None:
            request.parameters[names.CANDIDATE_VIEWS].int64_param = candidate_views
        if not flag:
            request.parameters[names.FLAG].bool_param = False

        response = self.call(self.inference.ModelInfer, request, timeout_s)
        outputs = {
            tensor.name: decode_raw(
                tensor.datatype, tensor.shape, raw, tensor=tensor.name
            )
            for tensor, raw in zip(
                response.outputs, response.raw_output_contents, strict=True
            )
        }
        return PredictResult(
            model=response.model_name,
            version=int(response.model_version),
            labels=outputs[names.LABEL],
            probabilities=outputs[names.PROBABILITIES],
            scores={name: outputs[name] for name in names.SCORE_OUTPUTS},
            flagged=outputs[names.FLAGGED],
            sample_ids=outputs[names.SAMPLE_ID],
            outputs=outputs,
        )

    def review(
        self,
        model: str,
        *,
        batch: int = 8,
        lease_s: float = 300.0,
        reviewer: str | None = None,
    ) -> Iterator[ReviewItem]:
        """Flagged samples to label, highest priority first, leased `batch` at a time.

        Each item is yours alone for `lease_s` seconds; call `submit(label)`, `skip()`
        or `unclassifiable()` on it. The iteration ends when nothing is left to lease,
        so every pending sample comes once. When it ends (or the loop is left early),
        items still unanswered are released for other reviewers; answering one later
        still works unless someone has leased it since.
        """
        who = reviewer or getpass.getuser()
        leased_items: list[ReviewItem] = []
        try:
            while True:
                request = feedback_pb2.LeaseRequest(
                    model_name=model, count=batch, lease_s=lease_s, reviewer=who
                )
                leased = self.call(self.feedback.Lease, request)
                if not leased.samples:
                    return
                labels = list(leased.class_labels)
                batch_items = [
                    ReviewItem.from_proto(self, sample, labels, who)
                    for sample in leased.samples
                ]
                leased_items.extend(batch_items)
                yield from batch_items
        finally:
            for item in leased_items:
                if item.answered:
                    continue
                try:
                    item.release()
                except Conflict:
                    # The lease lapsed and someone else took the sample: nothing to
                    # give back.
                    logger.debug("sample %d: lease already lost", item.sample_id)

    def queue_stats(self, model: str, *, last_n: int = 0) -> QueueStats:
        """Counts per state, flag rate, evictions, agreement, stopping criteria."""
        request = feedback_pb2.QueueStatsRequest(model_name=model, last_n=last_n)
        stats = self.call(self.feedback.QueueStats, request)
        return QueueStats(
            model=stats.model_name,
            counts=dict(stats.counts),
            flagged_total=stats.flagged_total,
            evictions=stats.evictions,
            flag_rate=stats.flag_rate,
            oldest_pending_age_s=stats.oldest_pending_age_s,
            agreement=stats.agreement if stats.HasField("agreement") else None,
            unclassifiable_fraction=(
                stats.unclassifiable_fraction
                if stats.HasField("unclassifiable_fraction")
                else None
            ),
            labels_total=stats.labels_total,
            stopping=StoppingStatus(
                stop=stats.stopping.stop,
                reasons=tuple(stats.stopping.reasons),
                detail=dict(stats.stopping.detail),
            ),
        )

    def labelled(
        self,
        model: str,
        *,
        after: int = 0,
        follow: bool = False,
        timeout_s: float | None = None,
    ) -> Iterator[LabelledSample]:
        """Labelled samples with a cursor above `after`, in cursor order.

        Resume after a restart by passing the last cursor you processed. With `follow`,
        the stream stays open and yields new labels as reviewers give them (pass
        `timeout_s` to bound it).
        """
        request = feedback_pb2.StreamLabelsRequest(
            model_name=model, after=after, follow=follow
        )
        stream = self.feedback.StreamLabels(
            request,
            timeout=timeout_s if follow else (timeout_s or self.timeout_s),
            metadata=self._metadata,
        )
        try:
            for message in stream:
                yield _labelled(message)
        except grpc.RpcError as error:
            if follow and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return
            raise from_rpc_error(error) from None
        finally:
            stream.cancel()


def _labelled(message: feedback_pb2.LabelledSample) -> LabelledSample:
    sample = message.sample
    return LabelledSample(
        sample_id=sample.id,
        model=sample.model_name,
        model_version=sample.model_version,
        input=from_tensor(sample.input, tensor="input"),
        label=message.label,
        unclassifiable=message.unclassifiable,
        predicted_label=sample.predicted_label,
        probabilities=np.asarray(sample.probabilities, dtype=np.float32),
        scores=dict(sample.scores),
        reviewer=message.reviewer,
        labelled_at=message.labelled_at,
        cursor=message.cursor,
    )


__all__: Sequence[str] = ("Client",)
