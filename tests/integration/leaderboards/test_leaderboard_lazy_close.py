"""The lazy closer on the real services: prizes published again after a failed publish, a
period held open until the group consumed past its end, missed periods closed on start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomysql
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from schemas.codec import encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import DAY_MS, ConsumerGroup, Topic
from topics.devbroker import EmbeddedBroker, free_port
from topics.settings import KafkaSettings
from workers.processors.leaderboards import keys, store
from workers.processors.leaderboards.definitions import Definitions, parse_definitions
from workers.processors.leaderboards.events import PRIZE_TOPIC, season_id
from workers.processors.leaderboards.periods import period_at, period_named, previous_period
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.settings import LeaderboardSettings

from .lb_helpers import (
    Clock,
    ProcessorFactory,
    prizes_of,
    ranked,
    seconds_after,
    settled,
    started,
    submission,
)

pytestmark = pytest.mark.integration
DEADLINE_S = 30.0


def private_group(unique_name: str, retry_delays_s: tuple[int, ...] = ()) -> ConsumerGroup:
    source = Topic(f"{unique_name}.scores", 3, DAY_MS, "leaderboards-tests", "Test input.")
    return ConsumerGroup(
        f"{unique_name}-lb", (source,), retry_delays_s=retry_delays_s, retry_partitions=2
    )


def counted(registry: CollectorRegistry, name: str, board_id: str) -> float:
    value = registry.get_sample_value(f"liveops_{name}_total", {"leaderboard": board_id})
    return value or 0.0


def weeks_before(definitions: Definitions, board_id: str, now: datetime, n: int) -> list[str]:
    """The keys of the `n` weeks before the one of `now`, oldest first. Relative to the real
    clock: a past week's keys expire 30 days after its end (as the script sets them)."""
    board = definitions.get(board_id)
    assert board is not None
    period = period_at(board, now)
    keys_before = []
    for _ in range(n):
        period = previous_period(board, period)
        keys_before.append(period.key)
    return keys_before[::-1]


def during(definitions: Definitions, board_id: str, week: str) -> datetime:
    """An instant inside `week`."""
    board = definitions.get(board_id)
    assert board is not None
    return period_named(board, week).starts_at + timedelta(hours=1)


async def test_prizes_are_published_again_after_a_failed_first_publish(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
    clock: Clock,
) -> None:
    # Given a worker on a broker of its own,
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=3000)
    arena = f"{board_prefix}-arena"
    clock.now = datetime.now(UTC)
    (week,) = weeks_before(definitions, arena, clock.now, 1)
    registry = CollectorRegistry()
    settings = LeaderboardSettings(close_grace_s=0, close_wait_for_group=False)
    processor = make_processor(settings=settings, kafka=kafka, registry=registry)
    try:
        await apply_plan(kafka, (PRIZE_TOPIC,))
        async with started(processor):
            # When the broker is down as a batch with three (late) scores of last week closes it,
            broker.stop()
            at = during(definitions, arena, week)
            scores = [("ann", 30), ("bob", 10), ("cid", 20)]
            await settled(
                processor,
                [submission(arena, p, s, seconds_after(at, i)) for i, (p, s) in enumerate(scores)],
            )

            # Then the week is archived, but not announced: its prizes were not acknowledged.
            assert await store.is_archived(mysql_pool, arena, week)
            marker = keys.announced_key(unique_name, arena, week)
            assert not await redis_client.exists(marker)
            assert counted(registry, "leaderboard_prize_publish_failures", arena) == 1
            assert counted(registry, "leaderboard_prizes_published", arena) == 0

            # When the broker is back, the next batches publish them.
            broker.start()
            await apply_plan(kafka, (PRIZE_TOPIC,))  # the embedded broker forgot everything
            deadline = time.monotonic() + DEADLINE_S
            while not await redis_client.exists(marker) and time.monotonic() < deadline:
                await settled(processor, [])
            assert await redis_client.exists(marker)

        # Then the prizes are out, as the archive ranks them.
        prizes = await prizes_of(kafka, season_id(arena, week), 3)
        assert ranked(prizes) == [("ann", 1), ("cid", 2), ("bob", 3)]
        assert counted(registry, "leaderboard_prizes_published", arena) == 3
    finally:
        broker.stop()


