from activeserve.proto import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SampleState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLE_STATE_UNSPECIFIED: _ClassVar[SampleState]
    SAMPLE_STATE_PENDING: _ClassVar[SampleState]
    SAMPLE_STATE_LEASED: _ClassVar[SampleState]
    SAMPLE_STATE_LABELLED: _ClassVar[SampleState]
    SAMPLE_STATE_SKIPPED: _ClassVar[SampleState]
    SAMPLE_STATE_UNCLASSIFIABLE: _ClassVar[SampleState]
SAMPLE_STATE_UNSPECIFIED: SampleState
SAMPLE_STATE_PENDING: SampleState
SAMPLE_STATE_LEASED: SampleState
SAMPLE_STATE_LABELLED: SampleState
SAMPLE_STATE_SKIPPED: SampleState
SAMPLE_STATE_UNCLASSIFIABLE: SampleState

class Sample(_message.Message):
    __slots__ = ("id", "model_name", "model_version", "input", "probabilities", "scores", "predicted_label", "priority", "state", "created_at", "lease_token", "lease_expires_at")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_LABEL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    model_name: str
    model_version: str
    input: _tensor_pb2.Tensor
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    scores: _containers.ScalarMap[str, float]
    predicted_label: int
    priority: float
    state: SampleState
    created_at: float
    lease_token: str
    lease_expires_at: float
    def __init__(self, id: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., input: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., probabilities: _Optional[_Iterable[float]] = ..., scores: _Optional[_Mapping[str, float]] = ..., predicted_label: _Optional[int] = ..., priority: _Optional[float] = ..., state: _Optional[_Union[SampleState, str]] = ..., created_at: _Optional[float] = ..., lease_token: _Optional[str] = ..., lease_expires_at: _Optional[float] = ...) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ("model_name", "count", "lease_s", "reviewer")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    count: int
    lease_s: float
    reviewer: str
    def __init__(self, model_name: _Optional[str] = ..., count: _Optional[int] = ..., lease_s: _Optional[float] = ..., reviewer: _Optional[str] = ...) -> None: ...

class LeaseResponse(_message.Message):
    __slots__ = ("samples", "class_labels")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABELS_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    class_labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ..., class_labels: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("sample_id", "lease_token")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sample_id: int
    lease_token: str
    def __init__(self, sample_id: _Optional[int] = ..., lease_token: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubmitLabelRequest(_message.Message):
    __slots__ = ("sample_id", "label", "reviewer", "lease_token")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sample_id: int
    label: int
    reviewer: str
    lease_token: str
    def __init__(self, sample_id: _Optional[int] = ..., label: _Optional[int] = ..., reviewer: _Optional[str] = ..., lease_token: _Optional[str] = ...) -> None: ...

class SubmitLabelResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    def __init__(self, recorded: _Optional[bool] = ...) -> None: ...

class SkipRequest(_message.Message):
    __slots__ = ("sample_id", "reviewer", "lease_token")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sample_id: int
    reviewer: str
    lease_token: str
    def __init__(self, sample_id: _Optional[int] = ..., reviewer: _Optional[str] = ..., lease_token: _Optional[str] = ...) -> None: ...

class SkipResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MarkUnclassifiableRequest(_message.Message):
    __slots__ = ("sample_id", "reviewer", "lease_token")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sample_id: int
    reviewer: str
    lease_token: str
    def __init__(self, sample_id: _Optional[int] = ..., reviewer: _Optional[str] = ..., lease_token: _Optional[str] = ...) -> None: ...

class MarkUnclassifiableResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueueStatsRequest(_message.Message):
    __slots__ = ("model_name", "last_n")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_N_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    last_n: int
    def __init__(self, model_name: _Optional[str] = ..., last_n: _Optional[int] = ...) -> None: ...

class StoppingStatus(_message.Message):
    __slots__ = ("stop", "reasons", "detail")
    class DetailEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STOP_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    stop: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    detail: _containers.ScalarMap[str, float]
    def __init__(self, stop: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., detail: _Optional[_Mapping[str, float]] = ...) -> None: ...

class QueueStatsResponse(_message.Message):
    __slots__ = ("model_name", "counts", "flagged_total", "evictions", "flag_rate", "oldest_pending_age_s", "agreement", "unclassifiable_fraction", "labels_total", "stopping")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    FLAG_RATE_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PENDING_AGE_S_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    UNCLASSIFIABLE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STOPPING_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    counts: _containers.ScalarMap[str, int]
    flagged_total: int
    evictions: int
    flag_rate: float
    oldest_pending_age_s: float
    agreement: float
    unclassifiable_fraction: float
    labels_total: int
    stopping: StoppingStatus
    def __init__(self, model_name: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ..., flagged_total: _Optional[int] = ..., evictions: _Optional[int] = ..., flag_rate: _Optional[float] = ..., oldest_pending_age_s: _Optional[float] = ..., agreement: _Optional[float] = ..., unclassifiable_fraction: _Optional[float] = ..., labels_total: _Optional[int] = ..., stopping: _Optional[_Union[StoppingStatus, _Mapping]] = ...) -> None: ...

class StreamLabelsRequest(_message.Message):
    __slots__ = ("model_name", "after", "follow")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    after: int
    follow: bool
    def __init__(self, model_name: _Optional[str] = ..., after: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class LabelledSample(_message.Message):
    __slots__ = ("sample", "label", "reviewer", "labelled_at", "cursor", "unclassifiable")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    LABELLED_AT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    UNCLASSIFIABLE_FIELD_NUMBER: _ClassVar[int]
    sample: Sample
    label: int
    reviewer: str
    labelled_at: float
    cursor: int
    unclassifiable: bool
    def __init__(self, sample: _Optional[_Union[Sample, _Mapping]] = ..., label: _Optional[int] = ..., reviewer: _Optional[str] = ..., labelled_at: _Optional[float] = ..., cursor: _Optional[int] = ..., unclassifiable: _Optional[bool] = ...) -> None: ...
