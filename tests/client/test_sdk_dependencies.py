"""`pip install activeserve` gives the SDK alone: it must work without the server's
and the trainer's dependencies."""

from __future__ import annotations

import subprocess
import sys

# Importing any of these from the SDK would break an SDK-only install.
HEAVY = ("onnxruntime", "torch", "onnx", "safetensors", "psycopg", "grpc_health")


def test_the_sdk_and_its_cli_import_without_server_or_trainer_packages() -> None:
    code = (
        "import sys\n"
        f"for name in {HEAVY!r}:\n"
        "    sys.modules[name] = None  # any import of it now fails\n"
        "import activeserve.client\n"
        "from activeserve.client import Client\n"
        "from activeserve.client import review_cli, health_cli, models_cli\n"
        "from activeserve.client.cli import build_parser\n"
        "parser = build_parser()\n"
        "print(sorted(parser._subparsers._group_actions[0].choices))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    commands = result.stdout
    assert "'review'" in commands and "'health'" in commands
    # The server's and trainer's commands stay listed, with an install hint.
    assert "'serve'" in commands and "'train'" in commands


def test_a_missing_extras_command_names_the_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None\n"
        "from activeserve.client.cli import main\n"
        "sys.exit(main(['serve', '--repository', 'models']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert result.returncode == 2
    assert "pip install 'activeserve[server]'" in result.stderr
