"""The topic catalog: every topic the fleet reads or writes, as frozen objects.

No topic name is typed as a string anywhere else: code refers to these objects. Naming:
`<domain>.<what>.v<N>` for data topics; each consuming group `liveops.<processor>` has retry
companions `<group>.retry.<delay>` and a dead-letter topic `<group>.dlq`.
Every data topic is keyed by player id, so one player's events stay in order on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from google.protobuf.message import Message

from schemas.liveops.v1.envelope_pb2 import Envelope

DAY_MS = 24 * 3600 * 1000
CleanupPolicy = Literal["delete", "compact"]


@dataclass(frozen=True)
class Topic:
    """One Kafka topic and what it carries."""

    name: str
    partitions: int
    retention_ms: int
    owner: str
    description: str
    #: Names of the Envelope payloads (oneof fields) this topic carries; empty for companions,
    #: which carry whatever their group consumes.
    payloads: frozenset[str] = frozenset()
    cleanup_policy: CleanupPolicy = "delete"
    key: str = "player_id"
    value_type: type[Message] = Envelope

    def config(self) -> dict[str, str]:
        """Topic-level configs we manage; anything else on the cluster is left alone."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


@dataclass(frozen=True)
class RetryTier:
    delay_s: int
    topic: Topic


@dataclass(frozen=True)
class ConsumerGroup:
    """A processor's consumer group with its retry tiers and dead-letter topic."""

    processor: str
    inputs: tuple[Topic, ...]
    retry_delays_s: tuple[int, ...] = (10, 60, 600)
    retry_partitions: int = 6
    retry_tiers: tuple[RetryTier, ...] = field(init=False)
    dead_letter: Topic = field(init=False)

    def __post_init__(self) -> None:
        tiers = tuple(
            RetryTier(
                delay,
                Topic(
                    name=f"{self.name}.retry.{_delay_label(delay)}",
                    partitions=self.retry_partitions,
                    retention_ms=7 * DAY_MS,
                    owner=self.processor,
                    description=f"{self.processor} events waiting {_delay_label(delay)} "
                    "for another attempt",
                ),
            )
            for delay in self.retry_delays_s
        )
        object.__setattr__(self, "retry_tiers", tiers)
        dlq = Topic(
            name=f"{self.name}.dlq",
            partitions=3,
            retention_ms=30 * DAY_MS,
            owner=self.processor,
            description=f"{self.processor} events that failed for good, with the reason in "
            "headers; replay with `liveops dlq replay`",
        )
        object.__setattr__(self, "dead_letter", dlq)

    @property
    def name(self) -> str:
        return f"liveops.{self.processor}"

    @property
    def retry_group(self) -> str:
        """The Kafka group a worker reads this group's retry tiers with."""
        return f"{self.name}.retry"

    def companions(self) -> tuple[Topic, ...]:
        return (*(tier.topic for tier in self.retry_tiers), self.dead_letter)


def _delay_label(delay_s: int) -> str:
    if delay_s % 3600 == 0:
        return f"{delay_s // 3600}h"
    if delay_s % 60 == 0:
        return f"{delay_s // 60}m"
    return f"{delay_s}s"


# Inputs: published by the gateway.
PLAYER_ACTIONS = Topic(
    "player.actions.v1",
    12,
    7 * DAY_MS,
    "gateway",
    "Gameplay actions that may earn rewards, shop offers bought with soft currency, and "
    "season prizes announced by leaderboards (players can never send those: the gateway "
    "accepts only schemas.codec.INPUT_PAYLOADS).",
    frozenset(
        {
            "level_completed",
            "quest_completed",
            "daily_login",
            "match_result",
            "offer_bought",
            "season_prize_awarded",
        }
    ),
)
LEADERBOARD_SCORES = Topic(
    "leaderboard.scores.v1",
    12,
    3 * DAY_MS,
    "gateway",
    "Score submissions to leaderboards.",
    frozenset({"score_submitted"}),
)
IAP_RECEIPTS = Topic(
    "iap.receipts.v1",
    6,
    14 * DAY_MS,
    "gateway",
    "Purchase receipts to verify with Apple or Google.",
    frozenset({"purchase_receipt_submitted"}),
)
DEVICE_TOKENS = Topic(
    "devices.tokens.v1",
    6,
    30 * DAY_MS,
    "gateway",
    "Push tokens registered by devices.",
    frozenset({"device_token_registered"}),
)
NOTIFICATION_REQUESTS = Topic(
    "notifications.requests.v1",
    6,
    3 * DAY_MS,
    "gateway",
    "Requests to notify a player by push and/or in-game inbox.",
    frozenset({"notification_requested"}),
)

