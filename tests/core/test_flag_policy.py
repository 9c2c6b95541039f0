from __future__ import annotations

import math

import numpy as np
import pytest

from activeserve.core.errors import ConfigError
from activeserve.core.selection import FlagConfig, FlagPolicy


def _flagged(policy: FlagPolicy, values: list[float], now_s: float = 0.0) -> list[int]:
    """Indices of ``values`` the policy flags."""
    return np.flatnonzero(policy.decide(np.array(values), now_s)).tolist()


def test_threshold_policy_flags_uncertainty_at_or_above_the_threshold() -> None:
    policy = FlagPolicy(FlagConfig(policy="threshold", threshold=0.5))

    assert _flagged(policy, [0.1, 0.5, 0.9, 0.49]) == [1, 2]


def test_a_disabled_policy_flags_nothing() -> None:
    policy = FlagPolicy(FlagConfig(enabled=False, policy="threshold", threshold=0.0))

    mask = policy.decide(np.array([1.0, 2.0]), 0.0)

    assert mask.dtype == np.bool_
    assert not mask.any()


def test_top_fraction_flags_the_top_of_the_window() -> None:
    config = FlagConfig(top_fraction=0.05, window=100, min_window=50)
    policy = FlagPolicy(config)

    flagged = _flagged(policy, [float(v) for v in range(100)])

    assert flagged == [95, 96, 97, 98, 99]


def test_top_fraction_judges_a_new_batch_against_recent_traffic() -> None:
    config = FlagConfig(top_fraction=0.1, window=100, min_window=10)
    policy = FlagPolicy(config)
    _flagged(policy, [float(v) for v in range(100)])

    # The window now holds 3..99, 89.5, 95 and 2: its top 10 start at 91.
    assert _flagged(policy, [89.5, 95.0, 2.0]) == [1]


def test_top_fraction_falls_back_to_the_threshold_below_min_window() -> None:
    config = FlagConfig(top_fraction=0.5, threshold=0.8, window=100, min_window=10)
    policy = FlagPolicy(config)

    assert _flagged(policy, [0.1, 0.7, 0.9]) == [2]
    assert policy.window_size == 3


def test_the_window_forgets_old_traffic() -> None:
    config = FlagConfig(top_fraction=0.5, window=4, min_window=4)
    policy = FlagPolicy(config)
    _flagged(policy, [10.0, 10.0, 10.0, 10.0])

    flagged = _flagged(policy, [1.0, 2.0, 3.0, 4.0])

    assert flagged == [2, 3]
    assert policy.window_size == 4


def test_nan_uncertainty_is_never_flagged_nor_remembered() -> None:
    policy = FlagPolicy(FlagConfig(policy="threshold", threshold=0.0))

    assert _flagged(policy, [math.nan, 1.0]) == [1]
    assert policy.window_size == 1


def test_budget_flags_the_most_uncertain_and_refills_over_time() -> None:
    config = FlagConfig(policy="threshold", threshold=0.0, budget_per_hour=2.0)
    policy = FlagPolicy(config)

    assert _flagged(policy, [0.1, 0.9, 0.5, 0.8], now_s=0.0) == [1, 3]
    assert _flagged(policy, [0.7], now_s=10.0) == []

    # Half an hour at two per hour gives back one token.
    assert _flagged(policy, [0.2, 0.3], now_s=1810.0) == [1]


def test_budget_bucket_holds_at_most_one_hours_worth() -> None:
    config = FlagConfig(policy="threshold", threshold=0.0, budget_per_hour=3.0)
    policy = FlagPolicy(config)
    policy.decide(np.ones(3), 0.0)

    policy.decide(np.empty(0), 100 * 3600.0)

    assert policy.tokens == pytest.approx(3.0)


def test_a_clock_going_back_refills_nothing() -> None:
    config = FlagConfig(policy="threshold", threshold=0.0, budget_per_hour=1.0)
    policy = FlagPolicy(config)
    policy.decide(np.ones(1), 5000.0)

    assert _flagged(policy, [1.0], now_s=1000.0) == []
    assert _flagged(policy, [1.0], now_s=5000.0 + 3600.0) == [0]


def test_a_budget_under_one_per_hour_still_allows_a_first_flag() -> None:
    config = FlagConfig(policy="threshold", threshold=0.0, budget_per_hour=0.5)
    policy = FlagPolicy(config)

    assert _flagged(policy, [1.0, 2.0]) == [1]


def test_no_budget_means_no_cap() -> None:
    policy = FlagPolicy(FlagConfig(policy="threshold", threshold=0.0))

    assert len(_flagged(policy, [1.0] * 500)) == 500
    assert policy.tokens == math.inf


def test_randomised_budget_draws_from_the_top_omega_b_of_passing() -> None:
    config = FlagConfig(
        policy="threshold",
        threshold=0.0,
        budget_per_hour=2.0,
        randomised=True,
        omega=2.0,
    )
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    seen: set[int] = set()

    for seed in range(40):
        flagged = _flagged(FlagPolicy(config, seed=seed), values)
        assert len(flagged) == 2
        seen.update(flagged)

    assert seen <= {4, 5, 6, 7}
    assert len(seen) > 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policy": "best"}, r"FlagConfig.policy = 'best' is invalid; expected one of"),
        ({"score": "entropi"}, r"score = 'entropi' is invalid"),
        ({"top_fraction": 0.0}, r"top_fraction = 0.0 is invalid"),
        ({"window": 0}, r"window = 0 is invalid"),
        (
            {"window": 10, "min_window": 11},
            r"expected an integer in \[0, window = 10\]",
        ),
        ({"budget_per_hour": -1.0}, r"budget_per_hour = -1.0 is invalid"),
        ({"omega": 0.5}, r"omega = 0.5 is invalid"),
        ({"max_pending": 0}, r"max_pending = 0 is invalid"),
        ({"threshold": math.nan}, r"threshold = nan is invalid"),
    ],
)
def test_flag_config_refuses_values_out_of_range(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        FlagConfig(**kwargs)  # type: ignore[arg-type]
