from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RankChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RANK_CHANGE_KIND_UNSPECIFIED: _ClassVar[RankChangeKind]
    RANK_CHANGE_KIND_ENTERED_TOP: _ClassVar[RankChangeKind]
    RANK_CHANGE_KIND_REACHED_FIRST: _ClassVar[RankChangeKind]
    RANK_CHANGE_KIND_OVERTAKEN_FROM_FIRST: _ClassVar[RankChangeKind]

class ScoreRejectionReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORE_REJECTION_REASON_UNSPECIFIED: _ClassVar[ScoreRejectionReason]
    SCORE_REJECTION_REASON_OUT_OF_RANGE: _ClassVar[ScoreRejectionReason]
    SCORE_REJECTION_REASON_UNKNOWN_LEADERBOARD: _ClassVar[ScoreRejectionReason]
    SCORE_REJECTION_REASON_CLOSED: _ClassVar[ScoreRejectionReason]
    SCORE_REJECTION_REASON_RATE_LIMITED: _ClassVar[ScoreRejectionReason]
RANK_CHANGE_KIND_UNSPECIFIED: RankChangeKind
RANK_CHANGE_KIND_ENTERED_TOP: RankChangeKind
RANK_CHANGE_KIND_REACHED_FIRST: RankChangeKind
RANK_CHANGE_KIND_OVERTAKEN_FROM_FIRST: RankChangeKind
SCORE_REJECTION_REASON_UNSPECIFIED: ScoreRejectionReason
SCORE_REJECTION_REASON_OUT_OF_RANGE: ScoreRejectionReason
SCORE_REJECTION_REASON_UNKNOWN_LEADERBOARD: ScoreRejectionReason
SCORE_REJECTION_REASON_CLOSED: ScoreRejectionReason
SCORE_REJECTION_REASON_RATE_LIMITED: ScoreRejectionReason

class LeaderboardRankChanged(_message.Message):
    __slots__ = ("leaderboard_id", "period", "kind", "old_rank", "new_rank", "score", "threshold")
    LEADERBOARD_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OLD_RANK_FIELD_NUMBER: _ClassVar[int]
    NEW_RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    leaderboard_id: str
    period: str
    kind: RankChangeKind
    old_rank: int
    new_rank: int
    score: int
    threshold: int
    def __init__(self, leaderboard_id: _Optional[str] = ..., period: _Optional[str] = ..., kind: _Optional[_Union[RankChangeKind, str]] = ..., old_rank: _Optional[int] = ..., new_rank: _Optional[int] = ..., score: _Optional[int] = ..., threshold: _Optional[int] = ...) -> None: ...

class ScoreRejected(_message.Message):
    __slots__ = ("leaderboard_id", "period", "score", "reason", "source_event_id")
    LEADERBOARD_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    leaderboard_id: str
    period: str
    score: int
    reason: ScoreRejectionReason
    source_event_id: str
    def __init__(self, leaderboard_id: _Optional[str] = ..., period: _Optional[str] = ..., score: _Optional[int] = ..., reason: _Optional[_Union[ScoreRejectionReason, str]] = ..., source_event_id: _Optional[str] = ...) -> None: ...
