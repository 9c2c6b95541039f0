"""The model configuration schema: ``REPO/<model>/config.toml``.

One TOML file per model, with one table per concern::

    [model]        labels, what the network outputs, tensor names
    [batching]     dynamic batching of requests
    [runtime]      ONNX Runtime device and threads
    [uncertainty]  views and scores (flat keys, see below)
    [flag]         when a served candidate is flagged for labelling
    [training]     how the trainer fine-tunes
    [stopping]     when the active-learning loop ends

Every key is optional and every table too; a missing file gives all defaults. Unknown
tables and keys, values of the wrong type and values out of range raise
``ConfigError`` naming the file, the key, the value given and the value expected.
``docs/config.md`` documents every key and default.

Each table fills the value class of the same name (see ``sections``); its keys are the
class's fields. ``[uncertainty]`` is flat for the user and split here: ``views`` (the
field ``ViewConfig.count``), ``augmentations``, ``shift_px``, ``scale`` and
``noise_std`` fill ``ViewConfig``; ``alpha``, ``lambda_entropy``, ``lambda_diversity``
and ``eps`` fill ``ScoreConfig``; ``cascade``, ``cascade_score`` and
``cascade_threshold`` belong to ``UncertaintyConfig``.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .scores import ScoreConfig
from .sections import (
    BatchingConfig,
    ModelSection,
    RuntimeConfig,
    TrainingConfig,
    UncertaintyConfig,
)
from .selection import FlagConfig
from .stopping import StoppingConfig
from .views import ViewConfig

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = [
    "BatchingConfig",
    "ModelConfig",
    "ModelSection",
    "RuntimeConfig",
    "TrainingConfig",
    "UncertaintyConfig",
    "load_model_config",
    "table_keys",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    """Everything ``config.toml`` says about one model; every part has defaults."""

    model: ModelSection = field(default_factory=ModelSection)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    flag: FlagConfig = field(default_factory=FlagConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)

    def __post_init__(self) -> None:
        # Diversity and mutual information compare views: with one view they are 0
        # for every input, and nothing would ever be flagged.
        one_view = self.uncertainty.views.count == 1
        if one_view and self.flag.score in ("diversity", "mutual_information"):
            raise ConfigError.invalid(
                "FlagConfig",
                "score",
                self.flag.score,
                "a single-view score ('score', 'entropy', 'least_confidence', "
                "'margin') when views = 1, or views > 1",
            )

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "<dict>"
    ) -> ModelConfig:
        """Build from the TOML layout: a mapping of tables of flat keys.

        ``source`` names the origin (a file path) in error messages.
        """
        return _parse(data, source)

    def to_dict(self) -> dict[str, Any]:
        """The TOML layout of this config; ``from_dict`` gives back an equal config.

        Keys whose value is None are left out (TOML has no null); tuples become lists.
        """
        return _unparse(self)


def load_model_config(path: Path) -> ModelConfig:
    """Read ``config.toml`` at ``path``; a missing file gives every default."""
    if not path.exists():
        logger.info("no model config at %s; using defaults", path)
        return ModelConfig()

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}; fix the syntax there"
        ) from exc

    return ModelConfig.from_dict(data, source=str(path))


@dataclass(frozen=True)
class _Key:
    """Where one TOML key lands: ``part`` of the section (None = the section class
    itself) and its ``field``, and the value's ``kind``."""

    part: str | None
    field: str
    kind: str


_KIND_EXPECTED: dict[str, str] = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "optional_str": "a string",
    "strings": "an array of strings",
    "table": "a table",
}

# Classes filling each (table, part); a part of None is the table's own class.
_OWNERS: dict[tuple[str, str | None], type[Any]] = {
    ("model", None): ModelSection,
    ("batching", None): BatchingConfig,
    ("runtime", None): RuntimeConfig,
    ("uncertainty", "views"): ViewConfig,
    ("uncertainty", "scores"): ScoreConfig,
    ("uncertainty", None): UncertaintyConfig,
    ("flag", None): FlagConfig,
    ("training", None): TrainingConfig,
    ("stopping", None): StoppingConfig,
}

# The key a user writes where it differs from the field it fills.
_RENAMED: dict[tuple[type[Any], str], str] = {(ViewConfig, "count"): "views"}


def _kind_of(item: dataclasses.Field[Any]) -> str:
    default = item.default
    if (
        default is dataclasses.MISSING
        and item.default_factory is not dataclasses.MISSING
    ):
        default = item.default_factory()

    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if default is None:
        return "optional_str"
    if isinstance(default, tuple):
        return "strings"
    if isinstance(default, Mapping):
        return "table"
    raise AssertionError(f"field {item.name!r} has no TOML kind")


