"""The training service against a real server: rounds on digits, the epsilon gate,
stopping criteria, and `activeserve train` as a process that stops on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from activeserve.client import Client
from activeserve.core.config import TrainingConfig
from activeserve.core.views import ViewConfig
from activeserve.trainer.cli import register
from activeserve.trainer.data import plan_round
from activeserve.trainer.fine_tune import fine_tune
from activeserve.trainer.init import init_model
from activeserve.trainer.models import small_cnn
from activeserve.trainer.service import ServiceOptions, TrainerService
from activeserve.trainer.toml_text import render_toml

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

MODEL = "digits"
SEED_LABELS = 60
POOL = 200
TEST_ROWS = 400
FACTORY = "activeserve.trainer.models:small_cnn"

# Every served input is flagged, so that each one can be labelled.
CONFIG: dict[str, dict[str, Any]] = {
    "flag": {"policy": "threshold", "score": "entropy", "threshold": 0.0},
    "training": {"epochs": 10, "batch_size": 32, "min_new_labels": 20, "seed": 0},
}

Digits = tuple[np.ndarray, np.ndarray]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits() -> Digits:
    """scikit-learn's digits, shuffled: images [1797, 1, 8, 8] in [0, 1], labels."""
    inputs, labels = load_digits(return_X_y=True)
    images = (inputs / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(labels.shape[0])
    return images[order], labels[order].astype(np.int64)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, digits: Digits) -> Path:
    """A repository whose version 1 is a small CNN trained on SEED_LABELS digits."""
    images, labels = digits[0][:SEED_LABELS], digits[1][:SEED_LABELS]
    # A deliberately weak version 1, so that its hard samples disagree with the
    # labels and no stopping criterion holds before the round.
    training = TrainingConfig(epochs=30, learning_rate=1e-3, seed=0)
    torch.manual_seed(0)
    network = small_cnn()
    plan = plan_round(
        "all",
        labels,
        np.ones(SEED_LABELS, dtype=bool),
        epochs=training.epochs,
        batch_size=training.batch_size,
    )
    fine_tune(
        network,
        images,
        labels,
        plan,
        config=training,
        views=ViewConfig(),
        device="cpu",
        progress=False,
    )

    root = tmp_path_factory.mktemp("template") / "repo"
    init_model(
        root,
        MODEL,
        network,
        images[:8],
        [str(k) for k in range(10)],
        FACTORY,
        {},
        CONFIG,
    )
    return root


@pytest.fixture
def make_repo(template: Path, tmp_path: Path) -> Callable[..., Path]:
    """A copy of the template; keyword tables are merged into its config.toml."""

    def make(**tables: dict[str, Any]) -> Path:
        root = tmp_path / "repo"
        shutil.copytree(template, root)
        path = root / MODEL / "config.toml"
        config = tomllib.loads(path.read_text())
        for table, keys in tables.items():
            config[table].update(keys)
        path.write_text(render_toml(config))
        return root

    return make


def _label(
    client: Client,
    images: np.ndarray,
    truth: np.ndarray,
    wrong: bool = False,
) -> int:
    """Serve `images` (all flagged) and label each as `truth` says (or off by one)."""
    result = client.predict(MODEL, images)
    truth_of = dict(zip(result.sample_ids.tolist(), truth.tolist(), strict=True))
    answered = 0
    for item in client.review(MODEL, batch=64, reviewer="test"):
        label = truth_of[item.sample_id]
        item.submit((label + 1) % 10 if wrong else label)
        answered += 1
    return answered


def _accuracy(client: Client, images: np.ndarray, truth: np.ndarray) -> float:
    result = client.predict(MODEL, images, flag=False)
    return float((result.labels == truth).mean())


def _options(tmp_path: Path, **fields: Any) -> ServiceOptions:
    return ServiceOptions(state_dir=tmp_path / "state", **fields)


def test_a_round_on_new_labels_raises_held_out_accuracy(
    make_repo: Callable[..., Path], start_server, digits: Digits, tmp_path: Path
) -> None:
    images, labels = digits
    test_images, test_labels = images[-TEST_ROWS:], labels[-TEST_ROWS:]
    pool = slice(SEED_LABELS, SEED_LABELS + POOL)
    server = start_server(make_repo())

    with Client(server.address, timeout_s=30) as client:
        before = _accuracy(client, test_images, test_labels)
        labelled = _label(client, images[pool], labels[pool])
        code = _train_command(
            "--server",
            server.address,
            "--model",
            MODEL,
            "--state-dir",
            str(tmp_path / "state"),
            "--once",
        )
        versions = client.list_versions(MODEL)
        after = _accuracy(client, test_images, test_labels)

    assert code == 0
    assert versions.serving == 2
    assert after > before + 0.05, (before, after)
    metadata = versions.versions[-1].metadata
    assert metadata["parent_version"] == 1
    assert metadata["labels_used"] == labelled
    assert metadata["metrics"]["validation_accuracy"] >= (
        metadata["metrics"]["parent_validation_accuracy"] - 0.005
    )
    assert metadata["policy"] == "all" and metadata["factory"] == FACTORY
    assert metadata["metrics"]["train_steps"] > 0
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert saved["rows"] == labelled and saved["trained_rows"] == labelled


