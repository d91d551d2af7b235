from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssetKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSET_KIND_UNSPECIFIED: _ClassVar[AssetKind]
    ASSET_KIND_CURRENCY: _ClassVar[AssetKind]
    ASSET_KIND_ITEM: _ClassVar[AssetKind]
ASSET_KIND_UNSPECIFIED: AssetKind
ASSET_KIND_CURRENCY: AssetKind
ASSET_KIND_ITEM: AssetKind

class Grant(_message.Message):
    __slots__ = ("asset_id", "kind", "amount")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    kind: AssetKind
    amount: int
    def __init__(self, asset_id: _Optional[str] = ..., kind: _Optional[_Union[AssetKind, str]] = ..., amount: _Optional[int] = ...) -> None: ...

class RewardGranted(_message.Message):
    __slots__ = ("grant_id", "grants", "reason", "rule_id", "rule_version", "campaign_id", "source_event_id", "campaign_version", "reverses_grant_id", "campaign_missed")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_VERSION_FIELD_NUMBER: _ClassVar[int]
    REVERSES_GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_MISSED_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    grants: _containers.RepeatedCompositeFieldContainer[Grant]
    reason: str
    rule_id: str
    rule_version: str
    campaign_id: str
    source_event_id: str
    campaign_version: str
    reverses_grant_id: str
    campaign_missed: str
    def __init__(self, grant_id: _Optional[str] = ..., grants: _Optional[_Iterable[_Union[Grant, _Mapping]]] = ..., reason: _Optional[str] = ..., rule_id: _Optional[str] = ..., rule_version: _Optional[str] = ..., campaign_id: _Optional[str] = ..., source_event_id: _Optional[str] = ..., campaign_version: _Optional[str] = ..., reverses_grant_id: _Optional[str] = ..., campaign_missed: _Optional[str] = ...) -> None: ...

class SeasonPrizeAwarded(_message.Message):
    __slots__ = ("season_id", "leaderboard_id", "rank")
    SEASON_ID_FIELD_NUMBER: _ClassVar[int]
    LEADERBOARD_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    season_id: str
    leaderboard_id: str
    rank: int
    def __init__(self, season_id: _Optional[str] = ..., leaderboard_id: _Optional[str] = ..., rank: _Optional[int] = ...) -> None: ...
