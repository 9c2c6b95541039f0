"""The whole loop in one command, on scikit-learn's digits (`make demo`).

1. Version 1 of a small CNN is trained on a small seed set and written to a fresh
   repository (`init_model`).
2. `activeserve serve` and `activeserve train` start as processes of their own, with
   the embedded default queue (SQLite) beside the repository.
3. The rest of the digits arrive as production traffic, in waves, through the SDK; the
   server flags the inputs it finds hard.
4. An oracle reviewer (the ground truth) labels every flagged sample through the SDK;
   the trainer fine-tunes on them and publishes new versions, which the server swaps in.
5. After each wave the demo prints the labels used, the version served and its accuracy
   on held-out digits; at the end a table and a learning-curve PNG.

Every process it started is stopped before it returns.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from activeserve.client import Client, ClientError

logger = logging.getLogger(__name__)

MODEL = "digits"
FACTORY = "activeserve.trainer.models:small_cnn"
FACTORY_KWARGS = {"num_classes": 10, "in_channels": 1, "image_size": 8}

# The loop's settings: a served model that flags a quarter of its traffic, and a
# trainer that starts a round every 40 new labels.
DEMO_CONFIG: dict[str, dict[str, Any]] = {
    "uncertainty": {"views": 5, "augmentations": ["shift"], "alpha": 0.25},
    "flag": {
        "policy": "top_fraction",
        "top_fraction": 0.25,
        "window": 200,
        "min_window": 16,
        "score": "score",
    },
    "training": {
        "epochs": 12,
        "min_new_labels": 40,
        "validation_fraction": 0.2,
        "epsilon": 0.02,
    },
}


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs; each field has a command-line flag."""

    workdir: Path
    seed_labels: int = 60
    test_size: int = 400
    waves: int = 8
    wave_timeout_s: float = 25.0
    seed: int = 0
    # None: every digit not in the seed set or the held-out set.
    traffic_limit: int | None = None


@dataclass(frozen=True)
class WaveReport:
    wave: int
    traffic: int
    flagged: int
    labels_used: int
    version: int
    accuracy: float


