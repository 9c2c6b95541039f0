from __future__ import annotations

import pytest

from activeserve.core.errors import ConfigError
from activeserve.core.stopping import StoppingConfig, evaluate_stopping


def _decide(
    config: StoppingConfig,
    *,
    labels_used: int = 0,
    agreement: list[bool] | None = None,
    unclassifiable: list[bool] | None = None,
    history: list[float] | None = None,
) -> tuple[str, ...]:
    decision = evaluate_stopping(
        config,
        labels_used=labels_used,
        recent_agreement=agreement or [],
        recent_unclassifiable=unclassifiable or [],
        validation_history=history or [],
    )
    assert decision.stop == bool(decision.reasons)
    return decision.reasons


def test_a_fresh_loop_does_not_stop() -> None:
    decision = evaluate_stopping(
        StoppingConfig(),
        labels_used=0,
        recent_agreement=[],
        recent_unclassifiable=[],
        validation_history=[],
    )

    assert not decision.stop
    assert decision.reasons == ()
    assert decision.detail == {
        "labels_used": 0.0,
        "agreement_samples": 0.0,
        "unclassifiable_samples": 0.0,
    }


def test_budget_stops_once_the_labels_are_spent() -> None:
    config = StoppingConfig(label_budget=100)

    assert _decide(config, labels_used=99) == ()
    assert _decide(config, labels_used=100) == ("budget",)


def test_a_zero_budget_never_stops_the_loop() -> None:
    assert _decide(StoppingConfig(label_budget=0), labels_used=10**9) == ()


def test_converged_when_hard_samples_are_nearly_all_predicted_right() -> None:
    config = StoppingConfig(tau=0.95, min_samples=30)

    assert _decide(config, agreement=[True] * 28 + [False] * 2) == ()
    assert _decide(config, agreement=[True] * 57 + [False] * 3) == ("converged",)


def test_converged_needs_min_samples() -> None:
    config = StoppingConfig(min_samples=30)

    assert _decide(config, agreement=[True] * 29) == ()
    assert _decide(config, agreement=[True] * 30) == ("converged",)


def test_rates_look_only_at_the_last_window_samples() -> None:
    config = StoppingConfig(window=100)

    reasons = _decide(config, agreement=[False] * 500 + [True] * 100)

    assert reasons == ("converged",)


def test_irreducible_when_reviewers_cannot_classify_the_hard_samples() -> None:
    config = StoppingConfig(tau_u=0.5, min_samples=30)

    assert _decide(config, unclassifiable=[True] * 14 + [False] * 16) == ()
    assert _decide(config, unclassifiable=[True] * 15 + [False] * 15) == (
        "irreducible",
    )


def test_plateau_when_recent_rounds_barely_beat_the_best_before_them() -> None:
    config = StoppingConfig(plateau_rounds=3, plateau_delta=0.002)

    still_learning = _decide(config, history=[0.5, 0.6, 0.7, 0.71])
    flat = _decide(config, history=[0.5, 0.6, 0.7, 0.701, 0.7015, 0.7005])

    assert still_learning == ()
    assert flat == ("plateau",)


def test_plateau_needs_one_round_more_than_plateau_rounds() -> None:
    decision = evaluate_stopping(
        StoppingConfig(plateau_rounds=3),
        labels_used=0,
        recent_agreement=[],
        recent_unclassifiable=[],
        validation_history=[0.5, 0.5, 0.5],
    )

    assert not decision.stop
    assert "plateau_gain" not in decision.detail


def test_every_reason_that_fires_is_listed_in_order_with_its_figures() -> None:
    config = StoppingConfig(label_budget=10, min_samples=2, window=4)

    decision = evaluate_stopping(
        config,
        labels_used=12,
        recent_agreement=[True, True, True],
        recent_unclassifiable=[True, True, False, True],
        validation_history=[0.9, 0.8, 0.8, 0.8],
    )

    assert decision.reasons == ("budget", "converged", "irreducible", "plateau")
    assert decision.detail["agreement"] == 1.0
    assert decision.detail["unclassifiable"] == 0.75
    assert decision.detail["unclassifiable_samples"] == 4.0
    assert decision.detail["plateau_gain"] == pytest.approx(-0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label_budget": -1}, r"StoppingConfig.label_budget = -1 is invalid"),
        ({"tau": 0.0}, r"tau = 0.0 is invalid; expected an agreement rate"),
        ({"tau_u": 1.5}, r"tau_u = 1.5 is invalid"),
        ({"window": 0}, r"window = 0 is invalid"),
        ({"window": 10, "min_samples": 11}, r"expected an integer in \[1, window"),
        ({"plateau_rounds": 0}, r"plateau_rounds = 0 is invalid"),
        ({"plateau_delta": -0.1}, r"plateau_delta = -0.1 is invalid"),
    ],
)
def test_stopping_config_refuses_values_out_of_range(
    kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        StoppingConfig(**kwargs)  # type: ignore[arg-type]
