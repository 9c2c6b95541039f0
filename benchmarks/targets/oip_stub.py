"""Target (b): an Open Inference Protocol server that runs no model.

It parses each ModelInfer request, checks that its raw input matches its shape, and
answers a zero tensor shaped ``[rows, num_classes]`` in ``raw_output_contents``: the
cost of the transport alone (gRPC, protobuf, Python's asyncio), which no Python OIP
server can beat. It uses tritonclient's generated messages.

The benchmark runs it as a child process, like every server::

    python -m benchmarks.targets.oip_stub --address 127.0.0.1:8001 \
        --model small_cnn:logits:10

and the tests start it in-process with :func:`start_stub_server` on port 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2, service_pb2_grpc

from benchmarks.models import ExportedModel
from benchmarks.targets.base import Launch, RunContext, ServerTarget

logger = logging.getLogger(__name__)

#: Bytes per element of FP32, the only datatype the stub accepts.
FP32_BYTES = 4


@dataclass(frozen=True)
class StubModel:
    """A model the stub pretends to serve: its output name and width."""

    name: str
    output_name: str
    num_classes: int

    @classmethod
    def parse(cls, text: str) -> StubModel:
        """Read ``NAME:OUTPUT:CLASSES``, as the command line gives it."""
        parts = text.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise argparse.ArgumentTypeError(
                f"model {text!r} is not NAME:OUTPUT:CLASSES, e.g. small_cnn:logits:10"
            )
        return cls(name=parts[0], output_name=parts[1], num_classes=int(parts[2]))


_Servicer: Any = service_pb2_grpc.GRPCInferenceServiceServicer


class StubInferenceService(_Servicer):
    """Liveness, readiness and ModelInfer for the stub's models; nothing else."""

    def __init__(self, models: Mapping[str, StubModel]) -> None:
        self._models = dict(models)

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ModelReadyResponse(ready=request.name in self._models)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        model = self._models.get(request.model_name)
        if model is None:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"model {request.model_name!r} is not served here; "
                f"expected one of {sorted(self._models)!r}",
            )
        if len(request.inputs) != 1 or len(request.raw_input_contents) != 1:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(request.inputs)!r} inputs and "
                f"{len(request.raw_input_contents)!r} raw contents; expected one "
                "FP32 input sent as raw_input_contents",
            )

        rows = decode_rows(request.inputs[0].shape, request.raw_input_contents[0])
        if rows is None:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input shape {list(request.inputs[0].shape)!r} does not match "
                f"{len(request.raw_input_contents[0])!r} raw bytes of FP32",
            )

        response = service_pb2.ModelInferResponse(
            model_name=model.name, model_version="1", id=request.id
        )
        output = response.outputs.add()
        output.name = model.output_name
        output.datatype = "FP32"
        output.shape.extend([rows, model.num_classes])
        response.raw_output_contents.append(
            bytes(rows * model.num_classes * FP32_BYTES)
        )
        return response


async def abort(context: Any, code: grpc.StatusCode, details: str) -> NoReturn:
    """End the call with ``code``; ``context.abort`` raises, this says so to mypy."""
    await context.abort(code, details)
    raise AssertionError("grpc.aio's abort returned instead of raising")


def decode_rows(shape: Sequence[int], raw: bytes) -> int | None:
    """The batch size of an FP32 tensor, or ``None`` when bytes and shape disagree.

    The array view is what a real server would hand to its model; building it keeps
    the stub honest about parsing the request.
    """
    elements = int(np.prod(shape)) if len(shape) else 0
    if not shape or elements * FP32_BYTES != len(raw):
        return None
    array: npt.NDArray[np.float32] = np.frombuffer(raw, dtype=np.float32)
    array.reshape(tuple(shape))
    return int(shape[0])


async def start_stub_server(
    models: Sequence[StubModel], address: str = "127.0.0.1:0"
) -> tuple[grpc.aio.Server, int]:
    """Start the stub on ``address``; return the server and the port it bound."""
    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        StubInferenceService({model.name: model for model in models}), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address!r}; choose a free port")
    await server.start()
    logger.info("OIP stub serving %s on port %s", [m.name for m in models], port)
    return server, port


@contextlib.asynccontextmanager
async def running_stub(
    models: Sequence[StubModel], address: str = "127.0.0.1:0"
) -> AsyncIterator[int]:
    """Run the stub for the duration of the block; yield its port."""
    server, port = await start_stub_server(models, address)
    try:
        yield port
    finally:
        await server.stop(grace=None)


class StubTarget(ServerTarget):
    """Target (b): the transport limit."""

    name = "oip-stub"
    description = (
        "Python grpc.aio OIP server answering zeros, no model (transport limit)"
    )

    def launch(self, model: ExportedModel, port: int, context: RunContext) -> Launch:
        stub = f"{model.spec.name}:{model.output_name}:{model.spec.num_classes}"
        return Launch(
            command=[
                sys.executable,
                "-m",
                "benchmarks.targets.oip_stub",
                "--address",
                f"127.0.0.1:{port}",
                "--model",
                stub,
            ],
            cwd=context.repo_root,
        )


async def serve(models: Sequence[StubModel], address: str) -> None:
    """Serve until SIGINT or SIGTERM."""
    server, _ = await start_stub_server(models, address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OIP stub server (no model)")
    parser.add_argument("--address", default="127.0.0.1:8001")
    parser.add_argument("--model", type=StubModel.parse, action="append", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    asyncio.run(serve(args.model, args.address))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