@dataclass(frozen=True)
class Digits:
    seed_x: np.ndarray
    seed_y: np.ndarray
    traffic_x: np.ndarray
    traffic_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_digits_split(options: DemoOptions) -> Digits:
    """Digits as `[N, 1, 8, 8]` float32 in [0, 1]: seed set, traffic, held-out test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = data.target.astype(np.int64)
    rest_x, test_x, rest_y, test_y = train_test_split(
        images,
        labels,
        test_size=options.test_size,
        random_state=options.seed,
        stratify=labels,
    )
    traffic_x, seed_x, traffic_y, seed_y = train_test_split(
        rest_x,
        rest_y,
        test_size=options.seed_labels,
        random_state=options.seed,
        stratify=rest_y,
    )
    limit = options.traffic_limit
    return Digits(seed_x, seed_y, traffic_x[:limit], traffic_y[:limit], test_x, test_y)


def train_first_version(digits: Digits, repository: Path, seed: int) -> float:
    """Train version 1 on the seed set, write it to `repository`; its test accuracy."""
    import torch

    from activeserve.core.config import ModelConfig
    from activeserve.trainer.data import plan_round
    from activeserve.trainer.factory import build_model
    from activeserve.trainer.fine_tune import evaluate, fine_tune
    from activeserve.trainer.init import init_model

    torch.manual_seed(seed)
    config = ModelConfig.from_dict(DEMO_CONFIG)
    model = build_model(FACTORY, FACTORY_KWARGS)
    labels = digits.seed_y
    plan = plan_round(
        "all",
        labels,
        np.ones(len(labels), bool),
        epochs=40,
        batch_size=config.training.batch_size,
    )
    fine_tune(
        model,
        digits.seed_x,
        labels,
        plan,
        config=config.training,
        views=config.uncertainty.views,
        progress=False,
    )
    accuracy = evaluate(model, digits.test_x, digits.test_y)
    init_model(
        repository,
        MODEL,
        model,
        digits.seed_x[:8],
        [str(k) for k in range(10)],
        FACTORY,
        FACTORY_KWARGS,
        DEMO_CONFIG,
        metadata={
            # Queue labels the version was trained on: none yet (the seed set is
            # the trainer's --train-file, not the queue's).
            "labels_used": 0,
            "seed_labels": len(labels),
            # Held-out digits, not the trainer's validation split of hard samples:
            # recorded under its own name so the plateau rule does not compare them.
            "metrics": {"seed_test_accuracy": accuracy},
        },
    )
    return accuracy


class OracleReviewer:
    """Labels every flagged sample with the ground truth, through the SDK."""

    def __init__(self, address: str, truth: dict[bytes, int]) -> None:
        self._address = address
        self._truth = truth
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oracle", daemon=True)
        self.labelled = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with Client(self._address, timeout_s=10) as client:
            while not self._stop.is_set():
                try:
                    for item in client.review(MODEL, batch=16, reviewer="oracle"):
                        item.submit(self._truth[_key(item.input)])
                        self.labelled += 1
                except ClientError as error:
                    logger.warning("oracle reviewer: %s", error)
                self._stop.wait(0.2)


def run_demo(options: DemoOptions) -> list[WaveReport]:
    """The whole loop; returns one report per wave (wave 0 = before any traffic)."""
    started = time.monotonic()
    digits = load_digits_split(options)
    repository = options.workdir / "models"
    print(f"activeserve demo in {options.workdir}")
    print(
        f"  digits: {len(digits.seed_y)} seed labels, {len(digits.traffic_y)} "
        f"traffic inputs, {len(digits.test_y)} held out"
    )

    first = train_first_version(digits, repository, options.seed)
    print(f"  version 1 trained on the seed set: held-out accuracy {first:.3f}")

    truth = {
        _key(x): int(y) for x, y in zip(digits.traffic_x, digits.traffic_y, strict=True)
    }
    logs = options.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with _process(
        [
            "serve",
            "--repository",
            str(repository),
            "--address",
            "127.0.0.1:0",
            "--queue",
            f"sqlite://{options.workdir / 'queue.db'}",
            "--poll-interval-s",
            "1",
        ],
        logs / "server.log",
    ) as server_log:
        address = _wait_for_address(server_log)
        seed_file = options.workdir / "seed.npz"
        np.savez(seed_file, inputs=digits.seed_x, labels=digits.seed_y)
        with (
            _process(
                [
                    "train",
                    "--server",
                    address,
                    "--model",
                    MODEL,
                    "--state-dir",
                    str(options.workdir / "trainer"),
                    "--poll-s",
                    "1",
                    "--train-file",
                    str(seed_file),
                ],
                logs / "trainer.log",
            ),
            Client(address, timeout_s=30) as client,
        ):
            reviewer = OracleReviewer(address, truth)
            reviewer.start()
            try:
                reports = _waves(client, digits, options, reviewer)
            finally:
                reviewer.stop()

    _print_table(reports)
    plot = options.workdir / "learning_curve.png"
    _plot(reports, plot)
    print(f"\nlearning curve: {plot}")
    print(f"logs: {logs}; finished in {time.monotonic() - started:.0f} s")
    return reports


def _waves(
    client: Client, digits: Digits, options: DemoOptions, reviewer: OracleReviewer
) -> list[WaveReport]:
    reports = [_report(client, digits, 0, 0, 0)]
    _print_progress(reports[-1])
    waves = np.array_split(np.arange(len(digits.traffic_y)), options.waves)
    sent = flagged = 0
    for number, wave in enumerate(waves, start=1):
        for start in range(0, len(wave), 16):
            rows = wave[start : start + 16]
            result = client.predict(MODEL, digits.traffic_x[rows])
            flagged += int(result.flagged.sum())
        sent += len(wave)
        _settle(client, options.wave_timeout_s)
        reports.append(_report(client, digits, number, sent, flagged))
        _print_progress(reports[-1])
    return reports


def _settle(client: Client, timeout_s: float) -> None:
    """Wait until the reviewer has labelled the wave and the trainer has caught up
    (fewer than a round's worth of labels newer than the served version's), or
    `timeout_s` has passed: a round the trainer rejects leaves it behind."""
    round_size = int(DEMO_CONFIG["training"]["min_new_labels"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(1.0)
        stats = client.queue_stats(MODEL)
        if stats.counts.get("pending", 0) or stats.counts.get("leased", 0):
            continue
        if stats.labels_total - _served_labels(client) < round_size:
            return


def _served_labels(client: Client) -> int:
    """Queue labels the served version was trained on (from its metadata)."""
    versions = client.list_versions(MODEL)
    for info in versions.versions:
        if info.version == versions.serving:
            return int(info.metadata.get("labels_used", 0))
    return 0


def _report(
    client: Client, digits: Digits, wave: int, traffic: int, flagged: int
) -> WaveReport:
    result = client.predict(MODEL, digits.test_x, flag=False)
    accuracy = float((result.labels == digits.test_y).mean())
    stats = client.queue_stats(MODEL)
    return WaveReport(
        wave, traffic, flagged, stats.labels_total, result.version, accuracy
    )


def _print_progress(report: WaveReport) -> None:
    print(
        f"  wave {report.wave}: {report.traffic:>5} inputs served, "
        f"{report.labels_used:>4} labels used, version {report.version} serving, "
        f"held-out accuracy {report.accuracy:.3f}"
    )


def _print_table(reports: list[WaveReport]) -> None:
    print("\n wave  traffic  flagged  labels  version  accuracy")
    for r in reports:
        print(
            f" {r.wave:>4}  {r.traffic:>7}  {r.flagged:>7}  {r.labels_used:>6}  "
            f"{r.version:>7}  {r.accuracy:>8.3f}"
        )


def _plot(reports: list[WaveReport], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.labels_used for r in reports]
    accuracy = [r.accuracy for r in reports]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(labels, accuracy, marker="o")
    for r in reports:
        axes.annotate(
            f"v{r.version}",
            (r.labels_used, r.accuracy),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=8,
        )
    axes.set_xlabel("human labels used (seed set excluded)")
    axes.set_ylabel("held-out accuracy")
    axes.set_title("activeserve demo: digits, learning from its own traffic")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@contextmanager
def _process(arguments: list[str], log_path: Path) -> Iterator[IO[str]]:
    """Run `activeserve ARGUMENTS` with its output in `log_path`; yields the log
    opened for reading. SIGTERM on exit, SIGKILL if it does not stop in 30 s."""
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "activeserve.client.cli", *arguments],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    reader = log_path.open()
    try:
        yield reader
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        reader.close()
        log.close()
        print(f"  stopped `activeserve {arguments[0]}` (exit {code})")


def _wait_for_address(log: IO[str], timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = log.readline()
        if not line:
            time.sleep(0.1)
            continue
        match = re.search(r"listening on (\S+:\d+)", line)
        if match:
            return match.group(1)
    raise RuntimeError("the server did not start; see logs/server.log")


def _key(array: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(array, np.float32).tobytes()).digest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the repository, queue, logs and plot go "
        "(default: a new temporary folder)",
    )
    parser.add_argument("--waves", type=int, default=DemoOptions.waves)
    parser.add_argument("--seed", type=int, default=DemoOptions.seed)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="activeserve-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run_demo(DemoOptions(workdir=workdir, waves=args.waves, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
