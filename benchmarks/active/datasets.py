"""The data sets the benchmark runs on: arrays, a model factory and scoring views.

A :class:`Dataset` is everything the loop needs to know about one problem: the pool
(the training split, whose labels are revealed only when a method asks for them),
the test split, the class names, the ``"module:function"`` model factory with its
keyword arguments, and the views AIFT scores with on this kind of data. Any arrays
will do; two are built in:

``digits``
    scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), pixels scaled
    to [0, 1] and shaped ``[N, 1, 8, 8]``; ``small_cnn``; shift views.
``breast_cancer``
    scikit-learn's Wisconsin breast cancer table (569 rows, 30 features, 2 classes),
    each feature standardised with the pool's mean and standard deviation; ``mlp``;
    gaussian noise views (a feature row has no pixels to shift).

The split into pool and test is stratified and fixed (``SPLIT_SEED``), so every seed
of a run, and every run, measures on the same test set; the seeds vary the starting
labels, the initial weights and the training order.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

from activeserve.core.views import ViewConfig

logger = logging.getLogger(__name__)

#: Seed of the fixed pool/test split of the built-in data sets.
SPLIT_SEED = 0

#: Share of a built-in data set held out as the test set.
TEST_FRACTION = 0.3

#: Largest value of a digits pixel in scikit-learn's copy (16 grey levels).
_DIGITS_MAX_PIXEL = 16.0


@dataclass(frozen=True, eq=False)
class Dataset:
    """One problem for the benchmark.

    ``pool_inputs`` is ``[N, *S]`` float32 and ``pool_labels`` ``[N]`` int64 (the
    candidates a method may ask labels for); ``test_inputs`` ``[T, *S]`` and
    ``test_labels`` ``[T]`` likewise. ``factory`` and ``factory_kwargs`` build a
    fresh, untrained model through ``activeserve.trainer.factory.build_model``;
    ``views`` are the views the multi-view methods score with.
    """

    name: str
    pool_inputs: np.ndarray
    pool_labels: np.ndarray
    test_inputs: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    factory: str
    factory_kwargs: Mapping[str, object] = field(default_factory=dict)
    views: ViewConfig = field(default_factory=ViewConfig)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "factory_kwargs", types.MappingProxyType(dict(self.factory_kwargs))
        )

        shape = self.pool_inputs.shape[1:]
        checks = (
            ("pool_inputs", self.pool_inputs.ndim >= 2, "[N, *S] with N >= 1"),
            ("test_inputs", self.test_inputs.shape[1:] == shape, f"[T, *{shape}]"),
            (
                "pool_labels",
                self.pool_labels.shape == self.pool_inputs.shape[:1],
                f"[{self.pool_inputs.shape[0]}] class indices",
            ),
            (
                "test_labels",
                self.test_labels.shape == self.test_inputs.shape[:1],
                f"[{self.test_inputs.shape[0]}] class indices",
            ),
        )
        for name, valid, expected in checks:
            if not valid:
                value = getattr(self, name)
                raise ValueError(
                    f"dataset {self.name!r}: {name} has shape {value.shape!r}; "
                    f"expected {expected}"
                )

        top = int(max(self.pool_labels.max(), self.test_labels.max()))
        if top >= len(self.classes):
            raise ValueError(
                f"dataset {self.name!r}: label {top!r} is beyond the "
                f"{len(self.classes)} classes {self.classes!r}; name every class"
            )

    def __reduce__(self) -> tuple[type[Dataset], tuple[object, ...]]:
        # Worker processes receive the data set by pickle, which a mapping proxy
        # refuses; rebuild from a plain dict instead.
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values["factory_kwargs"] = dict(self.factory_kwargs)
        return (Dataset, tuple(values.values()))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``S``, the shape of one candidate."""
        return tuple(self.pool_inputs.shape[1:])

    @property
    def pool_size(self) -> int:
        return int(self.pool_inputs.shape[0])


def _split(
    inputs: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, fixed split into (pool inputs, test inputs, pool, test labels)."""
    pool_x, test_x, pool_y, test_y = train_test_split(
        inputs,
        labels,
        test_size=TEST_FRACTION,
        random_state=SPLIT_SEED,
        stratify=labels,
    )
    return pool_x, test_x, pool_y.astype(np.int64), test_y.astype(np.int64)


def digits() -> Dataset:
    """scikit-learn's 8x8 digits, ``[N, 1, 8, 8]`` in [0, 1], with ``small_cnn``."""
    bunch = load_digits()
    images = (bunch.images / _DIGITS_MAX_PIXEL).astype(np.float32)[:, None]
    pool_x, test_x, pool_y, test_y = _split(images, bunch.target)

    return Dataset(
        name="digits",
        pool_inputs=pool_x,
        pool_labels=pool_y,
        test_inputs=test_x,
        test_labels=test_y,
        classes=tuple(str(digit) for digit in range(10)),
        factory="activeserve.trainer.models:small_cnn",
        factory_kwargs={"num_classes": 10, "in_channels": 1, "image_size": 8},
        views=ViewConfig(count=5, augmentations=("shift",)),
    )


def breast_cancer() -> Dataset:
    """scikit-learn's breast cancer table, standardised ``[N, 30]``, with ``mlp``."""
    bunch = load_breast_cancer()
    pool_x, test_x, pool_y, test_y = _split(bunch.data, bunch.target)

    # Scale with the pool's statistics only: the test set stays unseen.
    mean = pool_x.mean(axis=0)
    std = np.where(pool_x.std(axis=0) > 0.0, pool_x.std(axis=0), 1.0)

    return Dataset(
        name="breast_cancer",
        pool_inputs=((pool_x - mean) / std).astype(np.float32),
        pool_labels=pool_y,
        test_inputs=((test_x - mean) / std).astype(np.float32),
        test_labels=test_y,
        classes=tuple(str(name) for name in bunch.target_names),
        factory="activeserve.trainer.models:mlp",
        factory_kwargs={"in_features": 30, "num_classes": 2, "hidden": [32]},
        views=ViewConfig(count=5, augmentations=("noise",), noise_std=0.2),
    )


#: The built-in data sets by the name ``--dataset`` takes.
BUILTIN: Mapping[str, Callable[[], Dataset]] = types.MappingProxyType(
    {"digits": digits, "breast_cancer": breast_cancer}
)


def load_builtin(name: str) -> Dataset:
    """The built-in data set called ``name`` (one of ``BUILTIN``)."""
    try:
        loader = BUILTIN[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; expected one of {tuple(BUILTIN)!r}, or build "
            "a benchmarks.active.datasets.Dataset from your own arrays"
        ) from None

    dataset = loader()
    logger.info(
        "dataset %s: pool %s, test %s, input %s, %s classes",
        name,
        dataset.pool_size,
        dataset.test_inputs.shape[0],
        dataset.input_shape,
        len(dataset.classes),
    )
    return dataset
