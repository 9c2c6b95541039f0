from __future__ import annotations

import numpy as np
import pytest

from activeserve.core.errors import ConfigError, InputError
from activeserve.core.views import (
    AUGMENTATIONS,
    ViewConfig,
    make_views,
    view_plan,
    views_per_candidate,
)

SHIFT_ORDER = (
    "shift_right",
    "shift_left",
    "shift_down",
    "shift_up",
    "shift_down_right",
    "shift_up_left",
    "shift_down_left",
    "shift_up_right",
)


def _image() -> np.ndarray:
    """One 3x4 candidate, [1, 3, 4], whose pixel values show where they came from."""
    return np.arange(12, dtype=np.float32).reshape(1, 3, 4)


def _views_of(candidates: np.ndarray, config: ViewConfig) -> np.ndarray:
    """make_views reshaped to [N, m, *S]."""
    views = make_views(candidates, config)
    return views.reshape(candidates.shape[0], config.count, *candidates.shape[1:])


@pytest.mark.parametrize(
    "shape", [(5, 6, 7), (5, 3, 6, 7), (5, 10), (5, 1, 8, 8)], ids=str
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_views_have_n_times_m_rows_of_the_input_shape_and_dtype(
    shape: tuple[int, ...], dtype: type[np.floating]
) -> None:
    candidates = np.random.default_rng(0).normal(size=shape).astype(dtype)
    config = ViewConfig(count=4, augmentations=AUGMENTATIONS)

    views = make_views(candidates, config)

    assert views.shape == (shape[0] * 4, *shape[1:])
    assert views.dtype == dtype


def test_patch_zero_of_every_candidate_is_the_candidate_unchanged() -> None:
    candidates = np.random.default_rng(1).normal(size=(6, 3, 5, 5))
    config = ViewConfig(count=9, augmentations=AUGMENTATIONS)

    views = make_views(candidates, config)

    np.testing.assert_array_equal(views[::9], candidates)


def test_rows_of_one_candidate_are_contiguous() -> None:
    candidates = np.stack([np.zeros((4, 4)), np.ones((4, 4))])
    config = ViewConfig(count=3, augmentations=("shift", "flip"))

    views = make_views(candidates, config)

    np.testing.assert_array_equal(views[:3], 0.0)
    np.testing.assert_array_equal(views[3:], 1.0)


def test_shift_right_moves_content_right_and_replicates_the_left_border() -> None:
    views = _views_of(_image(), ViewConfig(count=2))

    expected = [[0, 0, 1, 2], [4, 4, 5, 6], [8, 8, 9, 10]]
    np.testing.assert_array_equal(views[0, 1], expected)


def test_each_shift_moves_content_as_its_name_says() -> None:
    views = _views_of(_image(), ViewConfig(count=9))
    image = _image()[0]

    by_name = dict(zip(SHIFT_ORDER, views[0, 1:], strict=True))
    np.testing.assert_array_equal(by_name["shift_left"][:, :3], image[:, 1:])
    np.testing.assert_array_equal(by_name["shift_down"][1:], image[:2])
    np.testing.assert_array_equal(by_name["shift_up"][:2], image[1:])
    np.testing.assert_array_equal(by_name["shift_down_right"][1:, 1:], image[:2, :3])
    np.testing.assert_array_equal(by_name["shift_up_left"][:2, :3], image[1:, 1:])
    np.testing.assert_array_equal(by_name["shift_down_left"][1:, :3], image[:2, 1:])
    np.testing.assert_array_equal(by_name["shift_up_right"][:2, 1:], image[1:, :3])
    np.testing.assert_array_equal(by_name["shift_down"][0], image[0])


@pytest.mark.parametrize("shift_px", [1, 2, 3, 10])
@pytest.mark.parametrize("size", [(1, 1), (1, 5), (3, 4), (5, 2), (7, 7)], ids=str)
def test_every_shift_reads_the_clamped_source_pixel(
    size: tuple[int, int], shift_px: int
) -> None:
    # out[y, x] = in[clamp(y - dy * s), clamp(x - dx * s)], even past the image edge.
    height, width = size
    candidates = np.random.default_rng(4).normal(size=(2, 2, height, width))
    config = ViewConfig(count=9, shift_px=shift_px)
    moves = [(0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)]

    views = _views_of(candidates, config)

    for view, (dy, dx) in enumerate(moves, start=1):
        ys = np.clip(np.arange(height) - dy * shift_px, 0, height - 1)
        xs = np.clip(np.arange(width) - dx * shift_px, 0, width - 1)
        expected = candidates[..., ys[:, None], xs[None, :]]
        np.testing.assert_array_equal(views[:, view], expected)


def test_shift_distance_comes_from_shift_px() -> None:
    views = _views_of(_image(), ViewConfig(count=2, shift_px=2))

    np.testing.assert_array_equal(views[0, 1, 0], [0, 0, 0, 1])


def test_shifts_move_only_the_last_two_axes_of_multichannel_images() -> None:
    candidates = np.stack([_image()[0], 100 + _image()[0]])[None]  # [1, 2, 3, 4]

    views = _views_of(candidates, ViewConfig(count=2))

    np.testing.assert_array_equal(views[0, 1, 0, 0], [0, 0, 1, 2])
    np.testing.assert_array_equal(views[0, 1, 1, 0], [100, 100, 101, 102])


def test_flip_mirrors_left_to_right() -> None:
    views = _views_of(_image(), ViewConfig(count=2, augmentations=("flip",)))

    np.testing.assert_array_equal(views[0, 1], _image()[0, :, ::-1])


def test_scale_crop_zooms_in_about_the_centre() -> None:
    # A ramp along the width: bilinear resampling of a linear function is exact, so
    # column x reads the input at c + (x - c) * scale, c = (W - 1) / 2.
    ramp = np.tile(np.arange(8, dtype=np.float64), (8, 1))[None]
    config = ViewConfig(count=2, augmentations=("scale_crop",), scale=0.5)

    views = _views_of(ramp, config)

    expected = 3.5 + (np.arange(8) - 3.5) * 0.5
    np.testing.assert_allclose(views[0, 1, 0], expected)
    np.testing.assert_allclose(views[0, 1, :, 0], 1.75)


def test_scale_crop_keeps_a_constant_image_constant() -> None:
    flat = np.full((2, 3, 5, 5), 0.25, dtype=np.float32)
    config = ViewConfig(count=2, augmentations=("scale_crop",))

    views = make_views(flat, config)

    np.testing.assert_allclose(views, 0.25)


def test_noise_is_scaled_by_the_candidates_own_spread() -> None:
    rng = np.random.default_rng(2)
    candidate = (10.0 * rng.normal(size=(1, 64, 64))).astype(np.float32)
    config = ViewConfig(count=2, augmentations=("noise",), noise_std=0.1)

    views = _views_of(candidate, config)

    spread = float(np.std(views[0, 1] - views[0, 0]))
    assert spread == pytest.approx(0.1 * float(candidate.std()), rel=0.05)


def test_noise_still_perturbs_a_constant_candidate() -> None:
    config = ViewConfig(count=2, augmentations=("noise",))

    views = _views_of(np.zeros((1, 16)), config)

    assert np.std(views[0, 1]) == pytest.approx(0.05, rel=0.5)


def test_views_are_deterministic_whatever_batch_a_candidate_arrives_in() -> None:
    rng = np.random.default_rng(3)
    first, second = rng.normal(size=(2, 1, 6, 6))
    config = ViewConfig(count=12, augmentations=AUGMENTATIONS)

    together = _views_of(np.stack([first, second]), config)
    alone = _views_of(second[None], config)
    again = _views_of(np.stack([first, second]), config)

    np.testing.assert_array_equal(together[1], alone[0])
    np.testing.assert_array_equal(together, again)


def test_different_candidates_get_different_noise() -> None:
    candidates = np.stack([np.zeros(32), np.ones(32)])
    config = ViewConfig(count=2, augmentations=("noise",))

    views = _views_of(candidates, config)

    noise = views[:, 1] - views[:, 0]
    assert not np.allclose(noise[0], noise[1])


def test_extra_views_follow_the_documented_order() -> None:
    config = ViewConfig(
        count=12, augmentations=("noise", "scale_crop", "flip", "shift")
    )

    plan = view_plan(config, (8, 8))

    assert plan == ("input", *SHIFT_ORDER, "flip", "scale_crop", "noise")


def test_views_cycle_through_the_list_when_m_exceeds_it() -> None:
    config = ViewConfig(count=5, augmentations=("flip", "noise"))

    plan = view_plan(config, (4, 4))
    views = _views_of(_image(), config)

    assert plan == ("input", "flip", "noise", "flip", "noise")
    np.testing.assert_array_equal(views[0, 3], views[0, 1])
    assert not np.array_equal(views[0, 4], views[0, 2])


def test_feature_rows_take_only_noise_views() -> None:
    config = ViewConfig(count=3, augmentations=("shift", "flip", "noise"))

    plan = view_plan(config, (10,))
    views = _views_of(np.arange(20.0).reshape(2, 10), config)

    assert plan == ("input", "noise", "noise")
    assert not np.array_equal(views[0, 1], views[0, 0])


def test_feature_rows_without_noise_are_refused_with_the_fix() -> None:
    config = ViewConfig(count=3, augmentations=("shift",))

    with pytest.raises(ConfigError, match=r"add it, or use a single view"):
        make_views(np.zeros((2, 10)), config)


def test_one_view_returns_a_copy_of_the_input() -> None:
    candidates = np.ones((3, 4, 4))

    views = make_views(candidates, ViewConfig())

    np.testing.assert_array_equal(views, candidates)
    assert not np.shares_memory(views, candidates)
    assert views_per_candidate(ViewConfig()) == 1


@pytest.mark.parametrize(
    ("candidates", "match"),
    [
        (np.zeros((2, 4, 4), dtype=np.uint8), "dtype uint8; expected float32"),
        (np.zeros(5), r"shape \(5,\); expected \[N, \*S\]"),
    ],
)
def test_make_views_refuses_unusable_arrays(candidates: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        make_views(candidates, ViewConfig(count=2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"count": 0}, r"ViewConfig.count = 0 is invalid; expected an integer >= 1"),
        ({"augmentations": ("rotate",)}, r"augmentations = \('rotate',\) is invalid"),
        ({"augmentations": ("flip", "flip")}, "expected distinct names"),
        ({"count": 2, "augmentations": ()}, "for more than one view"),
        ({"shift_px": 0}, r"shift_px = 0 is invalid"),
        ({"scale": 1.0}, r"scale = 1.0 is invalid; expected a crop fraction"),
        ({"noise_std": 0.0}, r"noise_std = 0.0 is invalid"),
    ],
)
def test_view_config_refuses_values_out_of_range(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        ViewConfig(**kwargs)  # type: ignore[arg-type]
