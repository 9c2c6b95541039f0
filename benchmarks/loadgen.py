"""The one load generator that every serving target is measured with.

A closed loop: ``concurrency`` workers each keep exactly one request in flight, sending
the next as soon as the previous one answers. Every worker runs through a warm-up phase
first; only requests that *complete* inside the timed window that follows are counted,
so the window measures a steady state. Requests carry one row each (shape ``[1, ...]``),
so rows/s equals requests/s unless a caller says otherwise.

The requests themselves go through a :class:`RequestSender`: :class:`GrpcSender` speaks
the Open Inference Protocol with tritonclient's asyncio client, and the in-process
ONNX Runtime target supplies a sender of its own, so that every target sees the same
payloads under the same loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput

logger = logging.getLogger(__name__)


class LoadGenError(Exception):
    """Raised when a load cannot be generated or a target answers wrongly."""


class RequestSender(Protocol):
    """Sends one inference request and waits for its answer.

    ``payload_index`` selects one of the payloads the sender was built with; the
    load generator cycles through them. An exception means the request failed.
    """

    async def send(self, payload_index: int) -> None: ...


@dataclass(frozen=True)
class LoadSpec:
    """How hard and how long to drive one target.

    ``concurrency`` requests stay in flight at all times; ``warmup_s`` runs the same
    load unmeasured first; ``duration_s`` is the timed window.
    """

    concurrency: int
    duration_s: float
    warmup_s: float = 1.0
    rows_per_request: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(
                f"concurrency {self.concurrency!r} is below 1; "
                "at least one request must be in flight"
            )
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError(
                f"duration_s {self.duration_s!r} and warmup_s {self.warmup_s!r} must "
                "be positive and non-negative; give the timed window a length"
            )


@dataclass(frozen=True)
class LoadResult:
    """What one timed window measured.

    Latencies are per request, from just before the send to the answer, in
    milliseconds. ``errors`` counts failed requests completing in the window; they
    are left out of the rates and latencies.
    """

    concurrency: int
    duration_s: float
    requests: int
    errors: int
    # Requests answered from the first send to the last answer, warm-up included:
    # what a server's CPU time over the whole load is divided by.
    completed: int
    requests_per_s: float
    rows_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "errors": self.errors,
            "completed": self.completed,
            "requests_per_s": self.requests_per_s,
            "rows_per_s": self.rows_per_s,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
        }


async def generate_load(
    sender: RequestSender, spec: LoadSpec, payload_count: int
) -> LoadResult:
    """Drive ``sender`` with ``spec.concurrency`` requests in flight; measure.

    Payload indices cycle through ``range(payload_count)``, each worker starting at
    a different offset so that concurrent requests carry different payloads.
    """
    if payload_count < 1:
        raise LoadGenError(
            f"payload_count {payload_count!r} is below 1; build at least one payload"
        )

    clock = time.perf_counter
    window_start = clock() + spec.warmup_s
    window_end = window_start + spec.duration_s
    latencies_s: list[float] = []
    errors = 0
    completed = 0

    async def worker(offset: int) -> None:
        nonlocal errors, completed
        index = offset
        while True:
            sent_at = clock()
            if sent_at >= window_end:
                return
            failed = False
            try:
                await sender.send(index % payload_count)
            except Exception as exc:  # any failure counts; the loop must go on
                failed = True
                logger.debug("request failed: %s", exc)
            done_at = clock()
            completed += not failed

            # Count what completes inside the window, whenever it was sent: with a
            # closed loop that is the throughput of the steady state.
            if window_start <= done_at < window_end:
                if failed:
                    errors += 1
                else:
                    latencies_s.append(done_at - sent_at)
            index += spec.concurrency

    await asyncio.gather(*(worker(offset) for offset in range(spec.concurrency)))

    return summarise(latencies_s, errors, spec, completed=completed)


def summarise(
    latencies_s: Sequence[float],
    errors: int,
    spec: LoadSpec,
    *,
    completed: int | None = None,
) -> LoadResult:
    """Turn the latencies (seconds) of one window into rates and percentiles;
    `completed` defaults to the window's requests."""
    requests = len(latencies_s)
    requests_per_s = requests / spec.duration_s
    if requests:
        latencies_ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
        p50, p90, p99 = np.percentile(latencies_ms, [50.0, 90.0, 99.0])
        mean = float(latencies_ms.mean())
    else:
        p50 = p90 = p99 = mean = math.nan

    return LoadResult(
        concurrency=spec.concurrency,
        duration_s=spec.duration_s,
        requests=requests,
        errors=errors,
        completed=requests if completed is None else completed,
        requests_per_s=requests_per_s,
        rows_per_s=requests_per_s * spec.rows_per_request,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=mean,
    )


class GrpcSender:
    """Open Inference Protocol sender over tritonclient's asyncio gRPC client.

    ``payloads`` is a sequence of arrays, each shaped ``[rows, *input_shape]``; their
    ``InferInput`` wrappers are built once here so that the loop measures the
    transport and the server, not the client's serialisation of numpy arrays. The
    server picks the outputs (none are requested by name).

    Use as an async context manager; it closes its channel on exit.
    """

    def __init__(
        self,
        url: str,
        model_name: str,
        input_name: str,
        payloads: Sequence[npt.NDArray[np.float32]],
    ) -> None:
        self._url = url
        self._model_name = model_name
        # Set by the target that started the server: its CPU seconds so far.
        self.server_cpu_s: Callable[[], float | None] | None = None
        self._client = triton_aio.InferenceServerClient(url)
        self._inputs: list[list[Any]] = []
        for payload in payloads:
            infer_input = InferInput(input_name, list(payload.shape), "FP32")
            infer_input.set_data_from_numpy(payload)
            self._inputs.append([infer_input])

    async def __aenter__(self) -> GrpcSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.close()

    async def send(self, payload_index: int) -> None:
        await self._client.infer(self._model_name, self._inputs[payload_index])

    async def wait_ready(self, timeout_s: float, poll_s: float = 0.25) -> None:
        """Wait until ServerReady and ModelReady both answer true.

        Raises :class:`LoadGenError` naming the URL when ``timeout_s`` passes first.
        """
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            try:
                if await self._client.is_server_ready() and (
                    await self._client.is_model_ready(self._model_name)
                ):
                    return
                last_error = "server or model not ready"
            except Exception as exc:  # refused connections while it starts
                last_error = str(exc).splitlines()[0] if str(exc) else repr(exc)
            await asyncio.sleep(poll_s)

        raise LoadGenError(
            f"model {self._model_name!r} at {self._url!r} not ready after "
            f"{timeout_s!r} s ({last_error}); check the server's log, or raise "
            "--startup-timeout-s if it is only slow to start"
        )

    async def check_output(self, expected_shape: Sequence[int]) -> None:
        """Send payload 0 once and check that some output has ``expected_shape``.

        Guards the benchmark against measuring a server that answers quickly with
        something else than the model's output.
        """
        result = await self._client.infer(self._model_name, self._inputs[0])
        response = result.get_response()
        shapes = [tuple(int(d) for d in out.shape) for out in response.outputs]
        if tuple(expected_shape) not in shapes:
            raise LoadGenError(
                f"model {self._model_name!r} at {self._url!r} answered outputs of "
                f"shapes {shapes!r}; expected one shaped {tuple(expected_shape)!r}"
            )
