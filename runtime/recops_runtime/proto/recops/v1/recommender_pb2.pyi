from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeedbackEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_EVENT_UNSPECIFIED: _ClassVar[FeedbackEvent]
    FEEDBACK_EVENT_IMPRESSION: _ClassVar[FeedbackEvent]
    FEEDBACK_EVENT_CLICK: _ClassVar[FeedbackEvent]
    FEEDBACK_EVENT_WATCH: _ClassVar[FeedbackEvent]
    FEEDBACK_EVENT_RATING: _ClassVar[FeedbackEvent]
FEEDBACK_EVENT_UNSPECIFIED: FeedbackEvent
FEEDBACK_EVENT_IMPRESSION: FeedbackEvent
FEEDBACK_EVENT_CLICK: FeedbackEvent
FEEDBACK_EVENT_WATCH: FeedbackEvent
FEEDBACK_EVENT_RATING: FeedbackEvent

class RecommendRequest(_message.Message):
    __slots__ = ("user_id", "history", "k", "exclude_seen", "exclude_items", "request_id", "version")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SEEN_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    history: _containers.RepeatedScalarFieldContainer[str]
    k: int
    exclude_seen: bool
    exclude_items: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    version: str
    def __init__(self, user_id: _Optional[str] = ..., history: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., exclude_seen: _Optional[bool] = ..., exclude_items: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ScoredItem(_message.Message):
    __slots__ = ("item_id", "score")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("items", "request_id", "version", "target", "model_version", "fallback_reason")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoredItem]
    request_id: str
    version: str
    target: str
    model_version: str
    fallback_reason: str
    def __init__(self, items: _Optional[_Iterable[_Union[ScoredItem, _Mapping]]] = ..., request_id: _Optional[str] = ..., version: _Optional[str] = ..., target: _Optional[str] = ..., model_version: _Optional[str] = ..., fallback_reason: _Optional[str] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("request_id", "user_id", "item_id", "event", "timestamp", "value")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_id: str
    item_id: str
    event: FeedbackEvent
    timestamp: float
    value: float
    def __init__(self, request_id: _Optional[str] = ..., user_id: _Optional[str] = ..., item_id: _Optional[str] = ..., event: _Optional[_Union[FeedbackEvent, str]] = ..., timestamp: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("recommended", "version")
    RECOMMENDED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    recommended: bool
    version: str
    def __init__(self, recommended: _Optional[bool] = ..., version: _Optional[str] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelVersionInfo(_message.Message):
    __slots__ = ("version", "target", "model_version", "precision", "num_items", "num_users", "maxlen", "weight", "ready")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    NUM_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NUM_USERS_FIELD_NUMBER: _ClassVar[int]
    MAXLEN_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    version: str
    target: str
    model_version: str
    precision: str
    num_items: int
    num_users: int
    maxlen: int
    weight: int
    ready: bool
    def __init__(self, version: _Optional[str] = ..., target: _Optional[str] = ..., model_version: _Optional[str] = ..., precision: _Optional[str] = ..., num_items: _Optional[int] = ..., num_users: _Optional[int] = ..., maxlen: _Optional[int] = ..., weight: _Optional[int] = ..., ready: _Optional[bool] = ...) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("versions", "sticky")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    STICKY_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersionInfo]
    sticky: bool
    def __init__(self, versions: _Optional[_Iterable[_Union[ModelVersionInfo, _Mapping]]] = ..., sticky: _Optional[bool] = ...) -> None: ...
