"""The activeserve SDK: predictions with uncertainty, and review of flagged samples.

from activeserve.client import Client

with Client("127.0.0.1:8001") as client:
    result = client.predict("digits", images)
"""

from activeserve.client.client import Client
from activeserve.client.errors import (
    ClientError,
    Conflict,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from activeserve.client.results import (
    LabelledSample,
    PredictResult,
    QueueStats,
    StoppingStatus,
)
from activeserve.client.review import ReviewItem

__all__ = [
    "Client",
    "ClientError",
    "Conflict",
    "InvalidArgument",
    "LabelledSample",
    "NotFound",
    "PredictResult",
    "QueueStats",
    "ReviewItem",
    "StoppingStatus",
    "Unavailable",
]
