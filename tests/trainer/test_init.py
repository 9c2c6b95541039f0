"""`activeserve init` and `init_model`: a new model in a repository, before serving."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from activeserve.client import Client
from activeserve.core.config import load_model_config
from activeserve.trainer import cli
from activeserve.trainer.errors import DataError, TrainerError
from activeserve.trainer.factory import build_model
from activeserve.trainer.init import example_batch, init_model
from activeserve.trainer.toml_text import render_toml
from activeserve.trainer.versioning import read_metadata
from activeserve.trainer.weights import load_weights, save_weights

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

FACTORY = "activeserve.trainer.models:mlp"
KWARGS = {"in_features": 6, "num_classes": 3, "hidden": [8]}
LABELS = ["cat", "dog", "bird"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _network(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(FACTORY, KWARGS)


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="activeserve")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_init_creates_a_repository_the_server_serves(
    tmp_path: Path, start_server
) -> None:
    network = _network()
    example = example_batch((6,))
    repo = tmp_path / "repo"

    folder = init_model(
        repo,
        "pets",
        network,
        example,
        LABELS,
        FACTORY,
        KWARGS,
        {"training": {"epochs": 3}},
        metadata={"metrics": {"seed_accuracy": 0.5}},
    )

    assert folder == repo / "pets"
    assert sorted(p.name for p in repo.iterdir()) == ["pets"]
    config = load_model_config(folder / "config.toml")
    assert config.model.labels == tuple(LABELS)
    assert config.training.factory == FACTORY
    assert dict(config.training.factory_kwargs) == KWARGS
    assert config.training.epochs == 3
    metadata = read_metadata(folder / "1" / "metadata.json")
    assert metadata.parent_version is None and metadata.factory == FACTORY
    assert metadata.input_shape == (6,) and metadata.metrics == {"seed_accuracy": 0.5}

    server = start_server(repo)
    with Client(server.address, timeout_s=10) as client:
        result = client.predict("pets", example, flag=False)
    with torch.inference_mode():
        expected = network(torch.from_numpy(example)).argmax(dim=1).numpy()
    assert result.version == 1
    np.testing.assert_array_equal(result.labels, expected)


def test_init_refuses_an_existing_model_unless_forced(tmp_path: Path) -> None:
    example = example_batch((6,))
    init_model(tmp_path, "pets", _network(0), example, LABELS, FACTORY, KWARGS)
    (tmp_path / "pets" / "7").mkdir()

    with pytest.raises(TrainerError, match=r"exists already.*--force"):
        init_model(tmp_path, "pets", _network(1), example, LABELS, FACTORY, KWARGS)
    init_model(tmp_path, "pets", _network(1), example, [], FACTORY, KWARGS, force=True)

    assert sorted(p.name for p in (tmp_path / "pets").iterdir()) == [
        "1",
        "config.toml",
    ]
    assert load_model_config(tmp_path / "pets" / "config.toml").model.labels == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets"]


def test_init_refuses_labels_that_do_not_match_the_outputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"2 labels \['a', 'b'\].*3 outputs"):
        init_model(
            tmp_path,
            "pets",
            _network(),
            example_batch((6,)),
            ["a", "b"],
            FACTORY,
            KWARGS,
        )
    assert not (tmp_path / "pets").exists()


def test_init_refuses_a_name_the_server_would_not_serve(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match=r"'\.hidden' is not one the server serves"):
        init_model(
            tmp_path, ".hidden", _network(), example_batch((6,)), [], FACTORY, KWARGS
        )


def test_init_refuses_a_config_that_contradicts_the_arguments(tmp_path: Path) -> None:
    overrides = {"training": {"factory": "other.module:net"}}

    with pytest.raises(TrainerError, match=r"factory = 'other.module:net'.*one place"):
        init_model(
            tmp_path,
            "pets",
            _network(),
            example_batch((6,)),
            [],
            FACTORY,
            KWARGS,
            overrides,
        )


def test_init_command_writes_trained_weights_and_merges_a_config(
    tmp_path: Path,
) -> None:
    network = _network(3)
    weights = tmp_path / "trained.safetensors"
    save_weights(network, weights)
    config = tmp_path / "base.toml"
    config.write_text('[flag]\npolicy = "threshold"\n\n[training]\nepochs = 4\n')

    code = _run_cli(
        "init",
        str(tmp_path / "repo"),
        "pets",
        "--factory",
        FACTORY,
        "--factory-kwargs",
        json.dumps(KWARGS),
        "--weights",
        str(weights),
        "--input-shape",
        "6",
        "--labels",
        "cat,dog,bird",
        "--config",
        str(config),
    )

    assert code == 0
    written = load_model_config(tmp_path / "repo" / "pets" / "config.toml")
    assert written.flag.policy == "threshold" and written.training.epochs == 4
    assert written.model.labels == tuple(LABELS)
    restored = build_model(FACTORY, KWARGS)
    load_weights(restored, tmp_path / "repo" / "pets" / "1" / "weights.safetensors")
    for name, tensor in network.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[name], tensor)


def test_init_command_reports_a_bad_factory_and_exits_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = _run_cli(
        "init",
        str(tmp_path),
        "pets",
        "--factory",
        "no_such_module:net",
        "--input-shape",
        "6",
    )

    assert code == 1
    assert "cannot import module 'no_such_module'" in caplog.text
    assert not (tmp_path / "pets").exists()


def test_init_command_refuses_a_malformed_input_shape(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        _run_cli("init", "repo", "pets", "--factory", FACTORY, "--input-shape", "1,x")
    assert "'1,x' is not a shape" in capsys.readouterr().err


def test_toml_text_reads_back_as_the_document() -> None:
    document = {
        "model": {"labels": ['say "hi"', "back\\slash", "tab\there", "é", "\x7f"]},
        "training": {
            "factory_kwargs": {"hidden": [8, 4], "name": "x", "on": True},
            "learning_rate": 1e-3,
            "epochs": 3,
        },
        "odd keys": {"a.b": 1.5},
    }

    text = render_toml(document, header="a header")

    assert text.startswith("# a header\n")
    assert tomllib.loads(text) == {
        "model": {"labels": ['say "hi"', "back\\slash", "tab\there", "é", "\x7f"]},
        "training": {
            "factory_kwargs": {"hidden": [8, 4], "name": "x", "on": True},
            "learning_rate": 1e-3,
            "epochs": 3,
        },
        "odd keys": {"a.b": 1.5},
    }


def test_toml_text_refuses_a_value_toml_cannot_hold() -> None:
    with pytest.raises(TrainerError, match=r"'seed' has value None.*TOML cannot hold"):
        render_toml({"training": {"seed": None}})
