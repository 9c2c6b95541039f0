"""A model version ready to serve: its graph, its config, and the uncertainty pipeline.

`predict` turns candidates into predictions plus AIFT scores:

1. make `m` views of each candidate (`activeserve.core.views`), unless the client sent
   its own (each candidate is then `m` consecutive rows);
2. run every patch through the graph, merged with other requests by the batcher;
3. turn the class output into probabilities (softmax of logits, or the probabilities the
   graph gives) and score them (`activeserve.core.scores`).

With `cascade`, every candidate first runs as a single view; only those whose
single-view uncertainty reaches `cascade_threshold` run the other `m - 1` views, so
confident traffic costs one forward pass.

The prediction (`probabilities`, `label`) and the graph's own outputs are those of the
input as given (patch 0); the views feed the scores.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from activeserve.core.config import ModelConfig
from activeserve.core.scores import (
    SCORE_NAMES,
    Scores,
    score_patches,
    uncertainty,
)
from activeserve.core.views import make_views
from activeserve.proto.codec import dtype_of
from activeserve.server.errors import InvalidRequest, ModelLoadError
from activeserve.server.runtime.batcher import Batcher
from activeserve.server.runtime.placement import RunPlacement
from activeserve.server.runtime.session import OnnxSession, TensorSpec
from activeserve.server.runtime.single_view import batch_columns

logger = logging.getLogger(__name__)

# Timed one-row runs at load: enough for the fastest to be a model's own speed.
_WARM_UP_RUNS = 5


@dataclass(frozen=True)
class Prediction:
    """What `LoadedModel.predict` gives for N candidates.

    `outputs` are the graph's own outputs for the inputs as given (first axis N);
    `probabilities` is `[N, K]` float32, `labels` `[N]` int64, `views` `[N]` int32 the
    number of views each candidate was scored with (1 where the cascade stopped
    early). The scores are float32 where they are single-view scores computed for
    a whole batch, float64 where they were computed for this call.
    """

    outputs: dict[str, np.ndarray]
    probabilities: np.ndarray
    labels: np.ndarray
    scores: Scores
    views: np.ndarray


class LoadedModel:
    """One version of one model, loaded and validated; `predict` is a coroutine."""

    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        config: ModelConfig,
        *,
        executor: Executor | None,
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.config = config
        self.session = OnnxSession(path / "model.onnx", config.runtime)
        self.input = _pick(self.session.inputs, config.model.input_name, "input", path)
        self.class_output = _pick(
            self.session.outputs, config.model.output_name, "output", path
        )
        self._class_index = self.session.outputs.index(self.class_output)
        # A device run's time is mostly spent waiting on the device, which the CPU
        # time that `RunPlacement` measures does not see: only CPU runs go inline.
        inline_run_us = (
            config.runtime.inline_run_us
            if self.session.provider == "CPUExecutionProvider"
            else 0.0
        )
        self._placement = RunPlacement(inline_run_us, executor)
        self._check_signature(path)
        self.num_classes = self.class_output.shape[-1]
        self.labels = config.model.labels or tuple(
            str(k) for k in range(self.num_classes)
        )
        if len(self.labels) != self.num_classes:
            raise ModelLoadError(
                f"{path}: config.toml lists {len(self.labels)} labels but the graph's "
                f"output {self.class_output.name!r} has {self.num_classes} classes"
            )

        self._input_dtype = dtype_of(self.input.datatype)
        # Every dimension after the batch axis, when the graph fixes them all: then
        # checking a request's shape is one comparison.
        inner = tuple(self.input.shape[1:])
        self._fixed_inner = None if -1 in inner else inner
        self._logits = config.model.output == "logits"
        # Calls in flight: a retired version closes only when they have finished, so
        # a request never meets a half-closed model, even between its two cascade runs.
        self._in_flight = 0
        # Set by `close` while calls are in flight; the last call to finish sets it.
        self._drained: asyncio.Future[None] | None = None
        self._batcher = (
            Batcher(
                self._run_rows,
                max_batch_size=config.batching.max_batch_size,
                max_queue_delay_ms=config.batching.max_queue_delay_ms,
                busy_queue_delay_ms=config.batching.busy_queue_delay_ms,
                busy_max_delay_ms=config.batching.busy_max_delay_ms,
                placement=self._placement,
                name=f"{name}/{version}",
            )
            if config.batching.enabled
            else None
        )
        logger.info(
            "model %s version %d loaded from %s on %s (input %s %s %s, %d classes)",
            name,
            version,
            path,
            self.session.provider,
            self.input.name,
            self.input.datatype,
            list(self.input.shape),
            self.num_classes,
        )

    @property
    def batcher(self) -> Batcher | None:
        return self._batcher

    @property
    def placement(self) -> RunPlacement:
        return self._placement

    @property
    def input_dtype(self) -> np.dtype[Any]:
        return self._input_dtype

    def warm_up(self) -> None:
        """Run one row of zeros a few times, so that the first request does not pay
        for ONNX Runtime's lazy initialisation and the timed runs tell where one-row
        runs belong (`RunPlacement`); with `[runtime] intra_op_threads = 0`, a model
        whose one-row run fits the inline budget is then reloaded with one thread.
        Inputs with free inner dimensions cannot be invented, so those models start
        cold, with ONNX Runtime's default threads."""
        if -1 in self.input.shape[1:]:
            return
        rows = np.zeros((1, *self.input.shape[1:]), dtype=self._input_dtype)
        self._run_rows(rows)
        fastest_s = self._time_runs(rows)

        self._placement.seed(1, fastest_s)

        runtime = self.config.runtime
        if runtime.intra_op_threads == 0 and self._placement.fits_inline(fastest_s):
            # Such runs happen on the event loop's thread and are over before a
            # pool's workers would have woken: the pool only adds wake-ups and
            # burns a core the server's own threads need.
            single = replace(runtime, intra_op_threads=1)
            self.session = OnnxSession(self.path / "model.onnx", single)
            self._run_rows(rows)
            fastest_s = self._time_runs(rows)
            self._placement.seed(1, fastest_s)
            logger.info(
                "model %s version %d: a one-row run takes %.0f us, within "
                "inline_run_us; ONNX Runtime runs it on one thread",
                self.name,
                self.version,
                fastest_s * 1e6,
            )

    def _time_runs(self, rows: np.ndarray) -> float:
        """The fastest of a few timed runs of `rows`, in seconds: a neighbour on a
        shared machine, or a first run's allocations, only ever make a run slower."""
        fastest_s = math.inf
        for _ in range(_WARM_UP_RUNS):
            started = time.perf_counter()
            self._run_rows(rows)
            fastest_s = min(fastest_s, time.perf_counter() - started)
        return fastest_s

    def check_input(self, name: str, datatype: str, shape: Sequence[int]) -> None:
        """Refuse an input whose name, datatype or shape the graph cannot take."""
        expected = self.input
        if name != expected.name:
            raise InvalidRequest(
                f"model {self.name!r} has no input {name!r}; expected {expected.name!r}"
            )
        if datatype != expected.datatype:
            raise InvalidRequest(
                f"input {name!r}: datatype {datatype!r} given, model {self.name!r} "
                f"expects {expected.datatype!r}"
            )
        inner = tuple(shape[1:])
        if len(shape) != len(expected.shape) or (
            inner != self._fixed_inner
            if self._fixed_inner is not None
            else any(
                want not in (-1, got)
                for want, got in zip(expected.shape[1:], inner, strict=True)
            )
        ):
            raise InvalidRequest(
                f"input {name!r}: shape {list(shape)!r} given, model {self.name!r} "
                f"expects {list(expected.shape)!r} (-1 = any size)"
            )

    def check_finite(self, name: str, array: np.ndarray) -> None:
        """Refuse NaN or infinite values: the scores of such an input mean nothing."""
        if array.dtype.kind != "f":
            return
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(array.size - np.count_nonzero(finite))
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise InvalidRequest(
                f"input {name!r}: {bad} value(s) are NaN or infinite (first at index "
                f"{list(first)!r}); model {self.name!r} needs finite values"
            )

    async def predict(
        self, candidates: np.ndarray, *, client_views: int | None = None
    ) -> Prediction:
        """Predictions and scores for `candidates` `[N, *S]`.

        With `client_views = m`, the rows are the client's own views: `N * m` rows, each
        candidate's `m` views consecutive, the first being the input as given.
        """
        self._in_flight += 1
        try:
            return await self._predict(candidates, client_views)
        finally:
            self._in_flight -= 1
            drained = self._drained
            if self._in_flight == 0 and drained is not None and not drained.done():
                drained.set_result(None)

    async def _predict(
        self, candidates: np.ndarray, client_views: int | None
    ) -> Prediction:
        if client_views is not None:
            return await self._predict_client_views(candidates, client_views)

        views = self.config.uncertainty.views
        if views.count == 1:
            rows = await self._run(candidates)
            return self._prediction(rows, rows.single, _views(len(candidates), 1))

        if self.config.uncertainty.cascade:
            return await self._predict_cascade(candidates)

        rows = await self._run(make_views(candidates, views))
        return self._grouped(rows, views.count)

    async def close(self) -> None:
        """Wait for every call in flight to finish, then stop the batcher; the session
        is freed with the last reference to this object."""
        if self._in_flight:
            if self._drained is None or self._drained.done():
                self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        if self._batcher is not None:
            await self._batcher.close()

    async def _predict_client_views(self, rows: np.ndarray, views: int) -> Prediction:
        if views < 1 or len(rows) % views:
            raise InvalidRequest(
                f"parameter 'candidate_views' is {views}, but the input has "
                f"{len(rows)} rows; expected a positive m that divides the row "
                "count (N candidates x m rows)"
            )
        return self._grouped(await self._run(rows), views)

    async def _predict_cascade(self, candidates: np.ndarray) -> Prediction:
        settings = self.config.uncertainty
        m = settings.views.count

        first = await self._run(candidates)
        single = first.single
        hard = uncertainty(single, settings.cascade_score) >= settings.cascade_threshold
        hard_index = np.flatnonzero(hard)
        counts = np.where(hard, m, 1).astype(np.int32)
        if len(hard_index) == 0:
            return self._prediction(first, single, counts)

        # Patch 0 of each hard candidate already ran: run only the other m - 1 views.
        patches = make_views(candidates[hard_index], settings.views)
        extra_rows = patches.reshape(len(hard_index), m, *candidates.shape[1:])[:, 1:]
        extra = await self._run(
            extra_rows.reshape(-1, *candidates.shape[1:]), follow_up=True
        )
        extra_probs = extra.probabilities.reshape(len(hard_index), m - 1, -1)
        hard_probs = np.concatenate(
            [first.probabilities[hard_index][:, None, :], extra_probs], axis=1
        )
        full = score_patches(hard_probs, settings.scores)
        return self._prediction(first, _merge_scores(single, full, hard_index), counts)

    async def _run(self, rows: np.ndarray, *, follow_up: bool = False) -> _Rows:
        rows = np.ascontiguousarray(rows, dtype=self._input_dtype)
        if self._batcher is not None:
            columns = await self._batcher.submit(rows, follow_up=follow_up)
        else:
            columns = await self._placement.run(self._run_rows, rows)
        return _Rows.unpack(columns, len(self.session.outputs))

    def _run_rows(self, rows: np.ndarray) -> list[np.ndarray]:
        """Runs on a whole batch: the graph, then probabilities, labels and
        single-view scores for every row, so that per-request work is slicing.
        Returns columns whose first axis is the row."""
        outputs = self.session.run({self.input.name: rows})
        raw = outputs[self._class_index]
        raw = raw.reshape(len(raw), -1)
        return [
            *outputs,
            *batch_columns(
                raw, logits=self._logits, config=self.config.uncertainty.scores
            ),
        ]

    def _grouped(self, rows: _Rows, views: int) -> Prediction:
        """Prediction for candidates of `views` consecutive rows each."""
        count = len(rows.probabilities) // views
        probs = rows.probabilities.reshape(count, views, -1)
        scores = score_patches(probs, self.config.uncertainty.scores)
        firsts = rows.take_every(views)
        return self._prediction(firsts, scores, _views(count, views))

    def _prediction(self, rows: _Rows, scores: Scores, views: np.ndarray) -> Prediction:
        named = {
            spec.name: output
            for spec, output in zip(self.session.outputs, rows.outputs, strict=True)
        }
        return Prediction(
            outputs=named,
            probabilities=rows.probabilities,
            labels=rows.labels,
            scores=scores,
            views=views,
        )

    def _check_signature(self, path: Path) -> None:
        if not self.input.shape or self.input.shape[0] != -1:
            raise ModelLoadError(
                f"{path}/model.onnx: input {self.input.name!r} has shape "
                f"{list(self.input.shape)!r}; activeserve batches requests, so the "
                "first axis must be a dynamic batch axis (export with a dynamic axis)"
            )
        out_shape = self.class_output.shape
        if len(out_shape) != 2 or out_shape[-1] < 2:
            raise ModelLoadError(
                f"{path}/model.onnx: output {self.class_output.name!r} has shape "
                f"{list(out_shape)!r}; expected [batch, classes] with at least 2 "
                "classes (set [model] output_name to choose another output)"
            )


