"""Fixtures shared by every test package: model repositories and running servers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from support.onnx_models import linear_classifier

T = TypeVar("T")


@pytest.fixture
def make_repository(tmp_path: Path) -> Callable[..., Path]:
    """Write a repository with one linear model; returns the repository root."""

    def make(
        name: str = "digits",
        *,
        versions: tuple[int, ...] = (1,),
        config: str = "",
        **model_kwargs: Any,
    ) -> Path:
        root = tmp_path / "repo"
        for version in versions:
            linear_classifier(
                root / name / str(version) / "model.onnx",
                seed=version,
                **model_kwargs,
            )
        if config:
            (root / name / "config.toml").write_text(config)
        return root

    return make


class ServerThread:
    """An activeserve `Server` on its own event loop in a background thread."""

    def __init__(self, repository: Path, **options: Any) -> None:
        from activeserve.server.app import Server, ServerOptions

        self.loop = asyncio.new_event_loop()
        self.server = Server(
            ServerOptions(repository=repository, address="127.0.0.1:0", **options)
        )
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self.server.start())

    @property
    def address(self) -> str:
        return self.server.address

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout_s)

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerThread]]:
    """Start servers on 127.0.0.1:0; all are stopped when the test ends."""
    started: list[ServerThread] = []

    def start(repository: Path, **options: Any) -> ServerThread:
        server = ServerThread(repository, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
