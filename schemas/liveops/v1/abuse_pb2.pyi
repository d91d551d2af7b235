import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlagReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLAG_REASON_UNSPECIFIED: _ClassVar[FlagReason]
    FLAG_REASON_VELOCITY: _ClassVar[FlagReason]
FLAG_REASON_UNSPECIFIED: FlagReason
FLAG_REASON_VELOCITY: FlagReason

class PlayerFlagged(_message.Message):
    __slots__ = ("reason", "window_start", "window_end", "event_count", "threshold", "event_types")
    REASON_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    reason: FlagReason
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    event_count: int
    threshold: int
    event_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reason: _Optional[_Union[FlagReason, str]] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_count: _Optional[int] = ..., threshold: _Optional[int] = ..., event_types: _Optional[_Iterable[str]] = ...) -> None: ...
