"""`activeserve models list` and `activeserve models rollback`: a model's versions, in a
terminal."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from activeserve.client.client import Client
from activeserve.client.errors import ClientError
from activeserve.client.models import ModelVersions

# The metric the trainer records in metadata.json and the server's stopping rules
# read (activeserve.server.stopping_status).
VALIDATION_METRIC = "validation_accuracy"
_COLUMNS = ("version", "", "created_at", "parent", "labels", "val_acc")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = subparsers.add_parser("models", help="a model's versions")
    commands = models.add_subparsers(dest="models_command", metavar="COMMAND")
    commands.required = True

    listing = commands.add_parser(
        "list",
        help="every version, its origin and metrics; * marks the one serving",
    )
    listing.add_argument("model", metavar="NAME")
    _server_arguments(listing)
    listing.set_defaults(handler=_list)

    rollback = commands.add_parser(
        "rollback",
        help="serve an earlier version again (kept across restarts)",
        description="Serve version N of NAME again, by default the one before the "
        "version being served. The choice survives restarts; publishing a new "
        "version serves that one instead.",
    )
    rollback.add_argument("model", metavar="NAME")
    rollback.add_argument(
        "--to",
        type=int,
        default=0,
        metavar="N",
        help="the version to serve (default: the one before the serving one)",
    )
    _server_arguments(rollback)
    rollback.set_defaults(handler=_rollback)


def _server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", default="127.0.0.1:8001", help="HOST:PORT (default: %(default)s)"
    )
    parser.add_argument("--timeout-s", type=float, default=30.0)


def _list(args: argparse.Namespace) -> int:
    try:
        with Client(args.server, timeout_s=args.timeout_s) as client:
            versions = client.list_versions(args.model)
    except ClientError as error:
        print(f"activeserve models list: {error}", file=sys.stderr)
        return 1
    print(format_versions(versions))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    try:
        with Client(args.server, timeout_s=args.timeout_s) as client:
            serving = client.rollback(args.model, args.to)
    except ClientError as error:
        print(f"activeserve models rollback: {error}", file=sys.stderr)
        return 1
    print(f"model {args.model}: now serving version {serving}")
    return 0


def format_versions(versions: ModelVersions) -> str:
    """A table of `versions`, one row a version, `*` beside the one serving."""
    rows = [_COLUMNS]
    for info in versions.versions:
        metadata = info.metadata
        metrics = metadata.get("metrics")
        accuracy = metrics.get(VALIDATION_METRIC) if isinstance(metrics, dict) else None
        rows.append(
            (
                str(info.version),
                "*" if info.serving else "",
                str(metadata.get("created_at") or "-"),
                _text(metadata.get("parent_version")),
                _text(metadata.get("labels_used")),
                f"{accuracy:.4f}" if isinstance(accuracy, (int, float)) else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [f"model {versions.model} (serving version {versions.serving or '-'})"]
    lines.extend(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )
    return "\n".join(lines)


def _text(value: Any) -> str:
    return "-" if value is None else str(value)
