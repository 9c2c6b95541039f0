"""`activeserve` commands run as processes of their own, for the tests that need a real
process: signals, SIGKILL, resident memory, the Dockerfile's commands."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+)")


@dataclass
class ServerProcess:
    """A running `activeserve serve`; its output goes to `log`."""

    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        self.process.terminate()
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def start_process(
    arguments: list[str], log: Path, timeout_s: float = 60.0
) -> ServerProcess:
    """Run `activeserve ARGUMENTS` (a `serve` command listening on 127.0.0.1:0) and
    wait for its "listening on" line."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "activeserve.client.cli", *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        match = _LISTENING.search(log.read_text())
        if match:
            return ServerProcess(process, match.group(1), log)
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError("the server did not start:\n" + log.read_text())


def serve(repository: Path, log: Path, *extra: str) -> ServerProcess:
    """`activeserve serve` on `repository` at 127.0.0.1:0, with `extra` flags."""
    arguments = ["serve", "--repository", str(repository), "--address", "127.0.0.1:0"]
    return start_process([*arguments, *extra], log)
