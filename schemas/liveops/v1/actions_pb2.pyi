from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MatchOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATCH_OUTCOME_UNSPECIFIED: _ClassVar[MatchOutcome]
    MATCH_OUTCOME_WIN: _ClassVar[MatchOutcome]
    MATCH_OUTCOME_LOSS: _ClassVar[MatchOutcome]
    MATCH_OUTCOME_DRAW: _ClassVar[MatchOutcome]
MATCH_OUTCOME_UNSPECIFIED: MatchOutcome
MATCH_OUTCOME_WIN: MatchOutcome
MATCH_OUTCOME_LOSS: MatchOutcome
MATCH_OUTCOME_DRAW: MatchOutcome

class LevelCompleted(_message.Message):
    __slots__ = ("level_id", "stars", "duration_ms", "score")
    LEVEL_ID_FIELD_NUMBER: _ClassVar[int]
    STARS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    level_id: str
    stars: int
    duration_ms: int
    score: int
    def __init__(self, level_id: _Optional[str] = ..., stars: _Optional[int] = ..., duration_ms: _Optional[int] = ..., score: _Optional[int] = ...) -> None: ...

class QuestCompleted(_message.Message):
    __slots__ = ("quest_id",)
    QUEST_ID_FIELD_NUMBER: _ClassVar[int]
    quest_id: str
    def __init__(self, quest_id: _Optional[str] = ...) -> None: ...

class DailyLogin(_message.Message):
    __slots__ = ("streak_days", "local_date")
    STREAK_DAYS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DATE_FIELD_NUMBER: _ClassVar[int]
    streak_days: int
    local_date: str
    def __init__(self, streak_days: _Optional[int] = ..., local_date: _Optional[str] = ...) -> None: ...

class MatchResult(_message.Message):
    __slots__ = ("match_id", "mode", "outcome", "score")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    mode: str
    outcome: MatchOutcome
    score: int
    def __init__(self, match_id: _Optional[str] = ..., mode: _Optional[str] = ..., outcome: _Optional[_Union[MatchOutcome, str]] = ..., score: _Optional[int] = ...) -> None: ...

class ScoreSubmitted(_message.Message):
    __slots__ = ("leaderboard_id", "score")
    LEADERBOARD_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    leaderboard_id: str
    score: int
    def __init__(self, leaderboard_id: _Optional[str] = ..., score: _Optional[int] = ...) -> None: ...

class OfferBought(_message.Message):
    __slots__ = ("offer_id",)
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    def __init__(self, offer_id: _Optional[str] = ...) -> None: ...
