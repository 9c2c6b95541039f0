"""`activeserve serve`: run the server on a model repository."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from activeserve.server.app import ServerOptions, serve


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve every model of a repository over gRPC",
        description="Serve every model in REPOSITORY/<model>/ (newest version by "
        "default) over the Open Inference Protocol, with uncertainty on every "
        "prediction.",
    )
    parser.add_argument("--repository", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--address", default="127.0.0.1:8001", help="HOST:PORT (default: %(default)s)"
    )
    parser.add_argument(
        "--queue",
        default=None,
        metavar="URL",
        help="label queue store: sqlite:///path/queue.db or postgresql://... "
        "(default: an SQLite file queue.db beside the repository)",
    )
    parser.add_argument(
        "--max-message-mb",
        type=int,
        default=64,
        help="largest request or response, in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--grace-s",
        type=float,
        default=10.0,
        help="time in-flight requests get to finish on shutdown (default: %(default)s)",
    )
    parser.add_argument(
        "--drain-s",
        type=float,
        default=0.0,
        help="on shutdown, seconds to report NOT_SERVING while still answering, so "
        "load balancers move traffic away (default: %(default)s)",
    )
    parser.add_argument(
        "--runtime-threads",
        type=int,
        default=4,
        help="threads running ONNX Runtime calls (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-interval-s",
        type=float,
        default=2.0,
        help="how often to scan the repository for versions and models dropped in "
        "by hand; 0 turns the scan off (default: %(default)s)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=int,
        default=2048,
        help="largest version a publish may upload, all files together, in MiB "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--gil-switch-interval-ms",
        type=float,
        default=0.5,
        help="the interpreter's thread switch interval; shorter hands batches to "
        "runtime threads sooner (Python's default: 5; default here: %(default)s)",
    )
    parser.add_argument(
        "--stale-staging-s",
        type=float,
        default=600.0,
        help="remove staging folders of uploads untouched this long (left by a "
        "server that died mid-publish) at start-up and on each poll "
        "(default: %(default)s)",
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    if not args.repository.is_dir():
        print(
            f"activeserve serve: repository {str(args.repository)!r} is not a folder",
            file=sys.stderr,
        )
        return 2
    options = ServerOptions(
        repository=args.repository,
        address=args.address,
        max_message_mb=args.max_message_mb,
        grace_s=args.grace_s,
        drain_s=args.drain_s,
        queue_url=args.queue,
        gil_switch_interval_ms=args.gil_switch_interval_ms,
        runtime_threads=args.runtime_threads,
        poll_interval_s=args.poll_interval_s,
        max_upload_mb=args.max_upload_mb,
        stale_staging_s=args.stale_staging_s,
    )
    return asyncio.run(serve(options))
