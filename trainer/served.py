"""The version a server is serving, fetched over gRPC and rebuilt as a PyTorch model.

Each round continues from the served version, never from a local copy: the trainer
may run on another machine, and the served version may have changed since the last
round (a rollback, a version dropped in by hand). :func:`fetch_served` downloads its
files with ``Client.fetch_version``, reads the model's ``config.toml`` among them, and
builds the network with the config's ``[training] factory`` and ``factory_kwargs``,
falling back to the ``factory`` recorded in the version's ``metadata.json``; then it
loads the version's ``weights.safetensors`` into it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from activeserve.client import Client
from activeserve.core.config import ModelConfig
from activeserve.core.errors import ConfigError
from activeserve.trainer.errors import FactoryError, WeightsError
from activeserve.trainer.factory import build_model
from activeserve.trainer.fine_tune import resolve_device
from activeserve.trainer.versioning import WEIGHTS_FILE
from activeserve.trainer.weights import weights_from_bytes

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"

#: ``fetch_version``'s version number for "the version being served".
SERVING = 0


@dataclass(frozen=True)
class ServedVersion:
    """One served version, ready to train further.

    ``network`` is the model built from ``factory`` and ``factory_kwargs`` with the
    version's weights loaded, in eval mode, on the training device. ``metadata`` is
    the version's ``metadata.json`` as the server sent it.
    """

    model_name: str
    version: int
    config: ModelConfig
    factory: str
    factory_kwargs: Mapping[str, Any]
    network: nn.Module
    metadata: Mapping[str, Any]


def parse_config(text: str | None, source: str) -> ModelConfig:
    """The model config in ``text`` (the file's TOML); None gives the defaults.

    Raises ``ConfigError`` (from core) naming ``source`` when the text is not valid
    TOML or not a valid config.
    """
    if text is None:
        return ModelConfig()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}; fix the syntax") from exc
    return ModelConfig.from_dict(data, source=source)


def fetch_config(client: Client, model_name: str) -> ModelConfig:
    """The config of ``model_name`` as the server has it (defaults where it has none).

    Fetches the served version's files, as the API has no call for the config alone.
    """
    fetched = client.fetch_version(model_name, SERVING)
    return _config_of(model_name, fetched.files)


def _config_of(model_name: str, files: Mapping[str, bytes]) -> ModelConfig:
    data = files.get(CONFIG_FILE)
    text = None if data is None else data.decode("utf-8")
    return parse_config(text, f"config.toml of model {model_name!r}")


def fetch_served(
    client: Client, model_name: str, *, device: str | None = None
) -> ServedVersion:
    """Fetch the version ``model_name`` is serving and rebuild its network.

    ``device`` is where the network is put (default CUDA when available, else
    CPU). Raises :class:`FactoryError` when neither the config nor the metadata names
    a factory, :class:`WeightsError` when the version has no weights or they do not
    fit, and the SDK's ``ClientError`` when the server cannot give the version.
    """
    fetched = client.fetch_version(model_name, SERVING)
    config = _config_of(model_name, fetched.files)

    factory, factory_kwargs = _factory_of(
        model_name, fetched.version, config, fetched.metadata
    )
    weights = fetched.files.get(WEIGHTS_FILE)
    if weights is None:
        raise WeightsError(
            f"version {fetched.version!r} of model {model_name!r} has no "
            f"{WEIGHTS_FILE}; the trainer continues from PyTorch weights, so serve "
            "a version made by `activeserve init` or by the trainer"
        )

    network = build_model(factory, factory_kwargs)
    weights_from_bytes(network, weights)
    network.to(resolve_device(device)).eval()

    logger.info(
        "model %s: fetched serving version %s (%s, %s bytes of weights)",
        model_name,
        fetched.version,
        factory,
        len(weights),
    )
    return ServedVersion(
        model_name=model_name,
        version=int(fetched.version),
        config=config,
        factory=factory,
        factory_kwargs=dict(factory_kwargs),
        network=network,
        metadata=dict(fetched.metadata),
    )


def _factory_of(
    model_name: str,
    version: int,
    config: ModelConfig,
    metadata: Mapping[str, Any],
) -> tuple[str, Mapping[str, Any]]:
    """The factory spec and its arguments: the config's, else the metadata's."""
    if config.training.factory:
        return config.training.factory, dict(config.training.factory_kwargs)

    factory = metadata.get("factory")
    kwargs = metadata.get("factory_kwargs", {})
    if isinstance(factory, str) and factory and isinstance(kwargs, Mapping):
        logger.info(
            "model %s: config.toml names no [training] factory; using %s from the "
            "metadata of version %s",
            model_name,
            factory,
            version,
        )
        return factory, dict(kwargs)

    raise FactoryError(
        f"model {model_name!r} version {version!r}: neither config.toml ([training] "
        f"factory) nor metadata.json (factory = {factory!r}) names the function that "
        "builds the network; set [training] factory, e.g. "
        "'activeserve.trainer.models:small_cnn'"
    )
