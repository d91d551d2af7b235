"""`liveops tail` against the real embedded broker: decoded events and garbage side by side."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer

from schemas.codec import encode, headers_for, new_event_id
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import PLAYER_ACTIONS, Topic
from topics.settings import KafkaSettings
from topics.tail import TailOptions, TopicNotOnClusterError, tail_topic

pytestmark = pytest.mark.integration

#: Upper bound on waiting for records already on the broker; never reached when all is well.
SAFETY_IDLE_S = 20.0


async def our_topic(settings: KafkaSettings, unique_name: str) -> Topic:
    """A copy of player.actions.v1 under the test's own name, created on the broker."""
    topic = replace(PLAYER_ACTIONS, name=f"{unique_name}.{PLAYER_ACTIONS.name}", partitions=3)
    await apply_plan(settings, (topic,))
    return topic


def daily_login(player_id: str, streak_days: int) -> Envelope:
    event_id = new_event_id()
    envelope = Envelope(event_id=event_id, idempotency_key=event_id, player_id=player_id)
    envelope.daily_login.streak_days = streak_days
    envelope.trace.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    return envelope


async def test_tail_decodes_events_and_reports_garbage_by_offset(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given two events, garbage bytes and a tombstone on one partition
    topic = await our_topic(kafka_settings, unique_name)
    events = [daily_login(f"{unique_name}-p1", 1), daily_login(f"{unique_name}-p1", 2)]
    producer = AIOKafkaProducer(
        **kafka_settings.client_kwargs(), enable_idempotence=kafka_settings.enable_idempotence
    )
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                topic.name,
                encode(event),
                key=event.player_id.encode(),
                partition=1,
                headers=headers_for(event),
            )
        await producer.send_and_wait(topic.name, b"\xff\x00garbage", key=b"bad", partition=1)
        await producer.send_and_wait(topic.name, None, key=b"gone", partition=1)
    finally:
        await producer.stop()

    # When the topic is tailed from the beginning as JSON lines
    lines: list[str] = []
    options = TailOptions(
        from_beginning=True, max_records=4, idle_timeout_s=SAFETY_IDLE_S, as_json=True
    )
    shown = await tail_topic(kafka_settings, topic, options, lines.append)

    # Then each record appears in order, decoded or with its error and offset
    assert shown == 4
    docs = [json.loads(line) for line in lines]
    assert [(d["partition"], d["offset"]) for d in docs] == [(1, 0), (1, 1), (1, 2), (1, 3)]
    for doc, event in zip(docs[:2], events, strict=True):
        assert doc["key"] == event.player_id
        assert doc["headers"]["event-type"] == "daily_login"
        assert doc["headers"]["traceparent"] == event.trace.traceparent
        assert doc["value"]["event_id"] == event.event_id
        assert doc["value"]["daily_login"] == {"streak_days": event.daily_login.streak_days}
    assert docs[2]["key"] == "bad"
    assert docs[2]["error"].startswith("not a liveops.v1.Envelope")
    assert docs[3]["error"] == "record has no value (tombstone)"


async def test_tail_starts_at_the_end_unless_asked_for_the_beginning(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    topic = await our_topic(kafka_settings, unique_name)
    producer = AIOKafkaProducer(
        **kafka_settings.client_kwargs(), enable_idempotence=kafka_settings.enable_idempotence
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, encode(daily_login(unique_name, 1)), partition=0)
    finally:
        await producer.stop()

    lines: list[str] = []
    # An idle timeout is the only way to show that nothing old is replayed.
    shown = await tail_topic(kafka_settings, topic, TailOptions(idle_timeout_s=1.0), lines.append)

    assert (shown, lines) == (0, [])


async def test_tail_of_a_catalog_topic_missing_on_the_cluster_says_so(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    topic = replace(PLAYER_ACTIONS, name=f"{unique_name}.never.created.v1")

    with pytest.raises(TopicNotOnClusterError, match=r"liveops topics apply"):
        await tail_topic(kafka_settings, topic, TailOptions(max_records=1), lambda _: None)
