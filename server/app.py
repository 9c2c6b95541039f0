"""The gRPC server: services, health, reflection, start-up and graceful shutdown.

While it runs, new versions arrive by `Publish` (`activeserve.server.publishing`) or are
dropped into the repository by hand and found by a poll every `poll_interval_s`
(`activeserve.server.watcher`); either is swapped in without dropping a request.

Shutdown (SIGINT or SIGTERM): health turns NOT_SERVING at once; for `drain_s` seconds
the server still takes calls, so that load balancers polling health can move traffic
away; then it refuses new calls, gives in-flight ones `grace_s` to finish, unloads the
models and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from activeserve.proto import feedback_pb2, models_pb2, tensor_pb2
from activeserve.proto import inference as oip
from activeserve.server.flagging import QueueFlagger
from activeserve.server.publishing import Publisher
from activeserve.server.queue import QueueStore, open_store
from activeserve.server.registry import ModelRegistry
from activeserve.server.repository import ModelRepository
from activeserve.server.services.feedback import FeedbackService
from activeserve.server.services.inference import InferenceService
from activeserve.server.services.models import ModelsService
from activeserve.server.watcher import RepositoryWatcher

logger = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerOptions:
    """How `activeserve serve` runs; every field has a command-line flag."""

    repository: Path
    address: str = "127.0.0.1:8001"
    max_message_mb: int = 64
    grace_s: float = 10.0
    drain_s: float = 0.0
    runtime_threads: int = 4
    max_loaded_versions: int = 2
    # None: an SQLite file beside the repository (REPO/../queue.db).
    queue_url: str | None = None
    gil_switch_interval_ms: float = 0.5
    # How often the repository is scanned for versions dropped in by hand; 0: never.
    poll_interval_s: float = 2.0
    # Largest upload a Publish may send, all files together.
    max_upload_mb: int = 2048
    # A staging folder untouched this long is an abandoned upload, removed at
    # start-up and by the polls; it must exceed the longest pause within an upload.
    stale_staging_s: float = 600.0

    def resolved_queue_url(self) -> str:
        if self.queue_url:
            return self.queue_url
        return f"sqlite://{(self.repository.resolve().parent / 'queue.db')}"


def package_version() -> str:
    try:
        return metadata.version("activeserve")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Server:
    """A running activeserve: `await start()`, then `await wait()` or `await stop()`."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self._executor = ThreadPoolExecutor(
            max_workers=options.runtime_threads, thread_name_prefix="runtime"
        )
        self.registry = ModelRegistry(
            ModelRepository(options.repository),
            self._executor,
            max_loaded_versions=options.max_loaded_versions,
        )
        self._publisher = Publisher(
            self.registry, max_upload_bytes=options.max_upload_mb * MiB
        )
        self._watcher = (
            RepositoryWatcher(
                self.registry,
                poll_interval_s=options.poll_interval_s,
                stale_staging_s=options.stale_staging_s,
            )
            if options.poll_interval_s > 0
            else None
        )
        self._health = health.aio.HealthServicer()
        self._stopping = False
        self._grpc: grpc.aio.Server | None = None
        self.store: QueueStore
        self.flagger: QueueFlagger
        self.port: int = 0

    @property
    def address(self) -> str:
        host = self.options.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        limit = self.options.max_message_mb * MiB
        self._grpc = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ]
        )

        self.store = await asyncio.to_thread(
            open_store, self.options.resolved_queue_url()
        )
        self.flagger = QueueFlagger(self.store)
        await asyncio.to_thread(
            self.registry.repository.remove_stale_staging,
            self.options.stale_staging_s,
        )
        await self.registry.load_all()
        inference = InferenceService(
            self.registry,
            version=package_version(),
            flagger=self.flagger,
            is_ready=self._ready,
        )
        inference.add_to(self._grpc)
        FeedbackService(self.store, self.registry, self.flagger).add_to(self._grpc)
        ModelsService(self.registry, self._publisher).add_to(self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._grpc)
        self._enable_reflection(self._grpc)

        self.port = self._grpc.add_insecure_port(self.options.address)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.options.address!r}")
        await self._grpc.start()

        if self._watcher is not None:
            self._watcher.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "activeserve %s listening on %s; serving %s",
            package_version(),
            self.address,
            {name: m.version for name, m in self.registry.serving().items()},
        )

    async def wait(self) -> None:
        assert self._grpc is not None
        await self._grpc.wait_for_termination()

    async def stop(self) -> None:
        """Stop taking requests, let in-flight ones finish, release the models."""
        if self._stopping or self._grpc is None:
            return
        self._stopping = True
        if self._watcher is not None:
            await self._watcher.stop()
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.options.drain_s > 0:
            logger.info(
                "shutting down: health NOT_SERVING, draining %ss", self.options.drain_s
            )
            await asyncio.sleep(self.options.drain_s)
        logger.info(
            "shutting down: finishing in-flight requests (grace %ss)",
            self.options.grace_s,
        )
        await self._grpc.stop(self.options.grace_s)
        await self.registry.close()
        await asyncio.to_thread(self.store.close)
        self._executor.shutdown(wait=True)
        logger.info("stopped")

    def _ready(self) -> bool:
        return not self._stopping and bool(self.registry.serving())

    async def _set_health(self, status: int) -> None:
        await self._health.set("", status)
        await self._health.set(oip.SERVICE_NAME, status)

    def _enable_reflection(self, server: grpc.aio.Server) -> None:
        # The inference service lives in a private descriptor pool; reflection gets a
        # pool of its own holding it beside the standard health service.
        pool = descriptor_pool.DescriptorPool()
        for module in (health_pb2, tensor_pb2, feedback_pb2, models_pb2):
            proto = descriptor_pb2.FileDescriptorProto.FromString(
                module.DESCRIPTOR.serialized_pb
            )
            pool.Add(proto)
        inference_file = oip.POOL.FindFileByName(oip.FILE_NAME)
        pool.Add(
            descriptor_pb2.FileDescriptorProto.FromString(inference_file.serialized_pb)
        )
        names = (
            oip.SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            feedback_pb2.DESCRIPTOR.services_by_name["Feedback"].full_name,
            models_pb2.DESCRIPTOR.services_by_name["Models"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server, pool=pool)


async def serve(options: ServerOptions) -> int:
    """Run until SIGINT or SIGTERM; returns the process exit code."""
    # Every batch crosses from the event loop to a runtime thread and back. A thread
    # woken while the busy loop holds the GIL waits out the whole switch interval
    # (5 ms by default) before it runs, which caps a small model at a few hundred
    # batches a second; a shorter interval hands the GIL over sooner.
    sys.setswitchinterval(options.gil_switch_interval_ms / 1000.0)
    server = Server(options)
    await server.start()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    await stop.wait()
    await server.stop()
    return 0
