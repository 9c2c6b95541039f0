"""numpy arrays <-> Open Inference Protocol tensors, and <-> `activeserve.v1.Tensor`.

Raw contents are little-endian and row-major; BYTES elements travel length-prefixed
(a 4-byte little-endian length, then the bytes), as the protocol specifies. Every
decoding error is a `TensorError` naming the tensor, what was expected and what was
given.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from activeserve.proto import tensor_pb2

# Open Inference Protocol datatype -> numpy dtype (little-endian where it matters).
_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(np.object_),
}

# Which field of InferTensorContents carries each datatype; FP16 has none (raw only).
_TYPED_FIELDS: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

DATATYPES: tuple[str, ...] = tuple(_DTYPES)

# (kind, itemsize) -> datatype: `datatype_of` runs for every output of every response.
_DATATYPE_BY_DTYPE: dict[tuple[str, int], str] = {
    (dtype.kind, dtype.itemsize): name
    for name, dtype in _DTYPES.items()
    if name != "BYTES"
}


class TensorError(ValueError):
    """A tensor on the wire does not match its declared datatype or shape."""


def dtype_of(datatype: str, *, tensor: str = "") -> np.dtype[Any]:
    """numpy dtype of an Open Inference Protocol datatype name."""
    try:
        return _DTYPES[datatype]
    except KeyError:
        raise TensorError(
            f"{_label(tensor)}datatype {datatype!r} is not supported; "
            f"expected one of {list(_DTYPES)!r}"
        ) from None


def datatype_of(dtype: np.dtype[Any] | type) -> str:
    """Open Inference Protocol datatype name of a numpy dtype."""
    dtype = np.dtype(dtype)
    name = _DATATYPE_BY_DTYPE.get((dtype.kind, dtype.itemsize))
    if name is not None:
        return name
    if dtype.kind in "OSU":
        return "BYTES"
    raise TensorError(f"numpy dtype {dtype!s} has no Open Inference Protocol datatype")


def check_shape(shape: Sequence[int], *, tensor: str = "") -> tuple[int, ...]:
    """The shape as a tuple, refusing negative dimensions."""
    dims = tuple(map(int, shape))
    if dims and min(dims) < 0:
        raise TensorError(
            f"{_label(tensor)}shape {list(dims)!r} has a negative dimension; "
            "a request must give every dimension's actual size"
        )
    return dims


def decode_raw(
    datatype: str, shape: Sequence[int], raw: bytes, *, tensor: str = ""
) -> np.ndarray:
    """Array from raw little-endian bytes; the byte count must match the shape."""
    dtype = dtype_of(datatype, tensor=tensor)
    dims = check_shape(shape, tensor=tensor)
    count = math.prod(dims)

    if datatype == "BYTES":
        return _decode_bytes_elements(raw, dims, count, tensor)

    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise TensorError(
            f"{_label(tensor)}raw contents hold {len(raw)} bytes; shape "
            f"{list(dims)!r} of {datatype} needs {expected} bytes"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(dims)


def decode_typed(
    datatype: str, shape: Sequence[int], contents: Any, *, tensor: str = ""
) -> np.ndarray:
    """Array from an InferTensorContents message."""
    dtype = dtype_of(datatype, tensor=tensor)
    dims = check_shape(shape, tensor=tensor)
    field = _TYPED_FIELDS.get(datatype)
    if field is None:
        raise TensorError(
            f"{_label(tensor)}datatype {datatype} has no typed contents field; "
            "send it as raw_input_contents"
        )

    values = getattr(contents, field)
    count = math.prod(dims)
    if len(values) != count:
        raise TensorError(
            f"{_label(tensor)}{field} holds {len(values)} values; shape "
            f"{list(dims)!r} needs {count}"
        )
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(dims)
    return np.asarray(values, dtype=dtype).reshape(dims)


def has_typed_contents(contents: Any) -> bool:
    """True when any field of an InferTensorContents message holds values."""
    return any(len(getattr(contents, field)) for field in set(_TYPED_FIELDS.values()))


def encode_raw(array: np.ndarray) -> bytes:
    """Raw little-endian bytes of an array (BYTES elements length-prefixed)."""
    if array.dtype.kind in "OSU":
        parts = []
        for element in array.reshape(-1):
            data = element.encode() if isinstance(element, str) else bytes(element)
            parts.append(struct.pack("<I", len(data)))
            parts.append(data)
        return b"".join(parts)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array).tobytes()


def to_tensor(array: np.ndarray) -> tensor_pb2.Tensor:
    """`activeserve.v1.Tensor` of an array."""
    return tensor_pb2.Tensor(
        datatype=datatype_of(array.dtype),
        shape=list(array.shape),
        data=encode_raw(array),
    )


def from_tensor(message: tensor_pb2.Tensor, *, tensor: str = "") -> np.ndarray:
    """Array of an `activeserve.v1.Tensor`."""
    return decode_raw(message.datatype, message.shape, message.data, tensor=tensor)


def _decode_bytes_elements(
    raw: bytes, dims: tuple[int, ...], count: int, tensor: str
) -> np.ndarray:
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise TensorError(
                f"{_label(tensor)}BYTES contents end inside a length prefix"
            )
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise TensorError(
                f"{_label(tensor)}BYTES element {len(elements)} declares {length} "
                f"bytes but only {len(raw) - offset} remain"
            )
        elements.append(raw[offset : offset + length])
        offset += length

    if len(elements) != count:
        raise TensorError(
            f"{_label(tensor)}raw contents hold {len(elements)} BYTES elements; "
            f"shape {list(dims)!r} needs {count}"
        )
    array = np.empty(count, dtype=object)
    array[:] = elements
    return array.reshape(dims)


def _label(tensor: str) -> str:
    return f"tensor {tensor!r}: " if tensor else ""
