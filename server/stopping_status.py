"""The loop's stopping criteria, evaluated from the queue and the repository.

The article's three reasons (budget spent, hard samples already right, hard samples
unclassifiable) read the most recent verdicts in the queue; the journal's validation
plateau reads the `validation_accuracy` each trained version recorded in its
metadata.json. `activeserve.core.stopping` holds the rules; this module gathers their
inputs.
"""

from __future__ import annotations

import logging

from activeserve.core.config import ModelConfig
from activeserve.core.stopping import StopDecision, evaluate_stopping
from activeserve.server.queue import QueueStore, SampleState
from activeserve.server.repository import ModelRepository

logger = logging.getLogger(__name__)

VALIDATION_METRIC = "validation_accuracy"


def stopping_status(
    store: QueueStore,
    repository: ModelRepository,
    model_name: str,
    config: ModelConfig,
) -> StopDecision:
    """Evaluate every stopping rule for `model_name` now (blocking: store reads)."""
    rules = config.stopping
    recent = store.recent_verdicts(model_name, rules.window)
    labelled = [s for s in recent if s.state is SampleState.LABELLED]
    stats = store.stats(model_name, last_n=rules.window)

    return evaluate_stopping(
        rules,
        labels_used=stats.labels_total,
        recent_agreement=[s.label == s.predicted_label for s in labelled],
        recent_unclassifiable=[s.state is SampleState.UNCLASSIFIABLE for s in recent],
        validation_history=validation_history(repository, model_name),
    )


def validation_history(repository: ModelRepository, model_name: str) -> list[float]:
    """Validation accuracy of each version that recorded one, in version order."""
    history = []
    for version in repository.versions(model_name):
        metrics = repository.metadata(model_name, version).get("metrics", {})
        value = metrics.get(VALIDATION_METRIC) if isinstance(metrics, dict) else None
        if isinstance(value, (int, float)):
            history.append(float(value))
    return history
