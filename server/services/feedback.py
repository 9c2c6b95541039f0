"""The Feedback service (`activeserve.v1.Feedback`): reviewers lease flagged samples
and answer them; the trainer streams the answers.

Store calls block on the database, so each runs in a worker thread; the event loop
keeps serving inference meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from activeserve.proto import feedback_pb2, feedback_pb2_grpc, tensor_pb2
from activeserve.server.errors import InvalidRequest
from activeserve.server.flagging import QueueFlagger
from activeserve.server.queue import (
    QueueStore,
    Sample,
    SampleNotFound,
    SampleState,
)
from activeserve.server.registry import ModelRegistry
from activeserve.server.services.guard import streaming, unary
from activeserve.server.stopping_status import stopping_status

logger = logging.getLogger(__name__)

STREAM_PAGE = 256
FOLLOW_POLL_S = 0.5
DEFAULT_LEASE_S = 300.0
MAX_LEASE_COUNT = 1000

_STATES = {
    SampleState.PENDING: feedback_pb2.SAMPLE_STATE_PENDING,
    SampleState.LEASED: feedback_pb2.SAMPLE_STATE_LEASED,
    SampleState.LABELLED: feedback_pb2.SAMPLE_STATE_LABELLED,
    SampleState.SKIPPED: feedback_pb2.SAMPLE_STATE_SKIPPED,
    SampleState.UNCLASSIFIABLE: feedback_pb2.SAMPLE_STATE_UNCLASSIFIABLE,
}


class FeedbackService(feedback_pb2_grpc.FeedbackServicer):
    """Handlers of `activeserve.v1.Feedback` over a queue store."""

    def __init__(
        self, store: QueueStore, registry: ModelRegistry, flagger: QueueFlagger
    ) -> None:
        self._store = store
        self._registry = registry
        self._flagger = flagger

    def add_to(self, server: grpc.aio.Server) -> None:
        feedback_pb2_grpc.add_FeedbackServicer_to_server(self, server)

    @unary
    async def Lease(self, request: Any, context: Any) -> Any:
        model = await self._registry.get(request.model_name)
        count = request.count or 1
        if not 1 <= count <= MAX_LEASE_COUNT:
            raise InvalidRequest(
                f"lease count {request.count} is out of range; expected 1 to "
                f"{MAX_LEASE_COUNT}"
            )
        lease_s = request.lease_s or DEFAULT_LEASE_S
        if lease_s <= 0:
            raise InvalidRequest(f"lease_s {lease_s} must be positive (seconds)")
        reviewer = request.reviewer or context.peer()

        samples = await asyncio.to_thread(
            self._store.lease, model.name, count, lease_s, reviewer
        )
        response = feedback_pb2.LeaseResponse(class_labels=list(model.labels))
        response.samples.extend(_sample(sample) for sample in samples)
        return response

    @unary
    async def Release(self, request: Any, context: Any) -> Any:
        await asyncio.to_thread(
            self._store.release, request.sample_id, request.lease_token
        )
        return feedback_pb2.ReleaseResponse()

    @unary
    async def SubmitLabel(self, request: Any, context: Any) -> Any:
        sample = await self._sample_or_raise(request.sample_id)
        model = await self._registry.get(sample.model_name)
        if not 0 <= request.label < model.num_classes:
            raise InvalidRequest(
                f"label {request.label} is not a class of model {model.name!r}; "
                f"expected 0 to {model.num_classes - 1} ({list(model.labels)!r})"
            )
        result = await asyncio.to_thread(
            self._store.submit_label,
            request.sample_id,
            request.label,
            request.reviewer or context.peer(),
            request.lease_token or None,
            num_classes=model.num_classes,
        )
        return feedback_pb2.SubmitLabelResponse(recorded=result.recorded)

    @unary
    async def Skip(self, request: Any, context: Any) -> Any:
        await asyncio.to_thread(
            self._store.skip,
            request.sample_id,
            request.reviewer or context.peer(),
            request.lease_token or None,
        )
        return feedback_pb2.SkipResponse()

    @unary
    async def MarkUnclassifiable(self, request: Any, context: Any) -> Any:
        await asyncio.to_thread(
            self._store.mark_unclassifiable,
            request.sample_id,
            request.reviewer or context.peer(),
            request.lease_token or None,
        )
        return feedback_pb2.MarkUnclassifiableResponse()

    @unary
    async def QueueStats(self, request: Any, context: Any) -> Any:
        model = await self._registry.get(request.model_name)
        last_n = request.last_n or model.config.stopping.window
        stats = await asyncio.to_thread(self._store.stats, model.name, last_n)
        decision = await asyncio.to_thread(
            stopping_status,
            self._store,
            self._registry.repository,
            model.name,
            model.config,
        )
        counters = self._flagger.counters.get(model.name)

        response = feedback_pb2.QueueStatsResponse(
            model_name=model.name,
            counts=dict(stats.counts),
            flagged_total=stats.flagged_total,
            evictions=stats.evictions,
            flag_rate=counters.flag_rate if counters else 0.0,
            oldest_pending_age_s=stats.oldest_pending_age_s or 0.0,
            labels_total=stats.labels_total,
        )
        if stats.agreement is not None:
            response.agreement = stats.agreement
        if stats.unclassifiable_fraction is not None:
            response.unclassifiable_fraction = stats.unclassifiable_fraction
        response.stopping.stop = decision.stop
        response.stopping.reasons.extend(decision.reasons)
        response.stopping.detail.update(decision.detail)
        return response

    @streaming
    async def StreamLabels(
        self, request: Any, context: Any
    ) -> AsyncIterator[feedback_pb2.LabelledSample]:
        self._registry.repository.model_dir(request.model_name)
        if request.after < 0:
            raise InvalidRequest(
                f"cursor {request.after} is negative; start from 0, or resume from "
                "the last cursor received"
            )
        cursor = request.after
        while True:
            page = await asyncio.to_thread(
                self._store.labelled_after, request.model_name, cursor, STREAM_PAGE
            )
            for sample in page:
                yield _labelled(sample)
                cursor = sample.label_seq or cursor
            if len(page) == STREAM_PAGE:
                continue
            if not request.follow:
                return
            await asyncio.sleep(FOLLOW_POLL_S)

    async def _sample_or_raise(self, sample_id: int) -> Sample:
        sample = await asyncio.to_thread(self._store.get, sample_id)
        if sample is None:
            raise SampleNotFound(f"no sample with id {sample_id}")
        return sample


def _sample(sample: Sample) -> feedback_pb2.Sample:
    message = feedback_pb2.Sample(
        id=sample.id,
        model_name=sample.model_name,
        model_version=sample.model_version,
        input=tensor_pb2.Tensor(
            datatype=sample.datatype, shape=list(sample.shape), data=sample.input_bytes
        ),
        probabilities=list(sample.probabilities),
        scores=dict(sample.scores),
        predicted_label=sample.predicted_label,
        priority=sample.priority,
        state=_STATES[sample.state],
        created_at=sample.created_at,
        lease_token=sample.lease_token or "",
        lease_expires_at=sample.lease_expires_at or 0.0,
    )
    return message


def _labelled(sample: Sample) -> feedback_pb2.LabelledSample:
    unclassifiable = sample.state is SampleState.UNCLASSIFIABLE
    return feedback_pb2.LabelledSample(
        sample=_sample(sample),
        label=-1 if unclassifiable or sample.label is None else sample.label,
        reviewer=sample.reviewer or "",
        labelled_at=sample.labelled_at or 0.0,
        cursor=sample.label_seq or 0,
        unclassifiable=unclassifiable,
    )