def test_a_worse_model_is_not_published(
    make_repo: Callable[..., Path], start_server, digits: Digits, tmp_path: Path
) -> None:
    images, labels = digits
    validation = tmp_path / "validation.npz"
    np.savez(validation, inputs=images[-TEST_ROWS:], labels=labels[-TEST_ROWS:])
    # Validation comes from the file alone: the queue's labels are all wrong.
    server = start_server(make_repo(training={"validation_fraction": 0.0}))

    with Client(server.address, timeout_s=30) as client:
        pool = slice(SEED_LABELS, SEED_LABELS + POOL)
        _label(client, images[pool], labels[pool], wrong=True)
        service = TrainerService(
            client, MODEL, _options(tmp_path, validation_file=validation)
        )
        result = service.run_once()
        serving = client.list_versions(MODEL).serving

    assert result is not None and result.outcome == "rejected"
    assert result.validation_accuracy is not None
    assert result.parent_validation_accuracy is not None
    assert result.validation_accuracy < result.parent_validation_accuracy - 0.005
    assert result.validation_samples == TEST_ROWS
    assert serving == 1
    # The labels count as used: the next round waits for new ones.
    assert service.state.new_labels == 0


def test_a_stopping_criterion_skips_the_round_unless_forced(
    make_repo: Callable[..., Path], start_server, digits: Digits, tmp_path: Path
) -> None:
    images, labels = digits
    # ACFT-HQ here, so that a round asks the served model for its predictions.
    server = start_server(
        make_repo(stopping={"label_budget": 20}, training={"policy": "hq"})
    )

    with Client(server.address, timeout_s=30) as client:
        pool = slice(SEED_LABELS, SEED_LABELS + 60)
        _label(client, images[pool], labels[pool])
        stopping = client.queue_stats(MODEL).stopping
        held = TrainerService(client, MODEL, _options(tmp_path)).run_once()
        serving_held = client.list_versions(MODEL).serving
        forced = TrainerService(client, MODEL, _options(tmp_path, force=True))
        result = forced.run_once()
        serving_forced = client.list_versions(MODEL).serving

    assert stopping.stop and "budget" in stopping.reasons
    assert held is None and serving_held == 1
    assert result is not None and result.outcome == "published"
    assert result.report is not None and result.report.policy == "hq"
    assert serving_forced == 2


def test_train_runs_until_sigterm_and_exits_cleanly(
    make_repo: Callable[..., Path], start_server, digits: Digits, tmp_path: Path
) -> None:
    images, labels = digits
    server = start_server(make_repo())
    state_dir = tmp_path / "state"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _TRAIN_SCRIPT,
            "train",
            "--server",
            server.address,
            "--model",
            MODEL,
            "--state-dir",
            str(state_dir),
            "--poll-s",
            "0.3",
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with Client(server.address, timeout_s=30) as client:
            pool = slice(SEED_LABELS, SEED_LABELS + 40)
            _label(client, images[pool], labels[pool])
            serving = _wait_for(lambda: client.list_versions(MODEL).serving == 2)

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()

    assert serving, "the trainer published no version 2 within the wait"
    assert process.returncode == 0, output
    assert "trainer stopped" in output
    saved = json.loads((state_dir / "state.json").read_text())
    assert saved["rows"] == 40 and saved["rounds"] == 1


# `activeserve train` as the console command runs it, without needing the entry point
# to be installed.
_TRAIN_SCRIPT = """
import argparse, logging, sys
from activeserve.trainer.cli import register
parser = argparse.ArgumentParser()
register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
logging.basicConfig(level="INFO")
sys.exit(args.handler(args))
"""


def _train_command(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="activeserve")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *argv])
    code: int = args.handler(args)
    return code


def _wait_for(condition: Callable[[], bool], timeout_s: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_seed_data_joins_every_rounds_training_labels() -> None:
    from activeserve.trainer.rounds import LabelledArrays, _split
    from activeserve.trainer.state import LabelledSet

    labelled = LabelledSet(
        sample_ids=np.arange(1, 11),
        inputs=np.zeros((10, 1, 8, 8), np.float32),
        labels=np.arange(10) % 3,
        new_mask=np.ones(10, bool),
    )
    seed = LabelledArrays(np.ones((4, 1, 8, 8), np.float32), np.array([0, 1, 2, 0]))

    split = _split(labelled, 0.2, 0, None, seed)
    plain = _split(labelled, 0.2, 0, None)

    assert len(split.train_labels) == len(plain.train_labels) + 4
    assert not split.train_new[:4].any()
    np.testing.assert_array_equal(split.train_labels[:4], [0, 1, 2, 0])
    assert len(split.validation_labels) == len(plain.validation_labels)
