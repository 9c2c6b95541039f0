"""Where a one-row ModelInfer call spends its time inside activeserve, step by step.

    python -m benchmarks.handler_cost                  # small CNN, about a minute
    python -m benchmarks.handler_cost --models small_cnn resnet18

The serving benchmark measures whole requests through gRPC; this one loads a model
version as the server does (repository, config.toml, warm-up, the batcher) and calls
each step of the ModelInfer handler directly on one thread, with no network and no
other process, so that the steps can be compared with each other and with the
transport cost the serving benchmark reports for the bare server. Each step is timed
over many calls and the fastest of several repeats is kept: a neighbour on a shared
machine only ever makes a loop slower.

The model is served with batching on and no batching delay, so a lone call takes the
path a call that finds the runtime idle takes in the server: the batcher runs it at
once, on this thread when its run fits ``inline_run_us``, else on a runtime thread
(the large model). Steps, in microseconds per call:

- ``parse``: protobuf's parse of the serialised request;
- ``decode``: checking the input tensor and making its array;
- ``onnxruntime``: the graph alone on one row;
- ``scores``: probabilities, label and single-view scores of the row;
- ``predict``: the whole model step (batcher, run, scores, the prediction);
- ``outputs``: the named output tensors of the prediction;
- ``encode``: the response's wire bytes;
- ``handler``: parse and the whole handler, as gRPC calls it.

Prints a table and writes JSON with the machine's description
(``benchmarks/results/handler_cost.json`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import inspect
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from activeserve.proto import inference as oip
from activeserve.server.flagging import unflagged
from activeserve.server.registry import ModelRegistry
from activeserve.server.repository import ModelRepository
from activeserve.server.runtime.single_view import batch_columns
from activeserve.server.services import inference
from benchmarks.machine import describe_machine, peer_venvs
from benchmarks.models import MODELS, ExportedModel, export_models, make_payloads
from benchmarks.report import render_table
from benchmarks.serving import write_json
from benchmarks.targets.activeserve import BatchingConfig, write_repository

RESULTS = Path(__file__).resolve().parent / "results" / "handler_cost.json"


def fastest_us(step: Callable[[], object], calls: int, repeats: int) -> float:
    """The fastest of ``repeats`` loops of ``calls`` calls, in microseconds a call."""
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            step()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest / calls * 1e6


async def fastest_us_awaited(
    step: Callable[[], Awaitable[object]], calls: int, repeats: int
) -> float:
    """`fastest_us` for a coroutine step, awaited as gRPC's task awaits a handler."""
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            await step()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest / calls * 1e6


class _NoContext:
    """The handler touches its context only on errors; this benchmark sends none."""


async def measure_model(
    model: ExportedModel, workdir: Path, calls: int, repeats: int
) -> dict[str, float]:
    """Microseconds per call of each step for one-row requests to ``model``."""
    root = workdir / f"repository-{model.spec.name}"
    write_repository(
        root, model, BatchingConfig(max_queue_delay_ms=0.0, busy_queue_delay_ms=0.0), 1
    )
    registry = ModelRegistry(ModelRepository(root), None)
    await registry.load_all()
    try:
        loaded = await registry.get(model.spec.name)
        service = inference.InferenceService(registry, version="benchmark")

        payload = make_payloads(model.spec, 1, seed=0)[0]
        request = oip.ModelInferRequest(model_name=model.spec.name)
        request.inputs.add(
            name=model.input_name, datatype="FP32", shape=list(payload.shape)
        )
        request.raw_input_contents.append(payload.tobytes())
        wire = request.SerializeToString()
        parsed = oip.ModelInferRequest.FromString(wire)

        candidates, _ = inference._decode_input(loaded, parsed)
        feeds = {model.input_name: candidates}
        raw = loaded.session.run(feeds)[0]
        raw = raw.reshape(len(raw), -1)
        logits = loaded.config.model.output == "logits"
        score_config = loaded.config.uncertainty.scores
        prediction = await loaded.predict(candidates)
        flagged, sample_ids = unflagged(1)
        outputs = inference._outputs(loaded, prediction, flagged, sample_ids)
        names = list(outputs)
        encoder = service._responses
        context = _NoContext()

        steps: dict[str, Callable[[], Any]] = {
            "parse": lambda: oip.ModelInferRequest.FromString(wire),
            "decode": lambda: inference._decode_input(loaded, parsed),
            "onnxruntime": lambda: loaded.session.run(feeds),
            "scores": lambda: batch_columns(raw, logits=logits, config=score_config),
            "predict": lambda: loaded.predict(candidates),
            "outputs": lambda: inference._outputs(
                loaded, prediction, flagged, sample_ids
            ),
            "encode": lambda: encoder.encode(
                loaded,
                outputs,
                names,
                model_name=loaded.name,
                model_version=str(loaded.version),
                request_id="",
            ),
            "handler": lambda: service.ModelInfer(
                oip.ModelInferRequest.FromString(wire), context
            ),
        }
        # A large model's run takes a thousand small ones' time: fewer calls.
        started = time.perf_counter()
        await loaded.predict(candidates)
        one_call_s = max(time.perf_counter() - started, 1e-9)
        scaled = max(5, int(calls * min(1.0, 1e-4 / one_call_s)))

        results = {}
        for name, step in steps.items():
            # A step that hands back a coroutine (the model step, the handler) is
            # timed awaited; the first call is also its warm-up.
            first = step()
            if inspect.isawaitable(first):
                await first
                results[name] = await fastest_us_awaited(step, scaled, repeats)
            else:
                results[name] = fastest_us(step, scaled, repeats)
        return results
    finally:
        await registry.close()


def format_table(results: dict[str, dict[str, float]]) -> str:
    models = list(results)
    steps = list(next(iter(results.values()))) if results else []
    rows = [
        [step, *(f"{results[model][step]:,.1f}" for model in models)] for step in steps
    ]
    return render_table(["step (us per call)", *models], rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.handler_cost",
        description="Time each step of activeserve's ModelInfer handler in-process.",
    )
    parser.add_argument(
        "--models", nargs="+", choices=sorted(MODELS), default=["small_cnn"]
    )
    parser.add_argument("--calls", type=int, default=20_000, help="calls per loop")
    parser.add_argument("--repeats", type=int, default=5, help="loops per step")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.repeats < 1:
        parser.error(
            f"--calls {args.calls!r} and --repeats {args.repeats!r} must be at least 1"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    specs = [MODELS[name] for name in args.models]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="activeserve-handler-") as tmp:
        workdir = Path(tmp)
        for model in export_models(specs, workdir / "models", seed=0):
            results[model.spec.name] = asyncio.run(
                measure_model(model, workdir, args.calls, args.repeats)
            )

    print(format_table(results))
    write_json(
        args.output,
        {
            "created": datetime.datetime.now(datetime.UTC).isoformat(),
            "command": " ".join(["python -m benchmarks.handler_cost", *sys.argv[1:]]),
            "machine": describe_machine(peer_venvs()),
            "settings": {"calls": args.calls, "repeats": args.repeats},
            "us_per_call": results,
        },
    )
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
