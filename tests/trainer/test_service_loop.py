"""The service loop: an unreachable server is waited out, and a stop ends the wait."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from activeserve.client import Client
from activeserve.trainer.errors import TrainerError
from activeserve.trainer.service import ServiceOptions, TrainerService


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_server_is_retried_until_a_stop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = ServiceOptions(state_dir=tmp_path / "state", retry_s=30.0)
    outcome: list[int] = []

    with Client(f"127.0.0.1:{_free_port()}", timeout_s=0.5) as client:
        service = TrainerService(client, "digits", options)
        runner = threading.Thread(target=lambda: outcome.append(service.run()))
        runner.start()
        time.sleep(1.5)
        service.stop()
        runner.join(5)

    assert not runner.is_alive() and outcome == [0]
    assert "trying again in 30.0 s" in caplog.text


def test_options_refuse_a_poll_of_zero_seconds(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match=r"poll_s must be a number of seconds > 0"):
        ServiceOptions(state_dir=tmp_path, poll_s=0.0)
