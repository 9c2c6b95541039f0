"""``activeserve train`` and ``activeserve init``: the trainer's subcommands.

``train`` runs :class:`~activeserve.trainer.service.TrainerService` against a server
until SIGINT or SIGTERM (a clean stop, exit 0; a second signal aborts at once), or for
one round with ``--once``. ``init`` creates a model in a repository from a factory and
optional weights, before the server starts (:mod:`.init`).

Exit status: 0 on success or a clean stop (with ``--once``, whether or not the round
published a version: the log says); 1 when the trainer or the server refused something
(the message says what and how to fix it); 2 for bad arguments.

The ``activeserve`` dispatcher imports this module to list every command, so PyTorch
is imported only when a trainer command runs, and ``activeserve review`` starts fast.
Where the trainer's packages are missing, importing this module fails, and the
dispatcher lists the commands with the extra to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from activeserve.client import Client, ClientError
from activeserve.core.errors import CoreError
from activeserve.trainer.errors import TrainerError

if TYPE_CHECKING:
    from activeserve.trainer.service import TrainerService

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

logger = logging.getLogger(__name__)

#: What the trainer's commands import; checked here without importing them.
REQUIRED_MODULES = ("torch", "onnx", "onnxruntime", "safetensors")

for _module in REQUIRED_MODULES:
    if importlib.util.find_spec(_module) is None:
        raise ImportError(
            f"the trainer commands need the {_module!r} package, which is not "
            "installed; install the 'trainer' extra"
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` and ``init`` subcommands to the ``activeserve`` parser."""
    _add_train(subparsers)
    _add_init(subparsers)


def _add_train(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = subparsers.add_parser(
        "train",
        help="fine-tune a served model on its labels, in rounds",
        description="Stream the labels reviewers give for MODEL, keep them in a "
        "state folder, and each time [training] min_new_labels new ones have "
        "arrived, fine-tune the served version and publish the new one if it "
        "validates as well. Runs until SIGINT or SIGTERM.",
    )
    train.add_argument(
        "--server", default="127.0.0.1:8001", help="HOST:PORT (default: %(default)s)"
    )
    train.add_argument("--model", required=True, help="the model to train")
    train.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where labels and the stream cursor are kept "
        "(default: ./.activeserve-trainer/MODEL/)",
    )
    train.add_argument(
        "--once", action="store_true", help="run one round with what is there, exit"
    )
    train.add_argument(
        "--force",
        action="store_true",
        help="train even while a stopping criterion holds",
    )
    train.add_argument(
        "--validation",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="extra validation data: an .npz with arrays 'inputs' and 'labels'",
    )
    train.add_argument(
        "--train-file",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="labels you already have (e.g. those version 1 was trained on): an "
        ".npz with arrays 'inputs' and 'labels', trained on in every round",
    )
    train.add_argument(
        "--device", default=None, help="torch device (default: cuda when available)"
    )
    train.add_argument(
        "--poll-s",
        type=float,
        default=5.0,
        help="longest wait for labels before checking for a stop (default: 5)",
    )
    train.add_argument(
        "--retry-s",
        type=float,
        default=10.0,
        help="wait after the server was unreachable (default: 10)",
    )
    train.add_argument(
        "--timeout-s", type=float, default=60.0, help="deadline of each call"
    )
    train.set_defaults(handler=_train)


def _add_init(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = subparsers.add_parser(
        "init",
        help="create a model in a repository (before the server starts)",
        description="Create REPO/NAME/config.toml and version 1 from a model "
        "factory and, optionally, trained weights.",
    )
    init.add_argument("repo", type=Path, metavar="REPO")
    init.add_argument("name", metavar="NAME")
    init.add_argument(
        "--factory",
        required=True,
        metavar="MODULE:FUNCTION",
        help="e.g. activeserve.trainer.models:small_cnn",
    )
    init.add_argument(
        "--factory-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help="keyword arguments of the factory, e.g. '{\"num_classes\": 10}'",
    )
    init.add_argument(
        "--weights",
        type=Path,
        default=None,
        metavar="FILE.safetensors",
        help="trained weights (default: the factory's initial weights)",
    )
    init.add_argument(
        "--input-shape",
        type=_shape,
        required=True,
        metavar="D1,D2,...",
        help="shape of one input without the batch axis, e.g. 1,8,8",
    )
    init.add_argument(
        "--labels",
        type=_names,
        default=(),
        metavar="A,B,...",
        help="class names in output order",
    )
    init.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE.toml",
        help="a model config whose tables are merged with the options above; the "
        "config written holds every key (comments are not kept)",
    )
    init.add_argument(
        "--force", action="store_true", help="replace an existing model folder"
    )
    init.set_defaults(handler=_init)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"{text!r} is a JSON {type(value).__name__}; expected an object "
            "such as '{\"num_classes\": 10}'"
        )
    return value


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shape; expected positive sizes joined by commas, "
            "e.g. 1,8,8"
        )
    return shape


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(","))


def _train(args: argparse.Namespace) -> int:
    from activeserve.trainer.rounds import RoundOptions
    from activeserve.trainer.service import ServiceOptions, TrainerService
    from activeserve.trainer.state import default_state_dir

    options = ServiceOptions(
        state_dir=args.state_dir or default_state_dir(args.model),
        force=args.force,
        validation_file=args.validation,
        train_file=args.train_file,
        poll_s=args.poll_s,
        retry_s=args.retry_s,
        rounds=RoundOptions(device=args.device, progress=True),
    )
    try:
        with Client(args.server, timeout_s=args.timeout_s) as client:
            service = TrainerService(client, args.model, options)
            if args.once:
                service.run_once()
                return 0
            with _stop_on_signals(service):
                return service.run()
    except (TrainerError, CoreError, ClientError) as exc:
        logger.error("model %s: %s", args.model, exc)
        return 1


@contextmanager
def _stop_on_signals(service: TrainerService) -> Iterator[None]:
    """SIGINT and SIGTERM stop the service cleanly; a second one aborts at once."""

    def handle(number: int, frame: FrameType | None) -> None:
        if service.stopped:
            raise KeyboardInterrupt
        service.stop()

    previous = {
        number: signal.signal(number, handle)
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _init(args: argparse.Namespace) -> int:
    from activeserve.trainer.factory import build_model
    from activeserve.trainer.init import example_batch, init_model
    from activeserve.trainer.weights import load_weights

    try:
        overrides: dict[str, Any] = {}
        if args.config is not None:
            overrides = _read_toml(args.config)
        model = build_model(args.factory, args.factory_kwargs)
        if args.weights is not None:
            load_weights(model, args.weights)
        else:
            logger.warning(
                "no --weights given: version 1 of %s holds the factory's initial, "
                "untrained weights",
                args.name,
            )
        folder = init_model(
            args.repo,
            args.name,
            model,
            example_batch(args.input_shape),
            args.labels,
            args.factory,
            args.factory_kwargs,
            overrides,
            force=args.force,
        )
    except (TrainerError, CoreError) as exc:
        logger.error("init %s: %s", args.name, exc)
        return 1
    print(f"created {folder} (version 1)")
    return 0


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TrainerError(
            f"cannot read config {str(path)!r}: {exc}; expected a model config in "
            "TOML (see docs/config.md)"
        ) from exc
