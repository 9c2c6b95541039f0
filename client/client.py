"""`Client`: predictions with uncertainty, review of flagged samples, queue statistics,
and model versions (list, fetch, publish, roll back).

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
import hashlib
import json
import logging
from collections.abc import Generator, Iterator, Sequence
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from activeserve.client.errors import Conflict, from_rpc_error
from activeserve.client.models import (
    FetchedVersion,
    ModelVersions,
    PublishResult,
    VersionInfo,
)
from activeserve.client.results import (
    LabelledSample,
    PredictResult,
    QueueStats,
    StoppingStatus,
)
from activeserve.client.review import ReviewItem
from activeserve.proto import (
    feedback_pb2,
    feedback_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    names,
)
from activeserve.proto import inference as oip
from activeserve.proto.codec import (
    datatype_of,
    decode_raw,
    encode_raw,
    from_tensor,
    to_tensor,
)

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
        self.models = models_pb2_grpc.ModelsStub(self._channel)

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
    ) -> Generator[ReviewItem, None, None]:
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

    def list_versions(self, model: str) -> ModelVersions:
        """Every version of `model` with its metadata, and which one serves."""
        request = models_pb2.ListVersionsRequest(model_name=model)
        response = self.call(self.models.ListVersions, request)
        return ModelVersions(
            model=model,
            serving=response.serving_version,
            versions=tuple(
                VersionInfo(
                    version=info.version,
                    serving=info.serving,
                    metadata=_json_object(info.metadata_json),
                )
                for info in response.versions
            ),
        )

    def fetch_version(
        self, model: str, version: int = 0, *, timeout_s: float | None = None
    ) -> FetchedVersion:
        """The files of `version` of `model` (0: the version being served), and the
        model's config.toml; see `FetchedVersion`."""
        request = models_pb2.FetchVersionRequest(model_name=model, version=version)
        stream = self.models.FetchVersion(
            request, timeout=timeout_s or self.timeout_s, metadata=self._metadata
        )
        parts: dict[str, list[bytes]] = {}
        fetched = version
        try:
            for chunk in stream:
                parts.setdefault(chunk.file_name, []).append(chunk.data)
                fetched = chunk.version
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

        files = {name: b"".join(chunks) for name, chunks in parts.items()}
        metadata = files.get("metadata.json", b"{}").decode("utf-8")
        return FetchedVersion(
            model=model,
            version=fetched,
            files=files,
            metadata=_json_object(metadata),
        )

    def publish(
        self,
        model: str,
        *,
        onnx: bytes,
        weights: bytes,
        metadata: dict[str, Any],
        parent_version: int,
        probe_input: np.ndarray,
        probe_expected: np.ndarray,
        probe_atol: float = 1e-4,
        chunk_bytes: int = 1 << 20,
        timeout_s: float | None = None,
    ) -> PublishResult:
        """Hand the server a new version of `model` and have it served.

        The server checks it before serving it: `probe_input` (`[n, *S]`, the model's
        input datatype) run through `onnx` must give `probe_expected` (the class
        output, `[n, K]`) within `probe_atol`; its input and classes must be those of
        the version served; `weights` must be safetensors. A refused version raises
        (`InvalidArgument` for a bad upload, `Conflict` for a probe mismatch) and the
        served version keeps serving. Files travel in `chunk_bytes` pieces.
        """
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes is {chunk_bytes!r}; expected a size >= 1")
        files = {"model.onnx": onnx, "weights.safetensors": weights}
        header = models_pb2.PublishHeader(
            model_name=model,
            parent_version=parent_version,
            metadata_json=json.dumps(metadata),
            probe_input=to_tensor(np.ascontiguousarray(probe_input)),
            probe_expected=to_tensor(np.ascontiguousarray(probe_expected)),
            probe_atol=probe_atol,
            sha256={
                name: hashlib.sha256(data).hexdigest() for name, data in files.items()
            },
        )

        def chunks() -> Iterator[models_pb2.PublishChunk]:
            yield models_pb2.PublishChunk(header=header)
            for name, data in files.items():
                for start in range(0, max(len(data), 1), chunk_bytes):
                    piece = data[start : start + chunk_bytes]
                    yield models_pb2.PublishChunk(
                        file=models_pb2.FileChunk(file_name=name, data=piece)
                    )

        response = self.call(self.models.Publish, chunks(), timeout_s)
        logger.info("published %s version %d", model, response.version)
        return PublishResult(
            model=model,
            version=response.version,
            probe_max_abs_diff=response.probe_max_abs_diff,
        )

    def rollback(self, model: str, version: int = 0) -> int:
        """Serve `version` of `model` again (0: the one before the version being
        served); returns the version now served. The choice survives restarts."""
        request = models_pb2.RollbackRequest(model_name=model, version=version)
        return int(self.call(self.models.Rollback, request).version)


def _json_object(text: str) -> dict[str, Any]:
    data = json.loads(text) if text else {}
    return data if isinstance(data, dict) else {}


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
