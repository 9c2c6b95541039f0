"""Checking that uploaded weights are well-formed safetensors, without loading them.

The server never imports torch and never unpickles anything it receives; the weights
travel only so that the trainer can continue from them later. The check reads the
header alone, in plain Python:

    bytes 0..8         N, the header's length, unsigned 64-bit little-endian
    bytes 8..8+N       a JSON object: tensor name -> {"dtype", "shape",
                       "data_offsets": [begin, end]}, and an optional
                       "__metadata__" of string -> string
    bytes 8+N..        the tensor data; offsets count from here

Each tensor's byte range must match its dtype and shape, and the ranges must tile the
data exactly, in order, as the safetensors format requires.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from pathlib import Path
from typing import Any, TypeGuard

from activeserve.server.errors import InvalidRequest

logger = logging.getLogger(__name__)

# A header this large is not weights but a way to exhaust memory; the safetensors
# library itself refuses headers over 100 MB.
MAX_HEADER_BYTES = 100 * 1024 * 1024

# Bytes per element of each dtype the format names.
DTYPE_BYTES: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}


def check_safetensors(path: Path) -> int:
    """Raise `InvalidRequest` unless `path` is a well-formed safetensors file;
    returns the number of tensors it holds."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise _malformed(path, f"it is {size} bytes long, shorter than 8")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(MAX_HEADER_BYTES, size - 8):
            raise _malformed(
                path,
                f"its header length is {header_bytes} bytes, but the file holds "
                f"{size - 8} after the length (at most {MAX_HEADER_BYTES})",
            )
        raw = file.read(header_bytes)

    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _malformed(path, f"its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise _malformed(
            path, f"its header is a {type(header).__name__}, not an object"
        )

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str)
        for key, value in metadata.items()
    ):
        raise _malformed(path, "its __metadata__ is not an object of strings")

    data_bytes = size - 8 - header_bytes
    ranges = sorted(
        (_tensor_range(path, name, entry), name) for name, entry in header.items()
    )
    position = 0
    for (begin, end), name in ranges:
        if begin != position:
            raise _malformed(
                path,
                f"tensor {name!r} starts at byte {begin} of the data, expected "
                f"{position}: tensors must follow each other without gaps or overlap",
            )
        position = end
    if position != data_bytes:
        raise _malformed(
            path,
            f"its tensors cover {position} bytes of data but the file holds "
            f"{data_bytes}",
        )
    logger.debug("%s: safetensors with %d tensor(s)", path, len(ranges))
    return len(ranges)


def _tensor_range(path: Path, name: str, entry: Any) -> tuple[int, int]:
    """(begin, end) of tensor `name`'s data, checked against its dtype and shape."""
    if not isinstance(entry, dict):
        raise _malformed(path, f"tensor {name!r} is described by {entry!r}")
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")

    if dtype not in DTYPE_BYTES:
        raise _malformed(
            path,
            f"tensor {name!r} has dtype {dtype!r}; expected one of "
            f"{list(DTYPE_BYTES)!r}",
        )
    if not _is_int_list(shape) or any(dim < 0 for dim in shape):
        raise _malformed(path, f"tensor {name!r} has shape {shape!r}")
    if not _is_int_list(offsets) or len(offsets) != 2:
        raise _malformed(
            path, f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]"
        )

    begin, end = offsets
    expected = math.prod(shape) * DTYPE_BYTES[dtype]
    if not 0 <= begin <= end or end - begin != expected:
        raise _malformed(
            path,
            f"tensor {name!r} ({dtype} {shape!r}) spans bytes [{begin}, {end}) of the "
            f"data; its dtype and shape need {expected} bytes",
        )
    return begin, end


def _is_int_list(value: Any) -> TypeGuard[list[int]]:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    )


def _malformed(path: Path, reason: str) -> InvalidRequest:
    return InvalidRequest(
        f"uploaded {path.name!r} is not a well-formed safetensors file: {reason}; "
        "save the weights with safetensors (activeserve.trainer.weights)"
    )