def _pick(
    specs: Sequence[TensorSpec], wanted: str | None, kind: str, path: Path
) -> TensorSpec:
    if wanted is None:
        if kind == "input" and len(specs) != 1:
            raise ModelLoadError(
                f"{path}/model.onnx has {len(specs)} inputs "
                f"{[s.name for s in specs]!r}; activeserve serves single-input models"
            )
        return specs[0]
    for spec in specs:
        if spec.name == wanted:
            return spec
    raise ModelLoadError(
        f"{path}/config.toml names {kind} {wanted!r}, but the graph's {kind}s are "
        f"{[s.name for s in specs]!r}"
    )


@dataclass(frozen=True)
class _Rows:
    """What `_run_rows` computed for some rows, unpacked from its columns."""

    outputs: list[np.ndarray]
    probabilities: np.ndarray
    labels: np.ndarray
    single: Scores

    @classmethod
    def unpack(cls, columns: list[np.ndarray], graph_outputs: int) -> _Rows:
        outputs = columns[:graph_outputs]
        probabilities, labels, score, entropy, diversity, least, margin, mutual = (
            columns[graph_outputs:]
        )
        # The columns come in SCORE_NAMES order (`batch_columns`).
        single = Scores(
            entropy=entropy,
            diversity=diversity,
            score=score,
            least_confidence=least,
            margin=margin,
            mutual_information=mutual,
        )
        return cls(outputs, probabilities, labels, single)

    def take_every(self, step: int) -> _Rows:
        """The first row of each group of `step` (patch 0 of each candidate)."""
        return _Rows(
            [output[::step] for output in self.outputs],
            self.probabilities[::step],
            self.labels[::step],
            Scores(**{name: self.single.get(name)[::step] for name in SCORE_NAMES}),
        )


# (row count, views) -> a read-only `views` column, shared by every prediction of
# that shape.
_VIEW_COLUMNS: dict[tuple[int, int], np.ndarray] = {}
_VIEW_COLUMN_SHAPES = 256


def _views(count: int, views: int) -> np.ndarray:
    cached = _VIEW_COLUMNS.get((count, views))
    if cached is not None:
        return cached
    column = np.full(count, views, dtype=np.int32)
    column.flags.writeable = False
    if len(_VIEW_COLUMNS) < _VIEW_COLUMN_SHAPES:
        _VIEW_COLUMNS[(count, views)] = column
    return column


def _merge_scores(single: Scores, full: Scores, index: np.ndarray) -> Scores:
    """`single`'s scores with the rows at `index` replaced by `full`'s."""
    merged = {}
    for field in (
        "entropy",
        "diversity",
        "score",
        "least_confidence",
        "margin",
        "mutual_information",
    ):
        column = np.array(getattr(single, field), dtype=np.float64, copy=True)
        column[index] = getattr(full, field)
        merged[field] = column
    return Scores(**merged)
