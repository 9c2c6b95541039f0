"""Names both ends agree on: the extra output tensors and request parameters that
activeserve adds to the Open Inference Protocol."""

from __future__ import annotations

# Output tensors beside the model's own, one row per candidate.
PROBABILITIES = "probabilities"  # FP32 [N, K], of the input as given
LABEL = "label"  # INT64 [N], argmax of probabilities
ENTROPY = "entropy"  # FP32 [N]
DIVERSITY = "diversity"  # FP32 [N]
SCORE = "score"  # FP32 [N], lambda_entropy * entropy + lambda_diversity * diversity
LEAST_CONFIDENCE = "least_confidence"  # FP32 [N]
MARGIN = "margin"  # FP32 [N], small = uncertain
MUTUAL_INFORMATION = "mutual_information"  # FP32 [N]
VIEWS = "views"  # INT32 [N], views each candidate was scored with
FLAGGED = "flagged"  # BOOL [N], durably queued for a label
SAMPLE_ID = "sample_id"  # INT64 [N], queue id, -1 where not flagged

SCORE_OUTPUTS = (
    ENTROPY,
    DIVERSITY,
    SCORE,
    LEAST_CONFIDENCE,
    MARGIN,
    MUTUAL_INFORMATION,
)
EXTRA_OUTPUTS = (PROBABILITIES, LABEL, *SCORE_OUTPUTS, VIEWS, FLAGGED, SAMPLE_ID)

# Request parameters.
# int64: the input's rows are the client's own views, m consecutive rows per candidate.
CANDIDATE_VIEWS = "candidate_views"
# bool: false keeps this request's inputs out of the label queue.
FLAG = "flag"
