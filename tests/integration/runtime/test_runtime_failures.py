"""Rejected, poison, garbage and flaky events: each ends where it belongs, nothing dropped."""

from __future__ import annotations

import aiomysql
import pytest
import redis.asyncio as aioredis

from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.runtime import headers
from workers.runtime.worker import RunLimits

from .conftest import MakeWorker
from .runtime_helpers import login, probe_counts, probe_rows, publish, read_all, record_count

pytestmark = pytest.mark.integration

ALL_FAILURE_HEADERS = {
    headers.ORIGINAL_TOPIC,
    headers.ORIGINAL_PARTITION,
    headers.ORIGINAL_OFFSET,
    headers.ORIGINAL_TIMESTAMP,
    headers.ERROR_CLASS,
    headers.ERROR_MESSAGE,
    headers.STACK_DIGEST,
    headers.ATTEMPT,
    headers.FIRST_FAILURE_AT,
    headers.LAST_FAILURE_AT,
    headers.PROCESSOR,
    headers.PROCESSOR_VERSION,
}


async def test_poison_and_garbage_are_dead_lettered_and_the_rest_applied(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    # Given good, rejected and poison events of one player (one partition, one batch) and garbage
    good = [login("p", f"{unique_name}-good{i}") for i in range(3)]
    poison = login("poison-p", f"{unique_name}-poison")
    rejected = login("reject-p", f"{unique_name}-reject")
    await publish(kafka_settings, group.inputs[0], [good[0], poison, good[1], rejected, good[2]])
    await publish(kafka_settings, group.inputs[0], [b"\x08\x96\x01 not an envelope"])

    # When the worker handles them all
    await make_worker().run(RunLimits(max_events=6))

    # Then the good events are applied despite sharing a batch with poison (bisect)
    rows = await probe_rows(mysql_pool, unique_name)
    assert sorted(rows) == sorted(e.idempotency_key for e in good)
    assert await probe_counts(redis_client, unique_name) == {"p": 3}
    # And exactly the poison event and the garbage are dead letters, rejected is not
    dead = await read_all(kafka_settings, group.dead_letter, expected=2)
    assert len(dead) == 2
    by_class = {record.header(headers.ERROR_CLASS): record for record in dead}
    assert set(by_class) == {"PermanentError", "UndecodableEventError"}
    letter = by_class["PermanentError"]
    # With the original key, value and headers, and every failure header
    assert letter.key == b"poison-p"
    assert letter.header("event-type") == "daily_login"
    assert {name for name, _ in letter.headers} >= ALL_FAILURE_HEADERS
    assert letter.header(headers.ORIGINAL_TOPIC) == group.inputs[0].name
    assert letter.header(headers.ATTEMPT) == "1"
    assert letter.header(headers.PROCESSOR) == "probe"
    assert len(letter.header(headers.STACK_DIGEST) or "") == 12
    assert poison.event_id in (letter.header(headers.ERROR_MESSAGE) or "")


async def test_flaky_event_recovers_in_the_last_tier(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    # Given an event that fails twice, then succeeds
    recovers = login("flaky-2-a", f"{unique_name}-recovers")
    await publish(kafka_settings, group.inputs[0], [recovers])

    # When the worker runs it through input (fail), tier 1 (fail) and tier 2 (success)
    worker = make_worker()
    await worker.run(RunLimits(max_events=3))

    # Then it is applied once, and each tier holds one copy with its attempt and due time
    assert set(await probe_rows(mysql_pool, unique_name)) == {recovers.idempotency_key}
    assert await probe_counts(redis_client, unique_name) == {"flaky-2-a": 1}
    for tier, attempt in zip(group.retry_tiers, ("1", "2"), strict=True):
        (copy,) = await read_all(kafka_settings, tier.topic, expected=1)
        assert copy.key == b"flaky-2-a"
        assert copy.header(headers.ATTEMPT) == attempt
        wait_ms = int(copy.header(headers.DUE_AT) or 0) - copy.timestamp_ms
        assert tier.delay_s * 1000 - 100 <= wait_ms <= tier.delay_s * 1000 + 100
        assert copy.header(headers.ORIGINAL_TOPIC) == group.inputs[0].name
    sample = worker.context.metrics.get_sample_value
    assert sample("liveops_retries_total", {"processor": "probe", "tier": "1s"}) == 1
    assert sample("liveops_retries_total", {"processor": "probe", "tier": "2s"}) == 1
    assert sample("liveops_outcomes_total", {"processor": "probe", "outcome": "applied"}) == 1
    assert await record_count(kafka_settings, group.dead_letter) == 0


async def test_event_failing_every_tier_is_dead_lettered(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
) -> None:
    # Given an event that always fails with a transient error
    hopeless = login("flaky-b", f"{unique_name}-hopeless")
    await publish(kafka_settings, group.inputs[0], [hopeless])

    # When the worker runs it through input, tier 1 and tier 2
    worker = make_worker()
    await worker.run(RunLimits(max_events=3))

    # Then it is a dead letter after its third attempt, never applied
    assert await probe_rows(mysql_pool, unique_name) == {}
    (letter,) = await read_all(kafka_settings, group.dead_letter, expected=1)
    assert letter.key == b"flaky-b"
    assert letter.value is not None
    assert letter.header(headers.ATTEMPT) == "3"
    assert letter.header(headers.ERROR_CLASS) == "TransientError"
    assert letter.header(headers.ORIGINAL_TOPIC) == group.inputs[0].name
    first = int(letter.header(headers.FIRST_FAILURE_AT) or 0)
    assert 0 < first < int(letter.header(headers.LAST_FAILURE_AT) or 0)
    labels = {"processor": "probe", "reason_class": "TransientError"}
    assert worker.context.metrics.get_sample_value("liveops_dead_letters_total", labels) == 1


async def test_a_header_without_a_value_neither_crashes_the_worker_nor_is_lost(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
) -> None:
    # Given a good event and a poison one whose producers added a header with a null value
    # (Kafka allows it; some tools and clients send them)
    good = login("p", f"{unique_name}-good")
    poison = login("poison-p", f"{unique_name}-poison")
    await publish(kafka_settings, group.inputs[0], [good, poison], extra_headers=[("x-null", None)])

    # When the worker handles them
    await make_worker().run(RunLimits(max_events=2))

    # Then the good event is applied and the poison one is dead-lettered
    assert await probe_rows(mysql_pool, unique_name) == {good.idempotency_key: "p"}
    (letter,) = await read_all(kafka_settings, group.dead_letter, expected=1)
    # With the null header kept as it came, beside the failure headers
    assert ("x-null", None) in letter.headers
    assert letter.header("x-null") is None
    assert letter.header(headers.ERROR_CLASS) == "PermanentError"
