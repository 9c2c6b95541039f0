"""What can be checked of the Dockerfile without a container engine: its shape, and
that the commands it runs work."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import tomllib
from support.processes import start_process

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    text = DOCKERFILE.replace("\\\n", " ")
    return [
        line.split(None, 1)[1].strip()
        for line in text.splitlines()
        if line.strip().upper().startswith(name + " ")
    ]


def _exec_form(name: str) -> list[str]:
    (value,) = _instructions(name)
    if value.upper().startswith("CMD "):
        value = value[4:]
    value = value.split(" CMD ", 1)[-1]
    parsed: list[str] = json.loads(value[value.index("[") :])
    return parsed


def test_it_is_multi_stage_and_runs_as_a_user() -> None:
    assert len(_instructions("FROM")) == 2
    (user,) = _instructions("USER")
    assert user not in ("root", "0")


def test_it_installs_an_existing_extra_and_copies_existing_folders() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    (runtime,) = re.findall(r"ARG RUNTIME=(\w+)", DOCKERFILE)
    assert runtime in extras and "gpu" in extras
    for source in _instructions("COPY"):
        if source.startswith("--from"):
            continue
        for path in source.split()[:-1]:
            assert (ROOT / path).exists(), path


def test_the_entry_point_serves_and_the_health_check_passes(
    make_repository, tmp_path: Path
) -> None:
    entry = _exec_form("ENTRYPOINT") + _exec_form("CMD")
    data = tmp_path / "data"
    data.mkdir()
    repository = make_repository()
    replace = {
        "/models": str(repository),
        "0.0.0.0:8001": "127.0.0.1:0",
        "sqlite:////data/queue.db": f"sqlite://{data / 'queue.db'}",
    }
    command = [replace.get(part, part) for part in entry]
    assert command[:2] == ["activeserve", "serve"]

    server = start_process(command[1:], tmp_path / "server.log")
    try:
        address = server.address
        health = _exec_form("HEALTHCHECK")
        assert health[:2] == ["activeserve", "health"]
        probe = [part if part != "127.0.0.1:8001" else address for part in health]
        done = subprocess.run(
            [sys.executable, "-m", "activeserve.client.cli", *probe[1:]],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        code = server.stop()
    assert code == 0, server.output()


def test_the_health_check_fails_when_nothing_listens() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "activeserve.client.cli",
            "health",
            "--server",
            "127.0.0.1:1",
            "--timeout-s",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
