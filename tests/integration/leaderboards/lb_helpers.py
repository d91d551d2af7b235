"""Helpers of the leaderboards integration tests: a clock, ScoreSubmitted envelopes, a
processor started on a group of the test's own, and the prize events read back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from schemas.codec import decode
from schemas.liveops.v1.envelope_pb2 import Envelope
from schemas.liveops.v1.leaderboards_pb2 import LeaderboardRankChanged
from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.events import PRIZE_TOPIC
from workers.processors.leaderboards.journal import rows_of_entry
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.runtime.processor import Outcome

_counter = itertools.count()

#: Wednesday of ISO week 2026-W48 (Monday 23 to Sunday 29 November).
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    """The processor's clock; tests move it to cross a reset."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


ProcessorFactory = Callable[..., LeaderboardsProcessor]


def submission(
    board_id: str,
    player_id: str,
    score: int,
    received_at: datetime,
    *,
    key: str | None = None,
) -> Envelope:
    """A score submission; `key` (the idempotency key) defaults to a fresh one."""
    event_id = f"ev-{next(_counter):08d}-{board_id}"
    envelope = Envelope(event_id=event_id, idempotency_key=key or event_id, player_id=player_id)
    envelope.received_at.FromDatetime(received_at)
    envelope.score_submitted.leaderboard_id = board_id
    envelope.score_submitted.score = score
    return envelope


def seconds_after(start: datetime, seconds: int) -> datetime:
    return start + timedelta(seconds=seconds)


def rank_change(envelope: Envelope) -> LeaderboardRankChanged:
    assert envelope.WhichOneof("payload") == "leaderboard_rank_changed"
    return envelope.leaderboard_rank_changed


#: The boards' retention. The tests run on fixed dates (NOW, in 2026-W48), and a period's keys
#: expire `retention_days` after its end (EXPIREAT): with the default 30 days, every run after
#: 2026-12-29 would find the keys it just wrote already gone. A century keeps these dates valid.
RETENTION_DAYS = 36_500


def boards_toml(prefix: str, extra: str = "") -> str:
    """Definitions of one test: a weekly best board and one of each other operator."""
    return f"""
version = "test-1"
[[leaderboards]]
retention_days = {RETENTION_DAYS}
id = "{prefix}-arena"
operator = "best"
reset = "weekly"
max_score = 1000000
max_submissions_per_period = 5
archive_top_n = 3
top_thresholds = [3]

[[leaderboards]]
retention_days = {RETENTION_DAYS}
id = "{prefix}-speed"
better = "lower"
operator = "best"
reset = "daily"
min_score = 1
max_score = 100000
award_prizes = false

[[leaderboards]]
retention_days = {RETENTION_DAYS}
id = "{prefix}-points"
operator = "increment"
reset = "monthly"
min_score = 1
max_score = 1000

[[leaderboards]]
retention_days = {RETENTION_DAYS}
id = "{prefix}-debt"
operator = "decrement"
reset = "monthly"
min_score = 1
max_score = 1000

[[leaderboards]]
retention_days = {RETENTION_DAYS}
id = "{prefix}-trophies"
operator = "latest"
max_score = 30000
archive_top_n = 0
{extra}
"""


async def journaled(client: aioredis.Redis, prefix: str) -> int:
    """Submissions held in the journal stream (an entry holds those of one script call)."""
    entries: Any = await client.xrange(keys.journal_key(prefix))
    return sum(len(rows_of_entry(entry_id, fields)) for entry_id, fields in entries)


async def settled(processor: LeaderboardsProcessor, batch: Sequence[Envelope]) -> list[Outcome]:
    """handle(), then before_commit() as the runtime does before it commits the batch: the
    applied submissions are then in MySQL too."""
    outcomes = list(await processor.handle(batch))
    await processor.before_commit()
    return outcomes


def on_group(chosen: ConsumerGroup) -> type[LeaderboardsProcessor]:
    """The processor class, consuming (and closing periods for) `chosen` instead."""

    class OnGroup(LeaderboardsProcessor):
        group: ClassVar[ConsumerGroup] = chosen

    return OnGroup


@contextlib.asynccontextmanager
async def started(processor: LeaderboardsProcessor) -> AsyncIterator[LeaderboardsProcessor]:
    """start() and stop() around a block, as the worker does (the lazy closer's clients)."""
    await processor.start()
    try:
        yield processor
    finally:
        await processor.stop()


async def prizes_of(
    kafka: KafkaSettings, season: str, want: int, *, timeout_s: float = 20.0
) -> list[Envelope]:
    """Read the prize topic from the start until `want` prizes of `season` are seen (or the
    timeout); every one seen by then, in the order read."""
    consumer = AIOKafkaConsumer(
        PRIZE_TOPIC.name,
        **kafka.client_kwargs(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Envelope] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < want and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = decode(record.value)
                    prize = envelope.season_prize_awarded
                    if envelope.HasField("season_prize_awarded") and prize.season_id == season:
                        found.append(envelope)
    finally:
        await consumer.stop()
    return found


def ranked(prizes: Sequence[Envelope]) -> list[tuple[str, int]]:
    """(player, rank) of prize events, best rank first."""
    pairs = [(e.player_id, e.season_prize_awarded.rank) for e in prizes]
    return sorted(pairs, key=lambda pair: pair[1])
