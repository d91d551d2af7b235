import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from schemas.liveops.v1 import abuse_pb2 as _abuse_pb2
from schemas.liveops.v1 import actions_pb2 as _actions_pb2
from schemas.liveops.v1 import leaderboards_pb2 as _leaderboards_pb2
from schemas.liveops.v1 import notifications_pb2 as _notifications_pb2
from schemas.liveops.v1 import purchases_pb2 as _purchases_pb2
from schemas.liveops.v1 import rewards_pb2 as _rewards_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLATFORM_UNSPECIFIED: _ClassVar[Platform]
    PLATFORM_IOS: _ClassVar[Platform]
    PLATFORM_ANDROID: _ClassVar[Platform]
    PLATFORM_WEB: _ClassVar[Platform]
    PLATFORM_SERVER: _ClassVar[Platform]
PLATFORM_UNSPECIFIED: Platform
PLATFORM_IOS: Platform
PLATFORM_ANDROID: Platform
PLATFORM_WEB: Platform
PLATFORM_SERVER: Platform

class Envelope(_message.Message):
    __slots__ = ("event_id", "idempotency_key", "player_id", "occurred_at", "received_at", "client", "trace", "level_completed", "quest_completed", "daily_login", "match_result", "score_submitted", "purchase_receipt_submitted", "device_token_registered", "notification_requested", "offer_bought", "reward_granted", "purchase_verified", "purchase_rejected", "notification_sent", "notification_failed", "leaderboard_rank_changed", "purchase_refunded", "score_rejected", "season_prize_awarded", "player_flagged")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    QUEST_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    DAILY_LOGIN_FIELD_NUMBER: _ClassVar[int]
    MATCH_RESULT_FIELD_NUMBER: _ClassVar[int]
    SCORE_SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_RECEIPT_SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOKEN_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    OFFER_BOUGHT_FIELD_NUMBER: _ClassVar[int]
    REWARD_GRANTED_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_REJECTED_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_SENT_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FAILED_FIELD_NUMBER: _ClassVar[int]
    LEADERBOARD_RANK_CHANGED_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    SCORE_REJECTED_FIELD_NUMBER: _ClassVar[int]
    SEASON_PRIZE_AWARDED_FIELD_NUMBER: _ClassVar[int]
    PLAYER_FLAGGED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    idempotency_key: str
    player_id: str
    occurred_at: _timestamp_pb2.Timestamp
    received_at: _timestamp_pb2.Timestamp
    client: ClientInfo
    trace: TraceContext
    level_completed: _actions_pb2.LevelCompleted
    quest_completed: _actions_pb2.QuestCompleted
    daily_login: _actions_pb2.DailyLogin
    match_result: _actions_pb2.MatchResult
    score_submitted: _actions_pb2.ScoreSubmitted
    purchase_receipt_submitted: _purchases_pb2.PurchaseReceiptSubmitted
    device_token_registered: _notifications_pb2.DeviceTokenRegistered
    notification_requested: _notifications_pb2.NotificationRequested
    offer_bought: _actions_pb2.OfferBought
    reward_granted: _rewards_pb2.RewardGranted
    purchase_verified: _purchases_pb2.PurchaseVerified
    purchase_rejected: _purchases_pb2.PurchaseRejected
    notification_sent: _notifications_pb2.NotificationSent
    notification_failed: _notifications_pb2.NotificationFailed
    leaderboard_rank_changed: _leaderboards_pb2.LeaderboardRankChanged
    purchase_refunded: _purchases_pb2.PurchaseRefunded
    score_rejected: _leaderboards_pb2.ScoreRejected
    season_prize_awarded: _rewards_pb2.SeasonPrizeAwarded
    player_flagged: _abuse_pb2.PlayerFlagged
    def __init__(self, event_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., player_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., client: _Optional[_Union[ClientInfo, _Mapping]] = ..., trace: _Optional[_Union[TraceContext, _Mapping]] = ..., level_completed: _Optional[_Union[_actions_pb2.LevelCompleted, _Mapping]] = ..., quest_completed: _Optional[_Union[_actions_pb2.QuestCompleted, _Mapping]] = ..., daily_login: _Optional[_Union[_actions_pb2.DailyLogin, _Mapping]] = ..., match_result: _Optional[_Union[_actions_pb2.MatchResult, _Mapping]] = ..., score_submitted: _Optional[_Union[_actions_pb2.ScoreSubmitted, _Mapping]] = ..., purchase_receipt_submitted: _Optional[_Union[_purchases_pb2.PurchaseReceiptSubmitted, _Mapping]] = ..., device_token_registered: _Optional[_Union[_notifications_pb2.DeviceTokenRegistered, _Mapping]] = ..., notification_requested: _Optional[_Union[_notifications_pb2.NotificationRequested, _Mapping]] = ..., offer_bought: _Optional[_Union[_actions_pb2.OfferBought, _Mapping]] = ..., reward_granted: _Optional[_Union[_rewards_pb2.RewardGranted, _Mapping]] = ..., purchase_verified: _Optional[_Union[_purchases_pb2.PurchaseVerified, _Mapping]] = ..., purchase_rejected: _Optional[_Union[_purchases_pb2.PurchaseRejected, _Mapping]] = ..., notification_sent: _Optional[_Union[_notifications_pb2.NotificationSent, _Mapping]] = ..., notification_failed: _Optional[_Union[_notifications_pb2.NotificationFailed, _Mapping]] = ..., leaderboard_rank_changed: _Optional[_Union[_leaderboards_pb2.LeaderboardRankChanged, _Mapping]] = ..., purchase_refunded: _Optional[_Union[_purchases_pb2.PurchaseRefunded, _Mapping]] = ..., score_rejected: _Optional[_Union[_leaderboards_pb2.ScoreRejected, _Mapping]] = ..., season_prize_awarded: _Optional[_Union[_rewards_pb2.SeasonPrizeAwarded, _Mapping]] = ..., player_flagged: _Optional[_Union[_abuse_pb2.PlayerFlagged, _Mapping]] = ...) -> None: ...

class ClientInfo(_message.Message):
    __slots__ = ("platform", "app_version", "build", "schema_version")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    platform: Platform
    app_version: str
    build: int
    schema_version: int
    def __init__(self, platform: _Optional[_Union[Platform, str]] = ..., app_version: _Optional[str] = ..., build: _Optional[int] = ..., schema_version: _Optional[int] = ...) -> None: ...

class TraceContext(_message.Message):
    __slots__ = ("traceparent", "tracestate")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    tracestate: str
    def __init__(self, traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...
