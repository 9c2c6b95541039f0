"""What a serving target is, and how the server targets run as child processes.

A :class:`Target` opens one model for the load generator and hands back a
:class:`~benchmarks.loadgen.RequestSender`. Every server target runs in a child
process of its own, on a free port of 127.0.0.1, so that the load generator never
shares an interpreter (or a GIL) with the server it measures; they do share the
machine's cores, unless the run splits them (:mod:`benchmarks.cpu_split`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import subprocess
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks.cpu_split import CpuSplit
from benchmarks.cpu_time import process_group_cpu_s
from benchmarks.loadgen import GrpcSender, LoadGenError, RequestSender
from benchmarks.models import ExportedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every target gets from the benchmark run.

    ``workdir`` is a scratch folder for repositories, settings and server logs;
    ``max_concurrency`` is the highest concurrency the run will use;
    ``startup_timeout_s`` bounds a server's start, ``stop_timeout_s`` its graceful
    stop before it is killed; ``cpu_split``, when given, puts every server on its
    own cores, away from the load generator's.
    """

    workdir: Path
    max_concurrency: int
    startup_timeout_s: float = 120.0
    stop_timeout_s: float = 10.0
    repo_root: Path = field(default_factory=lambda: Path(__file__).parents[2])
    cpu_split: CpuSplit | None = None


class Target(ABC):
    """One way of serving a model, measured under the same load as the others."""

    #: Short name used on the command line, in the table and in the JSON.
    name: str
    #: One line on what the target is and what it stands for.
    description: str

    @abstractmethod
    def open(
        self,
        model: ExportedModel,
        payloads: Sequence[npt.NDArray[np.float32]],
        context: RunContext,
    ) -> contextlib.AbstractAsyncContextManager[RequestSender]:
        """Make ``model`` servable and yield a sender for ``payloads``.

        The sender must be ready for load when yielded; everything started is
        stopped on exit.
        """

    def unavailable_reason(self, context: RunContext) -> str | None:
        """Why this target cannot run here, or ``None`` when it can."""
        return None


@dataclass(frozen=True)
class Launch:
    """A server command line, the environment it adds, and where it runs."""

    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Another process may take it before the server binds it; the server then fails
    to start and the benchmark says so.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerTarget(Target):
    """A target served by a child process that speaks OIP over gRPC."""

    @abstractmethod
    def launch(self, model: ExportedModel, port: int, context: RunContext) -> Launch:
        """Write whatever the server needs under ``context.workdir``; its command.

        The server must answer gRPC on ``127.0.0.1:port``.
        """

    @contextlib.asynccontextmanager
    async def open(
        self,
        model: ExportedModel,
        payloads: Sequence[npt.NDArray[np.float32]],
        context: RunContext,
    ) -> AsyncIterator[RequestSender]:
        port = free_port()
        launch = self.launch(model, port, context)
        if context.cpu_split is not None:
            launch = replace(
                launch, command=context.cpu_split.server_command(launch.command)
            )
        log_path = context.workdir / "logs" / f"{self.name}-{model.spec.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)

        process = start_process(launch, log_path)
        logger.info(
            "started %s for %s on port %s (pid %s, log %s)",
            self.name,
            model.spec.name,
            port,
            process.pid,
            log_path,
        )
        try:
            url = f"127.0.0.1:{port}"
            async with GrpcSender(
                url, model.spec.name, model.input_name, payloads
            ) as sender:
                # The server leads a session of its own: its group is its pid.
                sender.server_cpu_s = functools.partial(
                    process_group_cpu_s, process.pid
                )
                await wait_until_ready(sender, process, log_path, context)
                await sender.check_output(model.output_shape)
                yield sender
        finally:
            await asyncio.to_thread(stop_process, process, context.stop_timeout_s)


def start_process(launch: Launch, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``launch`` in a session of its own, output to ``log_path``.

    The new session lets :func:`stop_process` reach the server's own children
    (tritonserver under PyTriton, inference workers under MLServer).
    """
    env = {**os.environ, **launch.env}
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(launch.command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=launch.cwd,
            start_new_session=True,
        )


async def wait_until_ready(
    sender: GrpcSender,
    process: subprocess.Popen[bytes],
    log_path: Path,
    context: RunContext,
) -> None:
    """Wait for OIP readiness; fail at once, with the log's tail, if it exits."""
    ready = asyncio.create_task(sender.wait_ready(context.startup_timeout_s))
    while not ready.done():
        if process.poll() is not None:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            raise LoadGenError(
                f"server exited with code {process.returncode!r} before it was "
                f"ready; the end of {str(log_path)!r}:\n{tail(log_path)}"
            )
        await asyncio.sleep(0.2)

    try:
        ready.result()
    except LoadGenError as exc:
        raise LoadGenError(f"{exc}\nthe end of the log:\n{tail(log_path)}") from exc


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Ask the server's process group to stop (SIGINT, then SIGTERM); kill it late."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout_s / 2)
        except subprocess.TimeoutExpired:
            continue

    # Children may outlive a leader that stopped in time; the group goes either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait()


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])
