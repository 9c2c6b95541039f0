from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from activeserve.core.errors import InputError
from activeserve.core.selection import select_randomised, select_top


def test_select_top_returns_the_highest_scores_highest_first() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7])

    np.testing.assert_array_equal(select_top(scores, 3), [1, 3, 2])


def test_select_top_keeps_index_order_among_ties_and_ranks_nan_last() -> None:
    scores = np.array([np.nan, 0.5, 0.9, 0.5])

    np.testing.assert_array_equal(select_top(scores, 4), [2, 1, 3, 0])


@pytest.mark.parametrize(("budget", "size"), [(0, 0), (2, 2), (10, 3)])
def test_select_top_returns_at_most_the_pool(budget: int, size: int) -> None:
    chosen = select_top(np.array([0.3, 0.2, 0.1]), budget)

    assert chosen.shape == (size,)
    assert chosen.dtype == np.int64


def test_select_top_refuses_a_negative_budget() -> None:
    with pytest.raises(InputError, match="budget = -1 is invalid; expected an integer"):
        select_top(np.zeros(3), -1)


def test_selection_refuses_scores_that_are_not_one_per_candidate() -> None:
    with pytest.raises(InputError, match=r"shape \(2, 2\); expected one score"):
        select_top(np.zeros((2, 2)), 1)


def test_randomised_selection_never_leaves_the_top_omega_b_pool() -> None:
    scores = np.random.default_rng(0).random(50)
    pool = set(select_top(scores, math.ceil(2.5 * 4)).tolist())

    for seed in range(200):
        chosen = select_randomised(scores, 4, 2.5, np.random.default_rng(seed))

        assert len(set(chosen.tolist())) == 4
        assert set(chosen.tolist()) <= pool
        assert np.all(np.diff(scores[chosen]) <= 0.0)


def test_randomised_selection_draws_in_proportion_to_the_normalised_score() -> None:
    # Pool of omega * b = 3: a' = (1, 0.5, 0), so the top two come 2:1 and the third
    # (the pool minimum) never.
    scores = np.array([3.0, 2.0, 1.0, 0.0, -1.0])
    rng = np.random.default_rng(1)

    counts = collections.Counter(
        int(select_randomised(scores, 1, 3.0, rng)[0]) for _ in range(3000)
    )

    assert set(counts) == {0, 1}
    assert counts[0] / 3000 == pytest.approx(2 / 3, abs=0.03)


def test_randomised_selection_with_omega_one_is_top_selection() -> None:
    scores = np.random.default_rng(2).random(20)

    chosen = select_randomised(scores, 5, 1.0, np.random.default_rng(0))

    np.testing.assert_array_equal(chosen, select_top(scores, 5))


def test_randomised_selection_is_uniform_over_a_pool_of_equal_scores() -> None:
    scores = np.ones(4)
    rng = np.random.default_rng(3)

    counts = collections.Counter(
        int(select_randomised(scores, 1, 4.0, rng)[0]) for _ in range(4000)
    )

    for index in range(4):
        assert counts[index] / 4000 == pytest.approx(0.25, abs=0.03)


def test_randomised_selection_fills_up_from_zero_weight_members_when_short() -> None:
    # Only index 0 has a' > 0; the second pick is uniform among the rest of the pool.
    scores = np.array([5.0, 1.0, 1.0, 1.0, 0.0])
    seen: set[int] = set()

    for seed in range(50):
        chosen = select_randomised(scores, 2, 2.0, np.random.default_rng(seed))
        assert chosen[0] == 0
        seen.add(int(chosen[1]))

    assert seen == {1, 2, 3}


def test_randomised_selection_takes_a_small_pool_whole() -> None:
    chosen = select_randomised(np.array([0.2, 0.4]), 3, 2.0, np.random.default_rng(0))

    np.testing.assert_array_equal(chosen, [1, 0])


def test_randomised_selection_is_reproducible_for_a_seed() -> None:
    scores = np.random.default_rng(4).random(100)

    first = select_randomised(scores, 10, 3.0, np.random.default_rng(9))
    second = select_randomised(scores, 10, 3.0, np.random.default_rng(9))

    np.testing.assert_array_equal(first, second)


def test_randomised_selection_never_picks_nan_while_others_remain() -> None:
    scores = np.array([np.nan, 0.9, 0.8, 0.1])

    for seed in range(20):
        chosen = select_randomised(scores, 2, 2.0, np.random.default_rng(seed))
        assert 0 not in chosen.tolist()


def test_randomised_selection_refuses_omega_below_one() -> None:
    with pytest.raises(InputError, match=r"omega = 0.5 is invalid; expected >= 1"):
        select_randomised(np.zeros(3), 1, 0.5, np.random.default_rng(0))