async def produce(
    kafka: KafkaSettings, topic: Topic, partition: int, envelopes: Sequence[Envelope]
) -> list[int]:
    """Send to one partition; the offsets the records got."""
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(topic.name, encode(e), partition=partition)
            for e in envelopes
        ]
    finally:
        await producer.stop()
    return [metadata.offset for metadata in sent]


async def commit(
    kafka: KafkaSettings,
    group: ConsumerGroup,
    offsets: dict[int, int],
    *,
    topic: Topic | None = None,
    group_id: str | None = None,
) -> None:
    """Commit next offsets (partition -> offset) of `topic` (the group's input) for
    `group_id` (the group's), as its workers would."""
    topic_name = (topic or group.inputs[0]).name
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(), group_id=group_id or group.name, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic_name, p) for p in offsets])
        await consumer.commit({TopicPartition(topic_name, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()


def event_board(board_id: str, ends_at: datetime) -> Definitions:
    """One board that never resets and ends at `ends_at` (a live event's end)."""
    end = ends_at.isoformat().replace("+00:00", "Z")
    return parse_definitions(
        f"""
version = "test-event"
[[leaderboards]]
id = "{board_id}"
max_score = 1000
archive_top_n = 3
ends_at = {end}
"""
    )


async def test_a_period_closes_only_once_the_group_consumed_past_its_end(
    make_processor: ProcessorFactory,
    kafka_settings: KafkaSettings,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    board_prefix: str,
    clock: Clock,
) -> None:
    # Given an event whose submissions wait in the group's input: one on partition 0 and one
    # on partition 1 received before the end, one more on partition 0 after it; 2 is empty.
    group = private_group(unique_name)
    await apply_plan(kafka_settings, group.inputs)
    board_id = f"{board_prefix}-event"
    before = [
        submission(board_id, "ann", 30, datetime.now(UTC)),
        submission(board_id, "bob", 20, datetime.now(UTC)),
    ]
    (ann_at,) = await produce(kafka_settings, group.inputs[0], 0, before[:1])
    (bob_at,) = await produce(kafka_settings, group.inputs[0], 1, before[1:])
    end = datetime.now(UTC) + timedelta(milliseconds=200)
    await asyncio.sleep(0.5)
    await produce(kafka_settings, group.inputs[0], 0, [submission(board_id, "cid", 1, end)])
    clock.now = datetime.now(UTC)
    settings = LeaderboardSettings(close_grace_s=0, close_check_interval_s=0)
    processor = make_processor(
        board_definitions=event_board(board_id, end),
        settings=settings,
        kafka=kafka_settings,
        group=group,
    )
    async with started(processor):
        # When the worker scores the two but has not committed them yet, the event stays open.
        await settled(processor, before)
        assert not await store.is_archived(mysql_pool, board_id, "all")

        # Nor when partition 0 is committed past the end but partition 1 (nothing after the
        # end there) not up to its end.
        await commit(kafka_settings, group, {0: ann_at + 1})
        await settled(processor, [])
        assert not await store.is_archived(mysql_pool, board_id, "all")

        # Then, once every partition is committed past the end, it closes with both scores.
        await commit(kafka_settings, group, {1: bob_at + 1})
        await settled(processor, [])
    archive = await store.archived_entries(mysql_pool, board_id, "all")
    assert archive is not None
    assert [(e.player_id, e.final_rank) for e in archive] == [("ann", 1), ("bob", 2)]
    prizes = await prizes_of(kafka_settings, season_id(board_id, "all"), 2)
    assert ranked(prizes) == [("ann", 1), ("bob", 2)]


@dataclass(frozen=True)
class RetriedEvent:
    """An event the group consumed past the end of on its input, with `bob`'s submission,
    received before the end, waiting in its retry tier at `bob_at`."""

    group: ConsumerGroup
    tier: Topic
    board_id: str
    end: datetime
    ann: Envelope
    bob: Envelope
    bob_at: int


async def retried_event(kafka: KafkaSettings, unique_name: str, board_prefix: str) -> RetriedEvent:
    group = private_group(unique_name, retry_delays_s=(10,))
    (tier,) = group.retry_tiers
    await apply_plan(kafka, (*group.inputs, tier.topic))
    board_id = f"{board_prefix}-event"
    ann = submission(board_id, "ann", 30, datetime.now(UTC))
    (ann_at,) = await produce(kafka, group.inputs[0], 0, [ann])
    bob = submission(board_id, "bob", 40, datetime.now(UTC))
    (bob_at,) = await produce(kafka, tier.topic, 1, [bob])
    end = datetime.now(UTC) + timedelta(milliseconds=200)
    await asyncio.sleep(0.5)
    await commit(kafka, group, {0: ann_at + 1})
    return RetriedEvent(group, tier.topic, board_id, end, ann, bob, bob_at)


def closing_at_once(
    make_processor: ProcessorFactory,
    kafka: KafkaSettings,
    event: RetriedEvent,
    *,
    wait_for_retries: bool = True,
) -> LeaderboardsProcessor:
    """A processor of the event's board that closes it as soon as the checks allow."""
    settings = LeaderboardSettings(
        close_grace_s=0, close_check_interval_s=0, close_wait_for_retries=wait_for_retries
    )
    return make_processor(
        board_definitions=event_board(event.board_id, event.end),
        settings=settings,
        kafka=kafka,
        group=event.group,
    )


async def test_a_period_waits_for_the_retry_tier_to_drain(
    make_processor: ProcessorFactory,
    kafka_settings: KafkaSettings,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    board_prefix: str,
    clock: Clock,
) -> None:
    # Given an event whose input the group consumed past its end, and a submission received
    # before the end that failed once and waits in the retry tier:
    event = await retried_event(kafka_settings, unique_name, board_prefix)
    clock.now = datetime.now(UTC)
    processor = closing_at_once(make_processor, kafka_settings, event)
    async with started(processor):
        # When the worker has scored the input but not the retried one, the event stays open.
        await settled(processor, [event.ann])
        assert not await store.is_archived(mysql_pool, event.board_id, "all")

        # Then, once the retry group has scored and committed it, it closes with both.
        await settled(processor, [event.bob])
        retries = event.group.retry_group
        await commit(
            kafka_settings, event.group, {1: event.bob_at + 1}, topic=event.tier, group_id=retries
        )
        await settled(processor, [])
    archive = await store.archived_entries(mysql_pool, event.board_id, "all")
    assert archive is not None
    assert [(e.player_id, e.final_rank) for e in archive] == [("bob", 1), ("ann", 2)]


async def test_without_the_retry_check_a_period_closes_once_the_input_is_consumed(
    make_processor: ProcessorFactory,
    kafka_settings: KafkaSettings,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    board_prefix: str,
    clock: Clock,
) -> None:
    event = await retried_event(kafka_settings, unique_name, board_prefix)
    clock.now = datetime.now(UTC)
    processor = closing_at_once(make_processor, kafka_settings, event, wait_for_retries=False)
    async with started(processor):
        await settled(processor, [event.ann])
    archive = await store.archived_entries(mysql_pool, event.board_id, "all")
    assert archive is not None and [e.player_id for e in archive] == ["ann"]


async def test_two_missed_weeks_are_closed_when_the_worker_starts(
    make_processor: ProcessorFactory,
    kafka_settings: KafkaSettings,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
    clock: Clock,
) -> None:
    # Given scores in the two weeks before last that no worker closed (down over the resets),
    # and in last week; none the week before those,
    arena = f"{board_prefix}-arena"
    clock.now = datetime.now(UTC)
    empty, *weeks = weeks_before(definitions, arena, clock.now, 4)
    scoring = make_processor()
    for n, week in enumerate(weeks):
        at = during(definitions, arena, week)
        await settled(
            scoring, [submission(arena, "ann", 10 + n, at), submission(arena, "bob", 20 - n, at)]
        )
    # When a worker starts (its group has nothing left to consume),
    group = private_group(unique_name)
    await apply_plan(kafka_settings, group.inputs)
    registry = CollectorRegistry()
    settings = LeaderboardSettings(close_grace_s=0, close_check_interval_s=0)
    worker = make_processor(settings=settings, kafka=kafka_settings, group=group, registry=registry)
    async with started(worker):
        await settled(worker, [submission(arena, "cid", 1, clock.now)])

    # Then the three weeks are archived and their prizes announced; the empty one is not.
    for n, week in enumerate(weeks):
        archive = await store.archived_entries(mysql_pool, arena, week)
        assert archive is not None
        assert sorted((e.player_id, e.score) for e in archive) == [("ann", 10 + n), ("bob", 20 - n)]
        assert await redis_client.exists(keys.announced_key(unique_name, arena, week))
        assert len(await prizes_of(kafka_settings, season_id(arena, week), 2)) == 2
    assert not await store.is_archived(mysql_pool, arena, empty)
    assert counted(registry, "leaderboard_periods_closed", arena) == 3
