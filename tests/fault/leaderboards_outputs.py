"""The leaderboards' outputs under fault: every rank change and rejection published, ids stable.

What a run must publish on the ranks topic is exact once its submissions are applied:
- one ScoreRejected per refused submission of the plan (out of range), whichever copy of it
  was refused (its `source_event_id` names that copy);
- the LeaderboardRankChanged events of the application order the script really followed,
  which MySQL's journal records (journal_ms, journal_seq): replaying the journal's sort
  values on each board gives every submission's ranks before and after, as Redis answered
  them, and `rank_changes` (the processor's own rules) the events they make.
A killed worker may have published some of a batch's outputs and not others; the redelivery
publishes them again. So an id may appear more than once, but every copy must be the same
bytes, and no expected id may be missing. Only valid while Redis kept the boards (a flush
restarts them from empty, which the journal does not record).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC

from schemas.codec import decode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import LEADERBOARD_RANKS
from topics.settings import KafkaSettings
from workers.processors.leaderboards import events
from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.ranks import rank_changes
from workers.processors.leaderboards.rules import instant_of
from workers.processors.leaderboards.scoring import ScoreResult, ScoreStatus, Submission

from .broker import read_all
from .checker import query
from .events import EventPlan
from .leaderboards_check import PERIOD, LeaderboardsReader

#: (idempotency key, board, player, sort value after it), in application order.
Applied = tuple[str, str, str, int]
#: Output event id -> the envelope, and for a rejection the event ids its source's copies carry.
Expected = dict[str, tuple[Envelope, frozenset[str]]]


async def output_problems(
    reader: LeaderboardsReader, kafka: KafkaSettings, plan: EventPlan
) -> list[str]:
    """Every way the ranks topic differs from what the run must have published."""
    rows = await asyncio.to_thread(
        query,
        reader.target,
        "SELECT idempotency_key, leaderboard_id, player_id, sort_value "
        "FROM leaderboard_submissions WHERE idempotency_key LIKE %s "
        "ORDER BY journal_ms, journal_seq",
        (reader.like,),
    )
    applied = [(str(k), str(b), str(p), int(str(v))) for k, b, p, v in rows]
    expected = {**expected_rank_changes(reader, plan, applied), **expected_rejections(reader, plan)}
    ours = {board.id for board in reader.boards.definitions}
    published: dict[str, list[bytes]] = {}
    for record in await read_all(kafka, LEADERBOARD_RANKS, expected=len(expected)):
        envelope = decode(record.value or b"")
        payload = envelope.WhichOneof("payload")
        if payload is not None and getattr(envelope, payload).leaderboard_id in ours:
            published.setdefault(envelope.event_id, []).append(record.value or b"")
    return discrepancies(expected, published)


def discrepancies(expected: Expected, published: dict[str, list[bytes]]) -> list[str]:
    problems: list[str] = []
    missing = sorted(set(expected) - set(published))
    unexpected = sorted(set(published) - set(expected))
    if missing:
        kinds = sorted({str(expected[i][0].WhichOneof("payload")) for i in missing})
        problems.append(f"{len(missing)} outputs never published ({kinds}), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} outputs not expected, e.g. {unexpected[:3]}")
    differing = sorted(
        event_id
        for event_id, copies in published.items()
        if event_id in expected
        and (len(set(copies)) > 1 or not _same(*expected[event_id], decode(copies[0])))
    )
    if differing:
        problems.append(f"{len(differing)} output ids with another content, e.g. {differing[:3]}")
    return problems


def _same(wanted: Envelope, sources: frozenset[str], got: Envelope) -> bool:
    """Equal; a rejection may name any copy of its source (`sources`) as the refused one."""
    if not sources:
        return got == wanted
    if got.score_rejected.source_event_id not in sources:
        return False
    normalized = Envelope()
    normalized.CopyFrom(got)
    normalized.score_rejected.source_event_id = wanted.score_rejected.source_event_id
    return normalized == wanted


def expected_rejections(reader: LeaderboardsReader, plan: EventPlan) -> Expected:
    accepted = reader.boards.accepted(plan)
    out: Expected = {}
    for key, source in plan.sources.items():
        if key in accepted:
            continue
        output = events.score_rejected(
            source,
            at=source.received_at.ToDatetime(tzinfo=UTC),
            leaderboard_id=source.score_submitted.leaderboard_id,
            period=PERIOD,
            score=source.score_submitted.score,
            reason=events.RejectionReason.SCORE_REJECTION_REASON_OUT_OF_RANGE,
        )
        out[output.envelope.event_id] = (output.envelope, frozenset(plan.event_ids[key]))
    return out


def expected_rank_changes(
    reader: LeaderboardsReader, plan: EventPlan, applied: Sequence[Applied]
) -> Expected:
    definitions = reader.boards.definitions
    standings: dict[str, dict[str, int]] = {board.id: {} for board in definitions}
    out: Expected = {}
    for key, board_id, player, after in applied:
        board = definitions.get(board_id)
        assert board is not None, board_id
        standing = standings[board_id]
        if standing.get(player) == after:
            continue  # a best score not beaten: nothing moved, no rank was read
        old_rank = _rank(board, standing, player)
        standing[player] = after
        new_rank = _rank(board, standing, player)
        leader, leader_rank, leader_value = None, None, None
        if new_rank == 1 and old_rank != 1 and len(standing) > 1:
            leader = _at(board, standing, 2)
            leader_rank, leader_value = 2, standing[leader]
        source = plan.sources[key]
        received = instant_of(
            source.received_at.seconds * 1_000_000 + source.received_at.nanos // 1000
        )
        score = source.score_submitted.score
        sub = Submission(
            key, source.event_id, player, board, period_at(board, received), score, received
        )
        result = ScoreResult(
            ScoreStatus.APPLIED, old_rank, new_rank, after, leader, leader_rank, leader_value
        )
        for output in rank_changes(source, sub, result):
            out[output.envelope.event_id] = (output.envelope, frozenset())
    return out


def _order(board: LeaderboardDefinition, standing: dict[str, int]) -> list[str]:
    """Best first, as Redis ranks: by sort value, ties by member bytes, reversed for ZREVRANK."""
    ranked = sorted(standing, key=lambda p: (standing[p], p.encode()))
    return ranked[::-1] if board.better == "higher" else ranked


def _rank(board: LeaderboardDefinition, standing: dict[str, int], player: str) -> int | None:
    if player not in standing:
        return None
    return _order(board, standing).index(player) + 1


def _at(board: LeaderboardDefinition, standing: dict[str, int], rank: int) -> str:
    return _order(board, standing)[rank - 1]