def _build_tables() -> dict[str, dict[str, _Key]]:
    tables: dict[str, dict[str, _Key]] = {}
    for (table, part), owner in _OWNERS.items():
        keys = tables.setdefault(table, {})
        for item in dataclasses.fields(owner):
            if dataclasses.is_dataclass(item.default_factory):
                continue  # a nested part, whose keys come from its own class
            key = _RENAMED.get((owner, item.name), item.name)
            keys[key] = _Key(part, item.name, _kind_of(item))
    return tables


_TABLES = _build_tables()

# (class name, field) -> (table, key): restates a value class's error in TOML terms.
_WHERE: dict[tuple[str, str], tuple[str, str]] = {
    (_OWNERS[table, key.part].__name__, key.field): (table, name)
    for table, keys in _TABLES.items()
    for name, key in keys.items()
}


def table_keys() -> dict[str, tuple[str, ...]]:
    """Every table of ``config.toml`` and the keys it accepts, in the docs' order."""
    return {table: tuple(keys) for table, keys in _TABLES.items()}


def _parse(data: Mapping[str, Any], source: str) -> ModelConfig:
    for name, table in data.items():
        if name not in _TABLES:
            raise ConfigError(
                f"{source}: unknown table [{name}]{_did_you_mean(name, _TABLES)}; "
                f"expected tables {tuple(_TABLES)!r}"
            )
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"{source}: {name} = {table!r} has type {type(table).__name__}; "
                f"expected a table [{name}] with its keys below it"
            )

    parts: dict[tuple[str, str | None], dict[str, Any]] = {
        where: {} for where in _OWNERS
    }
    for table, keys in _TABLES.items():
        for name, value in data.get(table, {}).items():
            if name not in keys:
                raise ConfigError(
                    f"{source}: [{table}] has no key {name!r}"
                    f"{_did_you_mean(name, keys)}; expected one of {tuple(keys)!r}"
                )
            key = keys[name]
            parts[table, key.part][key.field] = _typed(
                value, key.kind, table, name, source
            )

    try:
        return ModelConfig(
            model=ModelSection(**parts["model", None]),
            batching=BatchingConfig(**parts["batching", None]),
            runtime=RuntimeConfig(**parts["runtime", None]),
            uncertainty=UncertaintyConfig(
                views=ViewConfig(**parts["uncertainty", "views"]),
                scores=ScoreConfig(**parts["uncertainty", "scores"]),
                **parts["uncertainty", None],
            ),
            flag=FlagConfig(**parts["flag", None]),
            training=TrainingConfig(**parts["training", None]),
            stopping=StoppingConfig(**parts["stopping", None]),
        )
    except ConfigError as exc:
        where = _WHERE.get((exc.owner or "", exc.field or ""))
        if where is None:
            raise ConfigError(f"{source}: {exc}") from exc
        raise ConfigError(
            f"{source}: [{where[0]}] {where[1]} = {exc.value!r} is invalid; "
            f"expected {exc.expected}",
            owner=exc.owner,
            field=exc.field,
            value=exc.value,
            expected=exc.expected,
        ) from exc


def _typed(value: Any, kind: str, table: str, key: str, source: str) -> Any:
    """``value`` checked against ``kind`` and converted to the field's type."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and is_number and isinstance(value, int):
        return value
    if kind == "float" and is_number:
        return float(value)
    if kind in ("str", "optional_str") and isinstance(value, str):
        return value
    if kind == "optional_str" and value is None:
        return value
    strings = isinstance(value, (list, tuple)) and all(
        isinstance(item, str) for item in value
    )
    if kind == "strings" and strings:
        return tuple(value)
    if kind == "table" and isinstance(value, Mapping):
        return dict(value)

    raise ConfigError(
        f"{source}: [{table}] {key} = {value!r} has type {type(value).__name__}; "
        f"expected {_KIND_EXPECTED[kind]}",
        field=key,
        value=value,
        expected=_KIND_EXPECTED[kind],
    )


def _unparse(config: ModelConfig) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for table, keys in _TABLES.items():
        section = getattr(config, table)
        values: dict[str, Any] = {}
        for name, key in keys.items():
            owner = section if key.part is None else getattr(section, key.part)
            value = getattr(owner, key.field)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            values[name] = value
        data[table] = values
    return data


def _did_you_mean(name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
