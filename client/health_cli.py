"""`activeserve health`: exit 0 when the server (or one model) is ready, 1 otherwise.

Container health checks and scripts use it; it needs only the SDK.
"""

from __future__ import annotations

import argparse
import sys

from activeserve.client.client import Client
from activeserve.client.errors import ClientError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health", help="exit 0 when the server is ready to serve, 1 otherwise"
    )
    parser.add_argument(
        "--server", default="127.0.0.1:8001", help="HOST:PORT (default: %(default)s)"
    )
    parser.add_argument("--model", default=None, help="check this model instead")
    parser.add_argument("--timeout-s", type=float, default=3.0)
    parser.set_defaults(handler=_health)


def _health(args: argparse.Namespace) -> int:
    try:
        with Client(args.server, timeout_s=args.timeout_s) as client:
            ready = client.is_ready(args.model)
    except ClientError as error:
        print(f"not ready: {error}", file=sys.stderr)
        return 1
    print("ready" if ready else "not ready")
    return 0 if ready else 1
