"""The load generator against the OIP stub (target b) on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import numpy.typing as npt
import pytest

from benchmarks.loadgen import (
    GrpcSender,
    LoadGenError,
    LoadResult,
    LoadSpec,
    generate_load,
)
from benchmarks.targets.oip_stub import StubModel, running_stub

MODEL = StubModel(name="small_cnn", output_name="logits", num_classes=10)


def payloads(count: int = 4) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, 1, 8, 8), dtype=np.float32) for _ in range(count)]


async def drive_stub(spec: LoadSpec) -> LoadResult:
    async with running_stub([MODEL]) as port:
        url = f"127.0.0.1:{port}"
        async with GrpcSender(url, MODEL.name, "input", payloads()) as sender:
            await sender.wait_ready(timeout_s=5.0)
            await sender.check_output((1, MODEL.num_classes))
            return await generate_load(sender, spec, payload_count=4)


def test_load_against_stub_reports_rates_and_latencies() -> None:
    spec = LoadSpec(concurrency=4, duration_s=1.0, warmup_s=0.2)

    result = asyncio.run(drive_stub(spec))

    assert result.concurrency == 4
    assert result.duration_s == 1.0
    assert result.errors == 0
    assert result.requests > 10
    # The warm-up's answers count towards what the server did, not the window.
    assert result.completed > result.requests
    assert result.requests_per_s == pytest.approx(result.requests / 1.0)
    assert result.rows_per_s == pytest.approx(result.requests_per_s)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms
    assert math.isfinite(result.mean_ms)
    assert set(result.as_dict()) >= {"requests_per_s", "rows_per_s", "p50_ms", "p99_ms"}


def test_check_output_rejects_a_wrongly_shaped_answer() -> None:
    async def check() -> None:
        async with running_stub([MODEL]) as port:
            url = f"127.0.0.1:{port}"
            async with GrpcSender(url, MODEL.name, "input", payloads(1)) as sender:
                await sender.check_output((1, 1000))

    with pytest.raises(LoadGenError, match=r"expected one shaped \(1, 1000\)"):
        asyncio.run(check())


def test_requests_for_an_unknown_model_count_as_errors() -> None:
    async def drive() -> LoadResult:
        async with running_stub([MODEL]) as port:
            url = f"127.0.0.1:{port}"
            async with GrpcSender(url, "missing", "input", payloads(1)) as sender:
                spec = LoadSpec(concurrency=2, duration_s=0.3, warmup_s=0.0)
                return await generate_load(sender, spec, payload_count=1)

    result = asyncio.run(drive())

    assert result.requests == 0
    assert result.errors > 0
    assert math.isnan(result.p50_ms)


def test_load_spec_rejects_zero_concurrency() -> None:
    with pytest.raises(ValueError, match="concurrency 0 is below 1"):
        LoadSpec(concurrency=0, duration_s=1.0)
