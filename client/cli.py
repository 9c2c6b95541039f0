"""The `activeserve` command. Each package registers its own subcommands through the
`activeserve.commands` entry point group, loaded only when that package imports, so an
SDK-only install still runs the client's commands and names the extra the others need.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import metadata

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "activeserve.commands"
_EXTRAS = {"server": "activeserve[server]", "trainer": "activeserve[trainer]"}
# The commands each package adds, so that a missing package's commands still parse
# and answer with the extra to install instead of "invalid choice".
_COMMANDS = {"server": ("serve",), "trainer": ("train", "init")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="activeserve",
        description="A model server that learns from its own traffic.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True

    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            register = entry_point.load()
        except ImportError as error:
            # The package's dependencies are not installed: keep its commands listed
            # with the install hint, so the user learns what to add.
            _register_missing(subparsers, entry_point.name, error)
            continue
        register(subparsers)
    return parser


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The client's own subcommands: review, queue, models, health."""
    from activeserve.client import health_cli, models_cli, review_cli

    review_cli.register(subparsers)
    models_cli.register(subparsers)
    health_cli.register(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_anything", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.handler(args)
    return code


def _register_missing(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    error: ImportError,
) -> None:
    extra = _EXTRAS.get(name, f"activeserve[{name}]")

    def unavailable(args: argparse.Namespace) -> int:
        print(
            f"activeserve: the {name} commands need `pip install '{extra}'` ({error})",
            file=sys.stderr,
        )
        return 2

    for command in _COMMANDS.get(name, (name,)):
        placeholder = subparsers.add_parser(
            command, help=f"(needs {extra})", add_help=False
        )
        # Whatever follows the command is accepted: the answer is the install hint.
        placeholder.set_defaults(handler=unavailable, accepts_anything=True)


if __name__ == "__main__":
    sys.exit(main())
