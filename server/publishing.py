"""Publishing a new model version: receive it, check it, write it, swap it in.

A publish is a stream: a header (model, parent version, metadata, a probe, a sha256
per file), then the files in chunks. The server

1. writes the chunks into a staging folder inside the model's folder
   (`REPO/<model>/.staging-<id>/`), refusing an upload larger than
   `max_upload_bytes` or a file the header did not announce;
2. checks every file's sha256, and that the weights are well-formed safetensors
   (`activeserve.server.safetensors_check`: the header is parsed, nothing is loaded,
   nothing is unpickled);
3. under the model's lock, takes the next version number, builds and warms a
   `LoadedModel` from the staged files with the model's config.toml, off the event
   loop; checks that its input (name, datatype, shape) and number of classes are
   those of the version being served; runs the probe input and compares the class
   output with the expected one (`probe_atol`);
4. writes metadata.json, flushes the folder, renames it to `REPO/<model>/<n>/` and
   swaps the new model in at once; `serving.json` records it.

Any failure removes the staging folder and leaves the served version serving, so does
a client that goes away mid-upload. Bad uploads are `InvalidRequest`
(INVALID_ARGUMENT), a probe mismatch is `PublishRejected` (FAILED_PRECONDITION).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from activeserve.proto import models_pb2
from activeserve.proto.codec import datatype_of, from_tensor
from activeserve.server.errors import (
    InvalidRequest,
    ModelLoadError,
    PublishRejected,
)
from activeserve.server.registry import ModelRegistry
from activeserve.server.repository import METADATA_FILE, MODEL_FILE, WEIGHTS_FILE
from activeserve.server.runtime.model import LoadedModel
from activeserve.server.safetensors_check import check_safetensors

logger = logging.getLogger(__name__)

UPLOAD_FILES = (MODEL_FILE, WEIGHTS_FILE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class PublishOutcome:
    """A version published: its number and how far its probe outputs were off."""

    model: str
    version: int
    probe_max_abs_diff: float


@dataclass(frozen=True)
class _Header:
    model: str
    parent_version: int
    metadata: dict[str, Any]
    probe_input: np.ndarray
    probe_expected: np.ndarray
    probe_atol: float
    sha256: dict[str, str]


class Publisher:
    """Runs publishes against a registry and its repository."""

    def __init__(self, registry: ModelRegistry, *, max_upload_bytes: int) -> None:
        self._registry = registry
        self._repository = registry.repository
        self._max_upload_bytes = max_upload_bytes

    async def publish(self, chunks: AsyncIterator[Any]) -> PublishOutcome:
        """Receive, check, write and serve the version `chunks` carry
        (`activeserve.v1.PublishChunk` messages, the header first)."""
        header = _parse_header(await _first(chunks))
        name = header.model
        await asyncio.to_thread(self._repository.model_dir, name)

        staging = await asyncio.to_thread(self._repository.new_staging_dir, name)
        upload = _Upload(staging, header.sha256, self._max_upload_bytes)
        try:
            async for chunk in chunks:
                if chunk.WhichOneof("part") != "file":
                    raise InvalidRequest(
                        f"publish of model {name!r}: a second header arrived; send "
                        "one header, then file chunks only"
                    )
                await asyncio.to_thread(
                    upload.write, chunk.file.file_name, chunk.file.data
                )
            await asyncio.to_thread(upload.finish)
            if WEIGHTS_FILE in header.sha256:
                await asyncio.to_thread(check_safetensors, staging / WEIGHTS_FILE)

            async with self._registry.lock(name):
                return await self._validate_and_commit(header, upload)
        finally:
            # Reached also when the client goes away (the task is cancelled).
            upload.discard()

    async def _validate_and_commit(
        self, header: _Header, upload: _Upload
    ) -> PublishOutcome:
        name = header.model
        version = await asyncio.to_thread(self._repository.next_version, name)
        config = await asyncio.to_thread(self._repository.config, name)
        try:
            model = await self._registry.build(name, version, upload.folder, config)
        except ModelLoadError as error:
            raise InvalidRequest(
                f"uploaded version of model {name!r} cannot be served: {error}"
            ) from None

        try:
            _check_signature(model, self._registry.serving().get(name))
            diff = await asyncio.to_thread(_run_probe, model, header)
            metadata = _final_metadata(header, version, diff)
            await asyncio.to_thread(_write_metadata, upload.folder, metadata)
            await asyncio.to_thread(self._repository.sync_folder, upload.folder)

            # From the rename to the swap nothing awaits, so a cancelled call cannot
            # leave a version on disk that the registry does not serve.
            try:
                target = self._repository.commit_version(name, upload.folder, version)
            except FileExistsError as error:
                raise PublishRejected(f"{error}; publish again") from None
        except BaseException:
            await model.close()
            raise
        upload.committed = True
        # The session holds the graph in memory; the path is for messages only.
        model.path = target
        self._registry.swap_in(model)
        await self._registry.record_serving(name)

        logger.info(
            "model %s version %d published (parent %d, probe max abs diff %.3g)",
            name,
            version,
            header.parent_version,
            diff,
        )
        return PublishOutcome(name, version, diff)


class _Upload:
    """The files of one publish, written into its staging folder.

    `write` and `finish` run in worker threads, `discard` on the event loop; a lock
    keeps a write that is still running from racing the removal of the folder.
    """

    def __init__(self, folder: Path, sha256: dict[str, str], max_bytes: int) -> None:
        self.folder = folder
        self.committed = False
        self._expected = sha256
        self._max_bytes = max_bytes
        self._received = 0
        self._files: dict[str, IO[bytes]] = {}
        self._hashes: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._discarded = False

    def write(self, name: str, data: bytes) -> None:
        with self._lock:
            if self._discarded:
                return
            if name not in self._expected:
                raise InvalidRequest(
                    f"publish: file {name!r} has no sha256 in the header; the header "
                    f"announces {sorted(self._expected)!r}"
                )
            self._received += len(data)
            if self._received > self._max_bytes:
                raise InvalidRequest(
                    f"publish: the upload exceeds {self._max_bytes} bytes, the "
                    "server's limit; raise it with --max-upload-mb"
                )
            if name not in self._files:
                self._files[name] = open(self.folder / name, "wb")  # noqa: SIM115
                self._hashes[name] = hashlib.sha256()
            self._files[name].write(data)
            self._hashes[name].update(data)

    def finish(self) -> None:
        """Close the files; raise unless every announced file came, whole."""
        with self._lock:
            self._close_files()
            for name, expected in sorted(self._expected.items()):
                digest = self._hashes.get(name)
                if digest is None:
                    raise InvalidRequest(
                        f"publish: the header announces {name!r} but no chunk of it "
                        "arrived"
                    )
                if digest.hexdigest() != expected:
                    raise InvalidRequest(
                        f"publish: {name!r} has sha256 {digest.hexdigest()!r}, the "
                        f"header says {expected!r}; the file changed or was cut "
                        "short on the way"
                    )

    def discard(self) -> None:
        """Remove the staging folder, unless it became a version."""
        with self._lock:
            self._discarded = True
            self._close_files()
            if not self.committed:
                shutil.rmtree(self.folder, ignore_errors=True)

    def _close_files(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()


async def _first(chunks: AsyncIterator[Any]) -> Any:
    async for chunk in chunks:
        if chunk.WhichOneof("part") != "header":
            raise InvalidRequest(
                "publish: the first message must be the header (model name, probe, "
                f"sha256 of the files); got {chunk.WhichOneof('part')!r}"
            )
        return chunk.header
    raise InvalidRequest("publish: the stream ended before its header")


def _parse_header(header: models_pb2.PublishHeader) -> _Header:
    name = header.model_name
    try:
        metadata = json.loads(header.metadata_json or "{}")
    except ValueError as error:
        raise InvalidRequest(
            f"publish of model {name!r}: metadata_json is not JSON ({error})"
        ) from None
    if not isinstance(metadata, dict):
        raise InvalidRequest(
            f"publish of model {name!r}: metadata_json holds a "
            f"{type(metadata).__name__}; expected a JSON object"
        )

    sha256 = {key: value.lower() for key, value in header.sha256.items()}
    unknown = sorted(set(sha256) - set(UPLOAD_FILES))
    if unknown or MODEL_FILE not in sha256:
        raise InvalidRequest(
            f"publish of model {name!r}: files {sorted(sha256)!r} announced; "
            f"expected {MODEL_FILE!r} and optionally {WEIGHTS_FILE!r}"
        )
    for file_name, digest in sha256.items():
        if not _SHA256.match(digest):
            raise InvalidRequest(
                f"publish of model {name!r}: sha256 of {file_name!r} is {digest!r}; "
                "expected 64 hexadecimal digits"
            )

    if not (header.HasField("probe_input") and header.HasField("probe_expected")):
        raise InvalidRequest(
            f"publish of model {name!r}: the header has no probe; send probe_input "
            "and the probe_expected outputs the new version must give for it"
        )
    atol = header.probe_atol
    if not np.isfinite(atol) or atol < 0:
        raise InvalidRequest(
            f"publish of model {name!r}: probe_atol {atol!r} must be a finite "
            "number >= 0"
        )
    return _Header(
        model=name,
        parent_version=header.parent_version,
        metadata=metadata,
        probe_input=from_tensor(header.probe_input, tensor="probe_input"),
        probe_expected=from_tensor(header.probe_expected, tensor="probe_expected"),
        probe_atol=atol,
        sha256=sha256,
    )


def _check_signature(new: LoadedModel, served: LoadedModel | None) -> None:
    """Refuse a version whose input or class count differs from the served one."""
    if served is None:
        return
    want = (served.input.name, served.input.datatype, served.input.shape)
    got = (new.input.name, new.input.datatype, new.input.shape)
    if got != want or new.num_classes != served.num_classes:
        raise InvalidRequest(
            f"uploaded version of model {new.name!r} takes input {got!r} with "
            f"{new.num_classes} classes; version {served.version}, being served, "
            f"takes {want!r} with {served.num_classes} classes; a new version must "
            "keep the input (name, datatype, shape) and the classes"
        )


def _run_probe(model: LoadedModel, header: _Header) -> float:
    """Largest absolute difference between the class output for the probe input and
    the expected one; raises `PublishRejected` over `probe_atol`."""
    probe = header.probe_input
    model.check_input(model.input.name, datatype_of(probe.dtype), probe.shape)
    outputs = model.session.run({model.input.name: probe})
    actual = outputs[model.session.outputs.index(model.class_output)]

    expected = header.probe_expected
    if actual.shape != expected.shape:
        raise InvalidRequest(
            f"publish of model {model.name!r}: probe_expected has shape "
            f"{list(expected.shape)!r}, the output {model.class_output.name!r} for "
            f"the probe input has shape {list(actual.shape)!r}"
        )
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    diff = float(np.max(difference, initial=0.0))
    if np.isnan(difference).any():
        diff = float("inf")
    if not diff <= header.probe_atol:
        raise PublishRejected(
            f"publish of model {model.name!r}: the uploaded graph's output differs "
            f"from probe_expected by up to {diff:.6g}, more than probe_atol "
            f"{header.probe_atol:g}; the export does not compute what the trained "
            "model computes (check the export, or the probe's preprocessing)"
        )
    return diff


def _final_metadata(header: _Header, version: int, diff: float) -> dict[str, Any]:
    """The client's metadata with what the server knows added."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    metadata = dict(header.metadata)
    if header.parent_version:
        metadata["parent_version"] = header.parent_version
    metadata.setdefault("created_at", now)
    metadata.update(
        version=version,
        published_at=now,
        probe_max_abs_diff=diff,
        sha256=dict(sorted(header.sha256.items())),
    )
    return metadata


def _write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    text = json.dumps(metadata, indent=2, sort_keys=True)
    (folder / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
