"""Target (a): ONNX Runtime called in the load generator's own process.

No transport, no server: each request is one ``session.run`` on a one-row payload,
run in a thread pool (ONNX Runtime releases the GIL while it computes) so that the
same closed loop drives it at the same concurrency. It is the compute limit for
one-row requests; a batching server can pass it, because one batched run costs
less than its rows run one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from benchmarks.cpu_split import pin_this_process
from benchmarks.loadgen import RequestSender
from benchmarks.models import ExportedModel
from benchmarks.targets.base import RunContext, Target

logger = logging.getLogger(__name__)


class SessionSender:
    """Runs one payload per request on an ONNX Runtime session in a thread pool."""

    def __init__(
        self,
        session: ort.InferenceSession,
        model: ExportedModel,
        payloads: Sequence[npt.NDArray[np.float32]],
        executor: ThreadPoolExecutor,
    ) -> None:
        self._session = session
        self._input_name = model.input_name
        self._output_names = [model.output_name]
        self._payloads = list(payloads)
        self._executor = executor

    def _run(self, payload_index: int) -> None:
        self._session.run(
            self._output_names, {self._input_name: self._payloads[payload_index]}
        )

    async def send(self, payload_index: int) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._run, payload_index)


class OnnxRuntimeTarget(Target):
    """Target (a): the compute limit."""

    name = "onnxruntime"
    description = "ONNX Runtime in-process, one session.run per request (compute limit)"

    @contextlib.asynccontextmanager
    async def open(
        self,
        model: ExportedModel,
        payloads: Sequence[npt.NDArray[np.float32]],
        context: RunContext,
    ) -> AsyncIterator[RequestSender]:
        # In-process, this target is its own server: under a CPU split it runs on
        # the server's cores, and the session's threads, made next, inherit them.
        split = context.cpu_split
        if split is not None:
            pin_this_process(split.server)
        try:
            session = ort.InferenceSession(
                str(model.onnx_path), providers=["CPUExecutionProvider"]
            )

            # One thread per request in flight: the pool must never be what limits
            # the concurrency.
            with ThreadPoolExecutor(
                max_workers=context.max_concurrency, thread_name_prefix="ort-bench"
            ) as executor:
                logger.info("onnxruntime session ready for %s", model.spec.name)
                yield SessionSender(session, model, payloads, executor)
        finally:
            if split is not None:
                pin_this_process(split.client)
