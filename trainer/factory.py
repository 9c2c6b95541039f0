"""Model factories named by ``"module:function"`` specs.

A model config names the function that builds its network, for example
``"activeserve.trainer.models:small_cnn"``, with keyword arguments beside it. The
trainer builds the network from that spec and then loads the current version's weights
into it, so the factory must build the same architecture every time it is given the
same arguments. Any importable module will do; the bundled factories are in
:mod:`activeserve.trainer.models`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from activeserve.trainer.errors import FactoryError

logger = logging.getLogger(__name__)

ModelFactory = Callable[..., nn.Module]


def load_factory(spec: str) -> ModelFactory:
    """Resolve ``"package.module:function"`` to the callable it names.

    The part after the colon may be a dotted path inside the module
    (``"pkg.mod:Class.create"``). Raises :class:`FactoryError` when the spec is
    malformed, the module does not import, or the attribute is missing or not callable.
    """
    module_name, sep, attribute_path = spec.partition(":")
    if not sep or not module_name or not attribute_path:
        raise FactoryError(
            f"model factory spec {spec!r} is not of the form 'module:function'; "
            "write for example 'activeserve.trainer.models:small_cnn'"
        )

    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise FactoryError(
            f"cannot import module {module_name!r} of model factory {spec!r}: {exc}; "
            "check the spelling and that the module is installed in this environment"
        ) from exc

    for attribute in attribute_path.split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError as exc:
            raise FactoryError(
                f"model factory {spec!r}: {target!r} has no attribute {attribute!r}"
            ) from exc

    if not callable(target):
        raise FactoryError(
            f"model factory {spec!r} names {target!r}, which is not callable; "
            "name a function that returns a torch.nn.Module"
        )
    return target


def build_model(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Build a model by calling the factory ``spec`` with ``kwargs``.

    Returns the module in eval mode. Raises :class:`FactoryError` when the factory
    cannot be resolved, rejects the arguments (``TypeError`` or ``ValueError`` inside
    it), or returns something that is not a ``torch.nn.Module``.
    """
    factory = load_factory(spec)
    arguments = dict(kwargs or {})

    try:
        model = factory(**arguments)
    except (TypeError, ValueError) as exc:
        raise FactoryError(
            f"model factory {spec!r} rejected arguments {arguments!r}: {exc}; "
            "fix factory_kwargs in the model config"
        ) from exc

    if not isinstance(model, nn.Module):
        raise FactoryError(
            f"model factory {spec!r} returned {type(model).__name__!r}, expected a "
            "torch.nn.Module"
        )

    parameters = sum(p.numel() for p in model.parameters())
    logger.debug("built model from %s with %s parameters", spec, parameters)
    return model.eval()
