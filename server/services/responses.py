"""ModelInfer responses, encoded straight to protobuf wire bytes.

A model version answers every request with the same output tensors (names,
datatypes, every dimension but the first), so everything in a response except the
request id, the row count and the raw contents is the same from one request to the
next. `ResponseEncoder` serialises those parts once per version and row count with
protobuf itself, and each response is then a join of byte strings: the cached header
and tensor descriptions, the id, and one length-prefixed field per output's raw
bytes. The result is byte for byte what `ModelInferResponse.SerializeToString()`
gives for the same message (fields in number order), which the tests check; gRPC
sends the bytes as they are (`activeserve.proto.inference.add_servicer`).

Arrays that do not fit the version's cached layout (a graph output whose inner
dimensions vary, BYTES outputs) are built as a message, field by field.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from activeserve.proto import inference as oip
from activeserve.proto.codec import datatype_of, encode_raw

# Wire tags (field number << 3 | 2, length-delimited) of ModelInferResponse.
_ID_TAG = b"\x1a"  # id = 3
_RAW_TAG = b"\x32"  # raw_output_contents = 6

# Row counts whose tensor descriptions are kept per layout; requests carry few
# distinct ones, and an unusual count is encoded without being cached.
_CACHED_ROW_COUNTS = 256


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@dataclass
class _Layout:
    """What one model version's responses share, for one list of outputs."""

    names: tuple[str, ...]
    dtypes: tuple[np.dtype[Any], ...]
    inner_shapes: tuple[tuple[int, ...], ...]
    header: bytes
    # Row count -> the serialised `outputs` field (every tensor's description) and
    # the tag and length that open each output's raw contents.
    by_rows: dict[int, tuple[bytes, tuple[bytes, ...]]] = field(default_factory=dict)

    def for_rows(self, rows: int) -> tuple[bytes, tuple[bytes, ...]]:
        cached = self.by_rows.get(rows)
        if cached is not None:
            return cached
        message = oip.ModelInferResponse()
        prefixes = []
        for name, dtype, inner in zip(
            self.names, self.dtypes, self.inner_shapes, strict=True
        ):
            message.outputs.add(
                name=name, datatype=datatype_of(dtype), shape=[rows, *inner]
            )
            size = rows * math.prod(inner) * dtype.itemsize
            prefixes.append(_RAW_TAG + varint(size))
        encoded = (message.SerializeToString(), tuple(prefixes))
        if len(self.by_rows) < _CACHED_ROW_COUNTS:
            self.by_rows[rows] = encoded
        return encoded


class ResponseEncoder:
    """Encodes responses of one kind of owner (a loaded model version), caching the
    shared parts per owner; the cache lets go of an owner with its last reference."""

    def __init__(self) -> None:
        self._layouts: weakref.WeakKeyDictionary[object, _Layout] = (
            weakref.WeakKeyDictionary()
        )

    def encode(
        self,
        owner: object,
        arrays: dict[str, np.ndarray],
        names: Sequence[str],
        *,
        model_name: str,
        model_version: str,
        request_id: str,
    ) -> bytes:
        """The serialised ModelInferResponse holding `arrays[name]` for each of
        `names`, in order, as raw contents. Every array's first axis is the row."""
        layout = self._layouts.get(owner)
        if layout is None or layout.names != tuple(names):
            layout = _layout(arrays, names, model_name, model_version)
            if layout is None:
                return _field_by_field(
                    arrays, names, model_name, model_version, request_id
                )
            self._layouts[owner] = layout

        rows = len(arrays[layout.names[0]]) if layout.names else 0
        descriptions, prefixes = layout.for_rows(rows)
        request = request_id.encode()
        parts = [
            layout.header,
            _ID_TAG + varint(len(request)) + request if request else b"",
            descriptions,
        ]
        for name, dtype, inner, prefix in zip(
            layout.names, layout.dtypes, layout.inner_shapes, prefixes, strict=True
        ):
            array = arrays[name]
            if array.dtype != dtype or array.shape[1:] != inner or len(array) != rows:
                return _field_by_field(
                    arrays, names, model_name, model_version, request_id
                )
            parts.append(prefix)
            parts.append(array.tobytes())
        return b"".join(parts)


def _layout(
    arrays: dict[str, np.ndarray],
    names: Sequence[str],
    model_name: str,
    model_version: str,
) -> _Layout | None:
    """The layout of these outputs, or None when some array's bytes are not the
    wire's (BYTES elements, big-endian numbers)."""
    if any(
        arrays[name].dtype.kind in "OSU" or arrays[name].dtype.byteorder == ">"
        for name in names
    ):
        return None
    header = oip.ModelInferResponse(model_name=model_name, model_version=model_version)
    return _Layout(
        names=tuple(names),
        dtypes=tuple(arrays[name].dtype for name in names),
        inner_shapes=tuple(arrays[name].shape[1:] for name in names),
        header=header.SerializeToString(),
    )


def _field_by_field(
    arrays: dict[str, np.ndarray],
    names: Sequence[str],
    model_name: str,
    model_version: str,
    request_id: str,
) -> bytes:
    response = oip.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request_id
    )
    for name in names:
        array = arrays[name]
        response.outputs.add(
            name=name, datatype=datatype_of(array.dtype), shape=list(array.shape)
        )
        response.raw_output_contents.append(encode_raw(array))
    encoded: bytes = response.SerializeToString()
    return encoded
