"""Serve one ONNX model with PyTriton: Triton's dynamic batcher, onnxruntime inside.

Runs inside PyTriton's own environment (``.bench-venvs/pytriton``)::

    python pytriton_server.py --onnx model.onnx --model-name small_cnn \
        --grpc-port 8001 --http-port 8000 --metrics-port 8002

Triton's dynamic batcher merges one-row requests up to ``--max-batch-size`` rows,
waiting at most ``--max-queue-delay-us``; the bound function (with ``@batch``) runs
the merged batch with onnxruntime. Stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sysconfig
from typing import Any

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch  # type: ignore[import-not-found]
from pytriton.model_config import (  # type: ignore[import-not-found]
    DynamicBatcher,
    ModelConfig,
    Tensor,
)
from pytriton.triton import Triton, TritonConfig  # type: ignore[import-not-found]

logger = logging.getLogger(__name__)

#: Where the system's own shared libraries live; a libpython elsewhere (pyenv,
#: conda, a source build) must be added to LD_LIBRARY_PATH for tritonserver.
SYSTEM_LIBDIRS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64")


def expose_libpython() -> None:
    """Put this interpreter's libpython directory on LD_LIBRARY_PATH if needed.

    PyTriton's bundled tritonserver (a child process, which inherits this
    environment) loads its Python backend against the running interpreter's
    libpython, and fails to start when the loader cannot find it.
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    if not libdir or str(libdir).startswith(SYSTEM_LIBDIRS):
        return
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir not in current.split(":"):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir
        logger.info("added %s to LD_LIBRARY_PATH", libdir)


def make_infer(session: ort.InferenceSession, output_name: str) -> Any:
    """The bound inference function: a merged batch in, its output out."""
    input_name = session.get_inputs()[0].name

    @batch  # type: ignore[untyped-decorator]
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        (logits,) = session.run([output_name], {input_name: inputs[input_name]})
        return {output_name: logits}

    return infer


def row_shape(shape: list[Any]) -> tuple[int, ...]:
    """A tensor's shape without its batch axis; named (dynamic) axes become -1."""
    return tuple(dim if isinstance(dim, int) else -1 for dim in shape[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--output", default="logits")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-queue-delay-us", type=int, default=2000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    expose_libpython()
    session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    model_output = next(o for o in session.get_outputs() if o.name == args.output)

    config = TritonConfig(
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        http_address="127.0.0.1",
        http_port=args.http_port,
        metrics_port=args.metrics_port,
    )
    model_config = ModelConfig(
        max_batch_size=args.max_batch_size,
        batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us),
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name=args.model_name,
            infer_func=make_infer(session, args.output),
            inputs=[
                Tensor(
                    name=model_input.name,
                    dtype=np.float32,
                    shape=row_shape(model_input.shape),
                )
            ],
            outputs=[
                Tensor(
                    name=args.output,
                    dtype=np.float32,
                    shape=row_shape(model_output.shape),
                )
            ],
            config=model_config,
            strict=False,
        )
        triton.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
