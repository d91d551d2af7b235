"""What an event asks the rewards processor for: an Action with the facts rules look at.

Only this module reads payloads; rules, campaigns and settlement see Actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from schemas.codec import enum_label, payload_type
from schemas.liveops.v1 import actions_pb2, purchases_pb2
from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.errors import ValidationFailedError
from workers.processors.rewards.grants import ID_LENGTH

#: reward_ledger.purchase_ref is a VARCHAR(191).
PURCHASE_REF_LENGTH = 191


class ActionKind(StrEnum):
    """Actions that can earn (or, for a refund, take back) rewards; also the ledger `reason`."""

    LEVEL_COMPLETED = "level_completed"
    QUEST_COMPLETED = "quest_completed"
    DAILY_LOGIN = "daily_login"
    MATCH_WON = "match_won"
    SEASON_PRIZE = "season_prize"
    PURCHASE_FULFILLED = "purchase_fulfilled"
    PURCHASE_REFUNDED = "purchase_refunded"
    #: A shop offer bought with soft currency: the rule's costs are debited, its grants given.
    OFFER_BOUGHT = "offer_bought"


class Action(NamedTuple):
    """One rewardable action and the facts rule conditions may test."""

    kind: ActionKind
    level_id: str = ""
    stars: int = 0
    quest_id: str = ""
    streak_days: int = 0
    mode: str = ""
    season_id: str = ""
    leaderboard_id: str = ""
    rank: int = 0
    product_id: str = ""
    #: "<store>:<transaction id>" for purchases and refunds: how a refund finds its grants.
    purchase_ref: str = ""
    #: The shop offer bought (offer_bought): rules say what it costs and grants.
    offer_id: str = ""


class NotRewardable(NamedTuple):
    """An event the group receives that earns nothing by design (a lost match, a rejection)."""

    detail: str


def purchase_ref(store: purchases_pb2.Store, transaction_id: str) -> str:
    if not transaction_id:
        raise ValidationFailedError("purchase event without transaction_id")
    store_name = enum_label(purchases_pb2.Store, store, "STORE_")
    if store_name is None:
        raise ValidationFailedError(
            f"store {store} is newer than this worker: replay it after upgrading"
        )
    ref = f"{store_name}:{transaction_id}"
    if len(ref) > PURCHASE_REF_LENGTH:
        raise ValidationFailedError(f"transaction_id longer than {PURCHASE_REF_LENGTH} characters")
    return ref


def action_of(envelope: Envelope) -> Action | NotRewardable:
    """The action an envelope carries. Raises ValidationFailedError for a malformed purchase,
    or ids longer than their columns: caught here, in handle(), because the rows are written
    after it returns (commits.py), where a failure would hold the partition forever."""
    if len(envelope.player_id) > ID_LENGTH:
        raise ValidationFailedError(f"player_id longer than {ID_LENGTH} characters")
    payload = payload_type(envelope)
    if payload == "level_completed":
        level = envelope.level_completed
        return Action(ActionKind.LEVEL_COMPLETED, level_id=level.level_id, stars=level.stars)
    if payload == "quest_completed":
        return Action(ActionKind.QUEST_COMPLETED, quest_id=envelope.quest_completed.quest_id)
    if payload == "daily_login":
        return Action(ActionKind.DAILY_LOGIN, streak_days=envelope.daily_login.streak_days)
    if payload == "match_result":
        match = envelope.match_result
        if match.outcome != actions_pb2.MATCH_OUTCOME_WIN:
            outcome = enum_label(actions_pb2.MatchOutcome, match.outcome, "MATCH_OUTCOME_")
            if outcome is None:  # newer rules may reward it: dead-lettered, not refused for good
                raise ValidationFailedError(
                    f"match outcome {match.outcome} is newer than this worker: "
                    "replay it after upgrading"
                )
            return NotRewardable(f"match {outcome} earns nothing")
        return Action(ActionKind.MATCH_WON, mode=match.mode)
    if payload == "season_prize_awarded":
        prize = envelope.season_prize_awarded
        return Action(
            ActionKind.SEASON_PRIZE,
            season_id=prize.season_id,
            leaderboard_id=prize.leaderboard_id,
            rank=prize.rank,
        )
    if payload == "purchase_verified":
        verified = envelope.purchase_verified
        return Action(
            ActionKind.PURCHASE_FULFILLED,
            product_id=verified.product_id,
            purchase_ref=purchase_ref(verified.store, verified.transaction_id),
        )
    if payload == "purchase_refunded":
        refunded = envelope.purchase_refunded
        return Action(
            ActionKind.PURCHASE_REFUNDED,
            purchase_ref=purchase_ref(refunded.store, refunded.transaction_id),
        )
    if payload == "offer_bought":
        return Action(ActionKind.OFFER_BOUGHT, offer_id=envelope.offer_bought.offer_id)
    return NotRewardable(f"{payload or 'an empty payload'} earns nothing")


def event_time(envelope: Envelope, fallback: datetime) -> datetime:
    """When the event entered the backbone (gateway clock), in UTC.

    Campaign windows and daily caps use this, not the processing time, so a redelivered or
    retried event is judged exactly as its first delivery was. The client clock is not trusted.
    """
    if envelope.HasField("received_at"):
        return envelope.received_at.ToDatetime(tzinfo=UTC)
    return fallback


def time_window(envelopes: Sequence[Envelope], fallback: datetime) -> tuple[datetime, datetime]:
    """The earliest and latest event_time of a batch, to the second (cheap: no per-event
    datetime is built)."""
    seconds = [e.received_at.seconds for e in envelopes if e.HasField("received_at")]
    if len(seconds) < len(envelopes):
        seconds.append(int(fallback.timestamp()))
    if not seconds:
        return fallback, fallback
    return (
        datetime.fromtimestamp(min(seconds), UTC),
        datetime.fromtimestamp(max(seconds) + 1, UTC),
    )
