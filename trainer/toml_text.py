"""TOML text for a model config, written without a TOML library.

Python reads TOML (``tomllib``) but cannot write it, and a model config needs only a
small part of the language: top-level tables of keys whose values are booleans,
integers, floats, strings, arrays of those, and inline tables (``factory_kwargs``).
:func:`render_toml` writes exactly that part, and reads its own output back with
``tomllib`` to prove it, so a value it cannot represent fails here, not in the server.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from activeserve.trainer.errors import TrainerError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

logger = logging.getLogger(__name__)

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# TOML's short escapes; every other control character becomes \uXXXX.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
_ESCAPES |= {"\f": "\\f", "\r": "\\r"}


def render_toml(document: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """TOML text for ``document``, a mapping of table names to tables of keys.

    ``header`` lines are written first as comments. Table and key order is kept.
    Raises :class:`TrainerError` for a value outside the supported kinds (None, a
    set, an object) and when a top-level value is not a table.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name, table in document.items():
        if not isinstance(table, Mapping):
            raise TrainerError(
                f"top-level entry {name!r} = {table!r} is not a table; a model config "
                "holds tables such as [model] and [training]"
            )
        if lines:
            lines.append("")
        lines.append(f"[{_key(name)}]")
        lines.extend(
            f"{_key(key)} = {_value(value, key)}" for key, value in table.items()
        )
    text = "\n".join(lines) + "\n"

    # Prove the text reads back as the document it was made from.
    if tomllib.loads(text) != _plain(document):
        raise TrainerError(
            f"the TOML written for {dict(document)!r} does not read back the same; "
            "keep config values to booleans, numbers, strings, arrays and tables"
        )
    return text


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _value(value: Any, key: str) -> str:
    # bool before int: True is an int to Python.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item, key) for item in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_key(k)} = {_value(v, k)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }" if value else "{}"
    raise TrainerError(
        f"config key {key!r} has value {value!r} of type {type(value).__name__}, which "
        "TOML cannot hold; expected a boolean, number, string, array or table"
    )


def _string(text: str) -> str:
    escaped = []
    for char in text:
        if char in _ESCAPES:
            escaped.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _plain(value: Any) -> Any:
    """``value`` as tomllib would read it back: tuples as lists, mappings as dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
