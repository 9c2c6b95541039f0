"""The AIFT/ACFT method with no transport and no framework.

Views (augmentations of one candidate), uncertainty scores over them, selection and
stopping rules, and the model configuration schema. Pure numpy and the standard
library, so that the server, the trainer and the benchmarks share one copy.
"""

from __future__ import annotations

from .config import (
    BatchingConfig,
    ModelConfig,
    ModelSection,
    RuntimeConfig,
    TrainingConfig,
    UncertaintyConfig,
    load_model_config,
)
from .errors import ConfigError, CoreError, InputError
from .scores import (
    SCORE_NAMES,
    ScoreConfig,
    Scores,
    score_patches,
    single_view_scores,
    softmax,
    uncertainty,
)
from .selection import FlagConfig, FlagPolicy, select_randomised, select_top
from .stopping import StopDecision, StoppingConfig, evaluate_stopping
from .views import AUGMENTATIONS, ViewConfig, make_views, view_plan, views_per_candidate

__all__ = [
    "AUGMENTATIONS",
    "SCORE_NAMES",
    "BatchingConfig",
    "ConfigError",
    "CoreError",
    "FlagConfig",
    "FlagPolicy",
    "InputError",
    "ModelConfig",
    "ModelSection",
    "RuntimeConfig",
    "ScoreConfig",
    "Scores",
    "StopDecision",
    "StoppingConfig",
    "TrainingConfig",
    "UncertaintyConfig",
    "ViewConfig",
    "evaluate_stopping",
    "load_model_config",
    "make_views",
    "score_patches",
    "select_randomised",
    "select_top",
    "single_view_scores",
    "softmax",
    "uncertainty",
    "view_plan",
    "views_per_candidate",
]