# Outputs: published by processors, read by other processors and by analytics.
REWARDS_GRANTED = Topic(
    "rewards.granted.v1",
    6,
    14 * DAY_MS,
    "rewards",
    "Every grant or claw-back applied to a wallet.",
    frozenset({"reward_granted"}),
)
IAP_OUTCOMES = Topic(
    "iap.outcomes.v1",
    6,
    30 * DAY_MS,
    "iap",
    "Verified, rejected and refunded purchases.",
    frozenset({"purchase_verified", "purchase_rejected", "purchase_refunded"}),
)
NOTIFICATION_OUTCOMES = Topic(
    "notifications.outcomes.v1",
    6,
    7 * DAY_MS,
    "notifications",
    "Notifications sent or failed, per channel.",
    frozenset({"notification_sent", "notification_failed"}),
)
LEADERBOARD_RANKS = Topic(
    "leaderboard.ranks.v1",
    6,
    7 * DAY_MS,
    "leaderboards",
    "Rank changes past a threshold (entered the top N, reached or lost first place), and "
    "refused score submissions with their reason.",
    frozenset({"leaderboard_rank_changed", "score_rejected"}),
)
PLAYER_FLAGS = Topic(
    "players.flags.v1",
    6,
    30 * DAY_MS,
    "velocity",
    "Players flagged as abusive (too many events in one window); one flag per player and window.",
    frozenset({"player_flagged"}),
)

DATA_TOPICS: tuple[Topic, ...] = (
    PLAYER_ACTIONS,
    LEADERBOARD_SCORES,
    IAP_RECEIPTS,
    DEVICE_TOKENS,
    NOTIFICATION_REQUESTS,
    REWARDS_GRANTED,
    IAP_OUTCOMES,
    NOTIFICATION_OUTCOMES,
    LEADERBOARD_RANKS,
    PLAYER_FLAGS,
)

LEADERBOARDS_GROUP = ConsumerGroup("leaderboards", (LEADERBOARD_SCORES,))
REWARDS_GROUP = ConsumerGroup("rewards", (PLAYER_ACTIONS, IAP_OUTCOMES))
IAP_GROUP = ConsumerGroup("iap", (IAP_RECEIPTS,))
NOTIFICATIONS_GROUP = ConsumerGroup(
    "notifications", (NOTIFICATION_REQUESTS, DEVICE_TOKENS, REWARDS_GRANTED, LEADERBOARD_RANKS)
)
CONSUMER_GROUPS: tuple[ConsumerGroup, ...] = (
    LEADERBOARDS_GROUP,
    REWARDS_GROUP,
    IAP_GROUP,
    NOTIFICATIONS_GROUP,
)

ALL_TOPICS: tuple[Topic, ...] = DATA_TOPICS + tuple(
    topic for group in CONSUMER_GROUPS for topic in group.companions()
)
_BY_NAME = {topic.name: topic for topic in ALL_TOPICS}
_BY_PAYLOAD = {payload: topic for topic in DATA_TOPICS for payload in topic.payloads}


def topic_named(name: str) -> Topic:
    """The catalog topic with this name; KeyError names the known ones when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not in the catalog; known: {', '.join(sorted(_BY_NAME))}"
        ) from None


def topic_for_payload(payload: str) -> Topic:
    """Where an event with this payload is published."""
    return _BY_PAYLOAD[payload]


def group_for(processor: str) -> ConsumerGroup:
    for group in CONSUMER_GROUPS:
        if group.processor == processor:
            return group
    raise KeyError(f"no consumer group for processor {processor!r}")
