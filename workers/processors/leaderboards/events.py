"""The events the leaderboards produce, with ids derived from what caused them.

An output's event id is a ULID whose time part is the cause's time and whose random part is a
hash of the cause (the source's idempotency key, kind, threshold, player; or board, period and
player for a prize), so producing the same output twice (a redelivered batch, a client's
retry, a second `close`) gives the same id and idempotency key, and consumers drop the copy.
Which outputs:
- LeaderboardRankChanged on LEADERBOARD_RANKS: entered a top-N threshold, reached first place,
  and (for the previous leader) overtaken from first place;
- ScoreRejected on LEADERBOARD_RANKS: a submission refused, with the reason;
- SeasonPrizeAwarded on PLAYER_ACTIONS, one per archived entry when a period closes, for the
  rewards processor (which consumes season prizes there) to pay.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from ulid import ULID

from schemas.codec import SCHEMA_VERSION
from schemas.liveops.v1 import envelope_pb2, leaderboards_pb2, rewards_pb2
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import LEADERBOARD_RANKS, PLAYER_ACTIONS
from workers.runtime.processor import OutputEvent

#: Where season prizes go: the rewards processor consumes SeasonPrizeAwarded on this topic.
PRIZE_TOPIC = PLAYER_ACTIONS

RejectionReason = leaderboards_pb2.ScoreRejectionReason
RankChangeKind = leaderboards_pb2.RankChangeKind


def derived_event_id(seed: str, at_ms: int) -> str:
    """A ULID that is a pure function of (seed, at_ms): sortable by time, stable on replay."""
    digest = hashlib.sha256(seed.encode()).digest()[:10]
    return str(ULID.from_bytes(max(at_ms, 0).to_bytes(6, "big") + digest))


def _envelope(seed: str, at: datetime, player_id: str, source: Envelope | None) -> Envelope:
    event_id = derived_event_id(seed, int(at.timestamp() * 1000))
    envelope = Envelope(event_id=event_id, idempotency_key=event_id, player_id=player_id)
    envelope.client.platform = envelope_pb2.PLATFORM_SERVER
    envelope.client.schema_version = SCHEMA_VERSION
    # received_at stays the source's, so the end-to-end latency of an output counts from the
    # moment its cause entered the backbone.
    if source is not None and source.HasField("received_at"):
        envelope.received_at.CopyFrom(source.received_at)
    else:
        envelope.received_at.FromDatetime(at)
    envelope.occurred_at.FromDatetime(at)
    if source is not None:
        envelope.trace.CopyFrom(source.trace)
    return envelope


def rank_changed(
    source: Envelope,
    *,
    at: datetime,
    player_id: str,
    leaderboard_id: str,
    period: str,
    kind: leaderboards_pb2.RankChangeKind,
    old_rank: int | None,
    new_rank: int,
    score: int,
    threshold: int = 0,
) -> OutputEvent:
    seed = f"lb-rank|{source.idempotency_key}|{kind}|{threshold}|{player_id}"
    envelope = _envelope(seed, at, player_id, source)
    envelope.leaderboard_rank_changed.CopyFrom(
        leaderboards_pb2.LeaderboardRankChanged(
            leaderboard_id=leaderboard_id,
            period=period,
            kind=kind,
            old_rank=old_rank or 0,
            new_rank=new_rank,
            score=score,
            threshold=threshold,
        )
    )
    return OutputEvent(LEADERBOARD_RANKS, envelope)


def score_rejected(
    source: Envelope,
    *,
    at: datetime,
    leaderboard_id: str,
    period: str,
    score: int,
    reason: leaderboards_pb2.ScoreRejectionReason,
) -> OutputEvent:
    envelope = _envelope(f"lb-reject|{source.idempotency_key}", at, source.player_id, source)
    envelope.score_rejected.CopyFrom(
        leaderboards_pb2.ScoreRejected(
            leaderboard_id=leaderboard_id,
            period=period,
            score=score,
            reason=reason,
            source_event_id=source.event_id,
        )
    )
    return OutputEvent(LEADERBOARD_RANKS, envelope)


def season_id(leaderboard_id: str, period: str) -> str:
    """How a closed period is named to the rewards rules: "arena-weekly:2026-W48"."""
    return f"{leaderboard_id}:{period}"


def prize_awarded(
    *, closed_at: datetime, leaderboard_id: str, period: str, player_id: str, rank: int
) -> OutputEvent:
    """One archived entry's prize; `closed_at` must be the period's end (stable on re-close)."""
    envelope = _envelope(
        f"lb-prize|{leaderboard_id}|{period}|{player_id}", closed_at, player_id, None
    )
    envelope.season_prize_awarded.CopyFrom(
        rewards_pb2.SeasonPrizeAwarded(
            season_id=season_id(leaderboard_id, period), leaderboard_id=leaderboard_id, rank=rank
        )
    )
    return OutputEvent(PRIZE_TOPIC, envelope)
