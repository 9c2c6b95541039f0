"""The trainer's state folder: labels and cursor survive a restart, atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from activeserve.client import Client, LabelledSample
from activeserve.trainer.errors import DataError
from activeserve.trainer.service import ServiceOptions, TrainerService
from activeserve.trainer.state import LABELS_FILE, STATE_FILE, TrainerState

FLAG_ALL = """
[flag]
policy = "threshold"
score = "entropy"
threshold = 0.0
"""


def _sample(
    sample_id: int, cursor: int, label: int = 1, shape: tuple[int, ...] = (1, 8, 8)
) -> LabelledSample:
    return LabelledSample(
        sample_id=sample_id,
        model="digits",
        model_version="1",
        input=np.full(shape, sample_id, dtype=np.float32),
        label=label,
        unclassifiable=label < 0,
        predicted_label=0,
        probabilities=np.zeros(10, dtype=np.float32),
        scores={},
        reviewer="ann",
        labelled_at=0.0,
        cursor=cursor,
    )


def test_saved_labels_and_cursor_are_loaded_back(tmp_path: Path) -> None:
    state = TrainerState(tmp_path, "digits")
    for row in range(3):
        state.add(_sample(sample_id=10 + row, cursor=row + 1, label=row))
    state.mark_round()
    state.add(_sample(sample_id=20, cursor=4, label=7))
    state.add(_sample(sample_id=21, cursor=5, label=-1))
    state.save()

    loaded = TrainerState.load(tmp_path, "digits")
    labelled = loaded.labelled()

    assert (loaded.cursor, len(loaded), loaded.unclassifiable) == (5, 4, 1)
    assert loaded.rounds == 1 and loaded.new_labels == 1
    np.testing.assert_array_equal(labelled.sample_ids, [10, 11, 12, 20])
    np.testing.assert_array_equal(labelled.labels, [0, 1, 2, 7])
    np.testing.assert_array_equal(labelled.new_mask, [False, False, False, True])
    assert labelled.inputs.shape == (4, 1, 8, 8) and labelled.inputs.dtype == np.float32
    np.testing.assert_array_equal(labelled.inputs[:, 0, 0, 0], [10, 11, 12, 20])


def test_a_crash_between_the_two_renames_loses_nothing(tmp_path: Path) -> None:
    state = TrainerState(tmp_path, "digits")
    state.add(_sample(sample_id=1, cursor=1))
    state.save()
    earlier_json = (tmp_path / STATE_FILE).read_text()
    state.add(_sample(sample_id=2, cursor=2))
    state.save()
    # As if the process died after labels.npz was renamed, before state.json was.
    (tmp_path / STATE_FILE).write_text(earlier_json)

    loaded = TrainerState.load(tmp_path, "digits")

    assert (len(loaded), loaded.cursor) == (1, 1)
    # The stream gives sample 2 again, and it is taken.
    assert loaded.add(_sample(sample_id=2, cursor=2))
    assert len(loaded) == 2


def test_a_sample_given_twice_is_kept_once(tmp_path: Path) -> None:
    state = TrainerState(tmp_path, "digits")

    assert state.add(_sample(sample_id=5, cursor=1))
    assert not state.add(_sample(sample_id=5, cursor=2))
    assert len(state) == 1 and state.cursor == 2


def test_an_input_of_another_shape_is_refused(tmp_path: Path) -> None:
    state = TrainerState(tmp_path, "digits")
    state.add(_sample(sample_id=1, cursor=1))

    with pytest.raises(DataError, match=r"input shape \(8, 8\).*\(1, 8, 8\)"):
        state.add(_sample(sample_id=2, cursor=2, shape=(8, 8)))


def test_a_state_folder_of_another_model_is_refused(tmp_path: Path) -> None:
    state = TrainerState(tmp_path, "digits")
    state.add(_sample(sample_id=1, cursor=1))
    state.save()

    with pytest.raises(DataError, match=r"belongs to model 'digits', not 'letters'"):
        TrainerState.load(tmp_path, "letters")


def test_a_damaged_state_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text('{"model": "digits"}')

    with pytest.raises(DataError, match=r"cannot read trainer state .*'cursor'"):
        TrainerState.load(tmp_path, "digits")


def test_nothing_is_written_until_something_changes(tmp_path: Path) -> None:
    state = TrainerState(tmp_path / "state", "digits")
    state.save()

    assert not (tmp_path / "state").exists()
    state.add(_sample(sample_id=1, cursor=1))
    state.save()
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        LABELS_FILE,
        STATE_FILE,
    ]


def _label_all(client: Client, inputs: np.ndarray, unclassifiable: int = 0) -> None:
    client.predict("digits", inputs)
    for index, item in enumerate(client.review("digits", batch=16)):
        if index < unclassifiable:
            item.unclassifiable()
        else:
            item.submit(3)


def test_a_restarted_trainer_reads_only_labels_after_its_cursor(
    make_repository, start_server, tmp_path: Path
) -> None:
    server = start_server(make_repository(config=FLAG_ALL))
    inputs = np.random.default_rng(0).random((50, 1, 8, 8), dtype=np.float32)
    options = ServiceOptions(state_dir=tmp_path / "state")

    with Client(server.address, timeout_s=10) as client:
        _label_all(client, inputs[:30])
        first = TrainerService(client, "digits", options)
        read_first = first.read_labels(follow=False)
        cursor = first.state.cursor

        _label_all(client, inputs[30:], unclassifiable=2)
        second = TrainerService(client, "digits", options)
        held_at_restart = len(second.state)
        read_second = second.read_labels(follow=False)

    assert read_first == 30 and held_at_restart == 30
    assert second.state.cursor > cursor
    assert read_second == 20
    assert len(second.state) == 48 and second.state.unclassifiable == 2
    saved = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    assert saved["rows"] == 48 and saved["cursor"] == second.state.cursor


def test_a_follow_read_returns_after_poll_s_without_labels(
    make_repository, start_server, tmp_path: Path
) -> None:
    server = start_server(make_repository(config=FLAG_ALL))
    options = ServiceOptions(state_dir=tmp_path / "state", poll_s=0.2)

    with Client(server.address, timeout_s=10) as client:
        service = TrainerService(client, "digits", options)
        read = service.read_labels(follow=True)

    assert read == 0
