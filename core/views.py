"""Augmented views ("patches") of candidates.

AIFT scores a candidate by how the model answers several augmented views of it: the
views of an easy input agree, those of a hard one disagree. This module turns a batch
of candidates ``[N, *S]`` into their views ``[N * m, *S]``, where ``m`` is
``ViewConfig.count``.

Layout: candidate ``i``'s patches are rows ``i*m ... i*m + m - 1`` and patch 0 is the
candidate unchanged, so that ``views.reshape(N, m, *S)[:, 0]`` gives back the input.

The ``m - 1`` extra views are taken, in order, from this list, built from the chosen
augmentations in the order of ``AUGMENTATIONS`` and cycled when ``m - 1`` is longer::

    shift       8 views, content moved by ``shift_px`` pixels: right, left, down, up,
                down-right, up-left, down-left, up-right; the border pixel is
                replicated into the space left behind
    flip        1 view, mirrored left to right
    scale_crop  1 view, the central ``scale`` fraction of each side, resized back to
                the full size by bilinear interpolation (a zoom in by ``1 / scale``)
    noise       1 view, plus gaussian noise of standard deviation
                ``noise_std * std(candidate)`` (``noise_std`` for a constant
                candidate, which has no spread to scale by)

A repeated spatial view (on a second pass through the list) is an exact copy of the
first; a repeated noise view draws new noise. Spatial axes are the last two of ``S``
when ``len(S) >= 2`` (``[N, H, W]``, ``[N, C, H, W]``); a feature row (``len(S) == 1``,
tabular data) has no spatial axes, so only ``noise`` applies to it and the other
augmentations are skipped.

The views are deterministic: the noise for a candidate is drawn from a generator seeded
with a BLAKE2b hash of that candidate's bytes, so the same input always gives the same
views, whatever batch it arrives in.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, InputError

__all__ = [
    "AUGMENTATIONS",
    "ViewConfig",
    "make_views",
    "view_plan",
    "views_per_candidate",
]

logger = logging.getLogger(__name__)

AUGMENTATIONS: tuple[str, ...] = ("shift", "flip", "scale_crop", "noise")

# Each shift view's name and its move, (rows down, columns right) in units of shift_px.
_SHIFTS: dict[str, tuple[int, int]] = {
    "shift_right": (0, 1),
    "shift_left": (0, -1),
    "shift_down": (1, 0),
    "shift_up": (-1, 0),
    "shift_down_right": (1, 1),
    "shift_up_left": (-1, -1),
    "shift_down_left": (1, -1),
    "shift_up_right": (-1, 1),
}

_SPATIAL_AUGMENTATIONS = frozenset({"shift", "flip", "scale_crop"})


@dataclass(frozen=True)
class ViewConfig:
    """How many views to make of each candidate, and which.

    ``count`` is ``m``, the views per candidate including the candidate itself, so 1
    means the input only. ``shift_px`` is the shift distance in pixels, ``scale`` the
    central crop fraction of ``scale_crop``, and ``noise_std`` the noise standard
    deviation in units of the candidate's own standard deviation.
    """

    count: int = 1
    augmentations: tuple[str, ...] = ("shift",)
    shift_px: int = 1
    scale: float = 0.875
    noise_std: float = 0.05

    def __post_init__(self) -> None:
        owner = type(self).__name__

        if self.count < 1:
            raise ConfigError.invalid(
                owner, "count", self.count, "an integer >= 1 (1 = the input only)"
            )

        unknown = [name for name in self.augmentations if name not in AUGMENTATIONS]
        if unknown or len(set(self.augmentations)) != len(self.augmentations):
            raise ConfigError.invalid(
                owner,
                "augmentations",
                self.augmentations,
                f"distinct names among {AUGMENTATIONS!r}",
            )

        if self.count > 1 and not self.augmentations:
            raise ConfigError.invalid(
                owner,
                "augmentations",
                self.augmentations,
                f"at least one of {AUGMENTATIONS!r} for more than one view",
            )

        if self.shift_px < 1:
            raise ConfigError.invalid(
                owner, "shift_px", self.shift_px, "an integer >= 1 (pixels)"
            )

        if not 0.0 < self.scale < 1.0:
            raise ConfigError.invalid(
                owner, "scale", self.scale, "a crop fraction in (0, 1), e.g. 0.875"
            )

        if not self.noise_std > 0.0:
            raise ConfigError.invalid(
                owner, "noise_std", self.noise_std, "a standard deviation > 0"
            )


def views_per_candidate(config: ViewConfig) -> int:
    """The number of views ``m`` made of each candidate, the input included."""
    return config.count


def view_plan(config: ViewConfig, sample_shape: tuple[int, ...]) -> tuple[str, ...]:
    """The kind of each of the ``m`` views of a candidate of shape ``sample_shape``.

    Returns ``m`` names: ``"input"`` first, then the extra views in order, e.g.
    ``("input", "shift_right", "shift_left", "flip")``. The server can call this when a
    model loads, to fail then rather than on the first request.

    Raises ``ConfigError`` when ``m > 1`` but none of the chosen augmentations applies
    to this shape (a feature row without ``noise``).
    """
    spatial = len(sample_shape) >= 2

    available: list[str] = []
    for name in AUGMENTATIONS:
        if name not in config.augmentations:
            continue
        if name in _SPATIAL_AUGMENTATIONS and not spatial:
            continue
        if name == "shift":
            available.extend(_SHIFTS)
        else:
            available.append(name)

    extra = config.count - 1
    if extra > 0 and not available:
        raise ConfigError.invalid(
            "ViewConfig",
            "augmentations",
            config.augmentations,
            f"'noise' among them for candidates of shape {sample_shape!r}: only "
            "noise applies to a feature row; add it, or use a single view "
            "([uncertainty] views = 1)",
        )

    cycled = [available[i % len(available)] for i in range(extra)]
    return ("input", *cycled)


def make_views(candidates: np.ndarray, config: ViewConfig) -> np.ndarray:
    """The ``m`` views of every candidate, ``m = config.count``.

    ``candidates`` is ``[N, *S]``, float32 or float64, with ``len(S) >= 1``. Returns
    ``[N * m, *S]`` of the same dtype; rows ``i*m ... i*m + m - 1`` are candidate
    ``i``'s patches and row ``i*m`` is the candidate unchanged. See the module
    docstring for the list of views.

    Raises ``InputError`` for another dtype or fewer than two axes, and
    ``ConfigError`` when no chosen augmentation applies to ``S``.
    """
    if candidates.dtype not in (np.float32, np.float64):
        raise InputError(
            f"candidates have dtype {candidates.dtype!s}; expected float32 or float64"
            " (convert with .astype(np.float32))"
        )
    if candidates.ndim < 2:
        raise InputError(
            f"candidates have shape {candidates.shape!r}; expected [N, *S] with at "
            "least one axis per sample (add one with [:, None] for scalars)"
        )

    plan = view_plan(config, candidates.shape[1:])
    count = len(plan)
    if count == 1:
        return candidates.copy()

    out = np.empty(
        (candidates.shape[0], count, *candidates.shape[1:]), candidates.dtype
    )
    out[:, 0] = candidates

    noise_slots = [j for j, kind in enumerate(plan) if kind == "noise"]
    for j, kind in enumerate(plan[1:], start=1):
        if kind != "noise":
            _write_spatial_view(out[:, j], candidates, kind, config)

    if noise_slots:
        out[:, noise_slots] = _noisy_views(candidates, len(noise_slots), config)

    logger.debug("made %s views of %s candidates", count, candidates.shape[0])
    return out.reshape(candidates.shape[0] * count, *candidates.shape[1:])


def _write_spatial_view(
    dst: np.ndarray, candidates: np.ndarray, kind: str, config: ViewConfig
) -> None:
    """Write one spatial view of every candidate into ``dst``, shaped like them."""
    height, width = candidates.shape[-2:]

    if kind == "flip":
        dst[...] = candidates[..., ::-1]
        return

    if kind == "scale_crop":
        rows = _zoom_axis(candidates, height, config.scale, axis=-2)
        dst[...] = _zoom_axis(rows, width, config.scale, axis=-1)
        return

    # Output pixel (y, x) reads input pixel (y - dy, x - dx), each clamped to the
    # image, which replicates the border into the space the shift leaves. Slices
    # rather than index arrays: this runs on every request.
    dy, dx = _SHIFTS[kind]
    moved_y, source_y, border_y, edge_y = _shift_spans(dy * config.shift_px, height)
    moved_x, source_x, border_x, edge_x = _shift_spans(dx * config.shift_px, width)

    dst[..., moved_y, moved_x] = candidates[..., source_y, source_x]
    dst[..., moved_y, border_x] = dst[..., moved_y, edge_x]
    dst[..., border_y, :] = dst[..., edge_y, :]


def _shift_spans(offset: int, size: int) -> tuple[slice, slice, slice, slice]:
    """Slices that move one axis of length ``size`` by ``offset`` (+ = later).

    Returns (where content lands, where it comes from, the border left behind, the
    edge line that is replicated into that border). An offset beyond the axis
    clamps to ``size - 1``, which gives the same output: all edge.
    """
    offset = max(-(size - 1), min(size - 1, offset))
    if offset >= 0:
        return (
            slice(offset, size),
            slice(0, size - offset),
            slice(0, offset),
            slice(offset, offset + 1),
        )
    return (
        slice(0, size + offset),
        slice(-offset, size),
        slice(size + offset, size),
        slice(size + offset - 1, size + offset),
    )


def _zoom_axis(array: np.ndarray, size: int, scale: float, axis: int) -> np.ndarray:
    """Resample one axis to show its central ``scale`` fraction at full ``size``.

    Output sample ``t`` reads the input at ``c + (t - c) * scale`` with
    ``c = (size - 1) / 2``, interpolating linearly between the two nearest samples.
    """
    centre = (size - 1) / 2.0
    source = centre + (np.arange(size) - centre) * scale
    lower = np.clip(np.floor(source).astype(np.intp), 0, size - 1)
    upper = np.clip(lower + 1, 0, size - 1)

    weight_shape = [1] * array.ndim
    weight_shape[axis] = size
    weight = (source - lower).astype(array.dtype).reshape(weight_shape)

    below: np.ndarray = np.take(array, lower, axis=axis)
    above: np.ndarray = np.take(array, upper, axis=axis)
    zoomed: np.ndarray = below + (above - below) * weight
    return zoomed


def _noisy_views(candidates: np.ndarray, views: int, config: ViewConfig) -> np.ndarray:
    """``views`` noisy copies of every candidate: ``[N, views, *S]``, same dtype."""
    sample_shape = candidates.shape[1:]
    flat = candidates.reshape(candidates.shape[0], -1)

    # A constant candidate has no spread to scale by; noise in absolute units still
    # makes its views differ from the input.
    spread = flat.std(axis=1)
    spread = np.where(spread > 0.0, spread, 1.0).astype(candidates.dtype)
    sigma = (config.noise_std * spread).reshape((-1, 1) + (1,) * len(sample_shape))

    noise = np.empty((candidates.shape[0], views, *sample_shape), candidates.dtype)
    for i in range(candidates.shape[0]):
        rng = np.random.default_rng(_seed_of(candidates[i]))
        noise[i] = rng.standard_normal((views, *sample_shape), dtype=candidates.dtype)

    return candidates[:, None] + sigma * noise


def _seed_of(candidate: np.ndarray) -> int:
    digest = hashlib.blake2b(np.ascontiguousarray(candidate).tobytes(), digest_size=8)
    return int.from_bytes(digest.digest(), "little")
