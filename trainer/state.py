"""The trainer's local state: every label it has read, and where the stream stands.

The trainer reads labels from the server's stream (``Client.labelled``) and keeps them
in a state folder, by default ``./.activeserve-trainer/<model>/``, so that a restart
resumes from the last cursor instead of reading every label again::

    labels.npz    sample_ids [N] int64, inputs [N, *S] float32, labels [N] int64
    state.json    cursor, row count, rows trained on, unclassifiable count, rounds

Rows are kept in the order the stream gave them (cursor order); the rows at and after
``trained_rows`` are the labels that arrived since the last round.

Both files are replaced atomically (written beside, flushed, renamed), ``labels.npz``
first. ``state.json`` names the row count its cursor belongs to, so a crash between
the two renames leaves a ``labels.npz`` with rows the JSON does not count yet; they
are dropped on load and read again from the stream. Nothing is ever half-written.

Samples a reviewer marked unclassifiable are counted, not kept: no class fits them, so
there is nothing to train on. A sample id already held is ignored if the stream gives
it again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from activeserve.client import LabelledSample
from activeserve.trainer.errors import DataError

logger = logging.getLogger(__name__)

LABELS_FILE = "labels.npz"
STATE_FILE = "state.json"

#: Version of the state layout, so that a reader can tell old folders apart.
STATE_FORMAT = 1


def default_state_dir(model: str) -> Path:
    """``./.activeserve-trainer/<model>/`` under the current directory."""
    return Path(".activeserve-trainer") / model


@dataclass(frozen=True)
class LabelledSet:
    """The labels held, as arrays, rows in stream order.

    ``sample_ids`` ``[N]`` int64, ``inputs`` ``[N, *S]`` float32, ``labels`` ``[N]``
    int64 class indices, ``new_mask`` ``[N]`` bool, True for labels that arrived since
    the last round.
    """

    sample_ids: np.ndarray
    inputs: np.ndarray
    labels: np.ndarray
    new_mask: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


class TrainerState:
    """Labels read so far for one model, and the stream cursor; see the module doc.

    Not thread-safe: one trainer process owns a state folder. Changes stay in memory
    until :meth:`save`.
    """

    def __init__(self, directory: Path, model: str) -> None:
        """An empty state for ``model`` in ``directory``; use :meth:`load` to resume."""
        self.directory = directory
        self.model = model
        self.cursor = 0
        self.trained_rows = 0
        self.unclassifiable = 0
        self.rounds = 0
        self._ids: list[int] = []
        self._inputs: list[np.ndarray] = []
        self._labels: list[int] = []
        self._known: set[int] = set()
        self._dirty = False

    @classmethod
    def load(cls, directory: Path, model: str) -> TrainerState:
        """The state saved in ``directory``, or an empty one when it holds none.

        Raises :class:`DataError` when the folder belongs to another model or its
        files are unreadable.
        """
        state = cls(directory, model)
        state_path = directory / STATE_FILE
        if not state_path.is_file():
            logger.info(
                "model %s: no trainer state in %s; starting empty", model, directory
            )
            return state

        saved = _read_json(state_path)
        if saved.get("model") != model:
            raise DataError(
                f"trainer state {str(directory)!r} belongs to model "
                f"{saved.get('model')!r}, not {model!r}; pass the --state-dir of "
                f"model {model!r} or a new folder"
            )
        rows = int(saved["rows"])
        state.cursor = int(saved["cursor"])
        state.trained_rows = min(int(saved["trained_rows"]), rows)
        state.unclassifiable = int(saved["unclassifiable"])
        state.rounds = int(saved["rounds"])
        if rows:
            state._load_rows(directory / LABELS_FILE, rows)

        logger.info(
            "model %s: resumed trainer state from %s: %s labels (%s new), cursor %s",
            model,
            directory,
            len(state),
            state.new_labels,
            state.cursor,
        )
        return state

    def _load_rows(self, path: Path, rows: int) -> None:
        try:
            with np.load(path) as arrays:
                ids = arrays["sample_ids"]
                inputs = arrays["inputs"]
                labels = arrays["labels"]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(
                f"cannot read trainer labels {str(path)!r}: {exc}; expected an .npz "
                "written by the trainer (delete the state folder to read every "
                "label from the server again)"
            ) from exc
        if ids.shape[0] < rows:
            raise DataError(
                f"trainer labels {str(path)!r} hold {ids.shape[0]!r} rows but "
                f"{STATE_FILE} counts {rows!r}; the folder was changed by hand "
                "(delete it to read every label from the server again)"
            )

        # Rows beyond the count were saved just before a crash; the cursor in
        # state.json predates them, so the stream gives them again.
        self._ids = [int(i) for i in ids[:rows]]
        self._inputs = [inputs[:rows]]
        self._labels = [int(label) for label in labels[:rows]]
        self._known = set(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def new_labels(self) -> int:
        """Labels held that arrived since the last round."""
        return len(self) - self.trained_rows

    @property
    def dirty(self) -> bool:
        """Whether there are changes not yet saved."""
        return self._dirty

    def add(self, sample: LabelledSample) -> bool:
        """Take one sample from the stream; True when it adds a label to train on.

        Advances the cursor in every case. Raises :class:`DataError` when the input's
        shape differs from the inputs held.
        """
        self.cursor = max(self.cursor, sample.cursor)
        self._dirty = True

        if sample.unclassifiable or sample.label < 0:
            self.unclassifiable += 1
            return False
        if sample.sample_id in self._known:
            logger.debug(
                "model %s: sample %s is held already; ignored",
                self.model,
                sample.sample_id,
            )
            return False

        candidate = np.asarray(sample.input, dtype=np.float32)
        shape = self.input_shape
        if shape is not None and candidate.shape != shape:
            raise DataError(
                f"sample {sample.sample_id!r} of model {self.model!r} has input shape "
                f"{candidate.shape!r}, but the labels held have {shape!r}; a model "
                "takes one input shape (use a new --state-dir after changing it)"
            )

        self._ids.append(sample.sample_id)
        self._inputs.append(candidate[np.newaxis])
        self._labels.append(sample.label)
        self._known.add(sample.sample_id)
        return True

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """``S``, the shape of one input, or None before the first label."""
        if not self._inputs:
            return None
        return tuple(int(d) for d in self._inputs[0].shape[1:])

    def labelled(self) -> LabelledSet:
        """The labels held as arrays (see :class:`LabelledSet`)."""
        inputs = self._stacked_inputs()
        new_mask = np.zeros(len(self), dtype=np.bool_)
        new_mask[self.trained_rows :] = True
        return LabelledSet(
            sample_ids=np.asarray(self._ids, dtype=np.int64),
            inputs=inputs,
            labels=np.asarray(self._labels, dtype=np.int64),
            new_mask=new_mask,
        )

    def _stacked_inputs(self) -> np.ndarray:
        if not self._inputs:
            return np.zeros((0,), dtype=np.float32)
        if len(self._inputs) > 1:
            # Stack once and keep the result, so the next call costs nothing.
            self._inputs = [np.concatenate(self._inputs)]
        return self._inputs[0]

    def mark_round(self) -> None:
        """Count every label held as trained on: the next round waits for new ones."""
        self.trained_rows = len(self)
        self.rounds += 1
        self._dirty = True

    def save(self) -> None:
        """Write both files atomically (labels first); a no-op when nothing changed."""
        if not self._dirty:
            return
        self.directory.mkdir(parents=True, exist_ok=True)

        labelled = self.labelled()
        with _atomic(self.directory / LABELS_FILE) as stream:
            np.savez(
                stream,
                sample_ids=labelled.sample_ids,
                inputs=labelled.inputs,
                labels=labelled.labels,
            )

        saved = {
            "format": STATE_FORMAT,
            "model": self.model,
            "cursor": self.cursor,
            "rows": len(self),
            "trained_rows": self.trained_rows,
            "unclassifiable": self.unclassifiable,
            "rounds": self.rounds,
        }
        with _atomic(self.directory / STATE_FILE) as stream:
            stream.write(json.dumps(saved, indent=2).encode() + b"\n")

        self._dirty = False
        logger.debug(
            "model %s: saved %s labels, cursor %s, to %s",
            self.model,
            len(self),
            self.cursor,
            self.directory,
        )


@contextmanager
def _atomic(path: Path) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary file beside it, renamed when complete."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        for key in ("cursor", "rows", "trained_rows", "unclassifiable", "rounds"):
            int(data[key])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"cannot read trainer state {str(path)!r}: {exc}; expected the JSON the "
            "trainer writes (delete the state folder to read every label again)"
        ) from exc
    return data
