"""Building ModelInfer responses fast.

A model version answers every request with the same output tensors (names, datatypes,
every dimension but the first), so the tensor descriptions are built once per version
and list of outputs, and each response copies them in one protobuf call, sets the batch
dimension and appends the raw bytes. A response whose arrays do not match the
template (a graph output whose inner dimensions vary) is built field by field.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from activeserve.proto import inference as oip
from activeserve.proto.codec import datatype_of, encode_raw


@dataclass(frozen=True)
class _Template:
    names: tuple[str, ...]
    dtypes: tuple[np.dtype[Any], ...]
    inner_shapes: tuple[tuple[int, ...], ...]
    message: Any
    # Every array's bytes are already the wire's (little-endian, not BYTES).
    plain_bytes: bool


class ResponseBuilder:
    """Responses for one kind of owner (a loaded model version), cached per owner."""

    def __init__(self) -> None:
        self._templates: weakref.WeakKeyDictionary[object, _Template] = (
            weakref.WeakKeyDictionary()
        )

    def build(
        self,
        owner: object,
        arrays: dict[str, np.ndarray],
        names: Sequence[str],
        *,
        model_name: str,
        model_version: str,
        request_id: str,
    ) -> Any:
        """A ModelInferResponse holding `arrays[name]` for each of `names`, in order,
        as raw contents. Every array's first axis is the row."""
        template = self._templates.get(owner)
        if template is None or template.names != tuple(names):
            template = _template(arrays, names)
            self._templates[owner] = template

        response = oip.ModelInferResponse()
        response.CopyFrom(template.message)
        response.model_name = model_name
        response.model_version = model_version
        response.id = request_id

        raw = response.raw_output_contents
        for name, dtype, inner in zip(
            template.names, template.dtypes, template.inner_shapes, strict=True
        ):
            array = arrays[name]
            if array.dtype != dtype or array.shape[1:] != inner:
                return _field_by_field(
                    arrays, names, model_name, model_version, request_id
                )
            raw.append(array.tobytes() if template.plain_bytes else encode_raw(array))

        rows = len(arrays[template.names[0]]) if template.names else 0
        if rows != 1:
            for tensor in response.outputs:
                tensor.shape[0] = rows
        return response


def _template(arrays: dict[str, np.ndarray], names: Sequence[str]) -> _Template:
    message = oip.ModelInferResponse()
    for name in names:
        array = arrays[name]
        message.outputs.add(
            name=name, datatype=datatype_of(array.dtype), shape=[1, *array.shape[1:]]
        )
    return _Template(
        names=tuple(names),
        dtypes=tuple(arrays[name].dtype for name in names),
        inner_shapes=tuple(arrays[name].shape[1:] for name in names),
        message=message,
        plain_bytes=all(
            arrays[name].dtype.kind not in "OSU" and arrays[name].dtype.byteorder != ">"
            for name in names
        ),
    )


def _field_by_field(
    arrays: dict[str, np.ndarray],
    names: Sequence[str],
    model_name: str,
    model_version: str,
    request_id: str,
) -> Any:
    response = oip.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request_id
    )
    for name in names:
        array = arrays[name]
        response.outputs.add(
            name=name, datatype=datatype_of(array.dtype), shape=list(array.shape)
        )
        response.raw_output_contents.append(encode_raw(array))
    return response
