"""The publisher against a real broker: acks, keys, headers, batches, readiness and outages."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from producers.errors import PublishError
from producers.gateway import create_app
from producers.gateway.idempotency import IdempotencyStore
from producers.publisher import Publisher
from producers.settings import PublisherSettings
from schemas.codec import HEADER_EVENT_TYPE, decode, new_event_id
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import PLAYER_ACTIONS
from topics.devbroker import EmbeddedBroker, free_port
from topics.settings import KafkaSettings

from .harness import GATEWAY_SETTINGS, TopicProbe, bearer, level_completed

pytestmark = pytest.mark.integration


def login(player_id: str, streak_days: int = 1) -> Envelope:
    envelope = Envelope(event_id=new_event_id(), player_id=player_id)
    envelope.idempotency_key = envelope.event_id
    envelope.daily_login.streak_days = streak_days
    return envelope


def freeze(pid: int, timeout_s: float = 5.0) -> None:
    """SIGSTOP the broker and wait until the kernel reports it stopped (state T)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout_s
    stat = Path(f"/proc/{pid}/stat")
    # The state follows the parenthesised command name: "pid (comm) S ...".
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} did not stop")
        time.sleep(0.01)


@pytest.fixture
def private_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, which the test may stop and start again."""
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    yield broker
    broker.stop()


async def test_publish_returns_where_the_record_landed(
    kafka_settings: KafkaSettings, probe: TopicProbe, unique_name: str
) -> None:
    since = await probe.end_offsets()
    envelope = login(unique_name)
    async with Publisher(kafka_settings, PublisherSettings(), CollectorRegistry()) as publisher:
        delivery = await publisher.publish(PLAYER_ACTIONS, envelope)

    (record,) = await probe.records_of(PLAYER_ACTIONS, unique_name, since)
    assert (record.partition, record.offset) == (delivery.partition, delivery.offset)
    assert decode(record.value) == envelope
    assert record.headers[HEADER_EVENT_TYPE] == b"daily_login"


async def test_publish_many_keeps_one_players_order(
    kafka_settings: KafkaSettings, probe: TopicProbe, unique_name: str
) -> None:
    since = await probe.end_offsets()
    batch = [(PLAYER_ACTIONS, login(unique_name, day)) for day in range(1, 21)]
    async with Publisher(kafka_settings, PublisherSettings(), CollectorRegistry()) as publisher:
        deliveries = await publisher.publish_many(batch)

    assert len({d.partition for d in deliveries}) == 1
    assert [d.offset for d in deliveries] == sorted(d.offset for d in deliveries)
    records = await probe.records_of(PLAYER_ACTIONS, unique_name, since)
    assert [decode(r.value).daily_login.streak_days for r in records] == list(range(1, 21))


async def test_publish_raw_keeps_bytes_and_headers(
    kafka_settings: KafkaSettings, probe: TopicProbe, unique_name: str
) -> None:
    since = await probe.end_offsets()
    async with Publisher(kafka_settings, PublisherSettings(), CollectorRegistry()) as publisher:
        await publisher.publish_raw(
            PLAYER_ACTIONS.name, unique_name.encode(), b"\x00not-protobuf", [("reason", b"why")]
        )

    (record,) = await probe.records_of(PLAYER_ACTIONS, unique_name, since)
    assert record.value == b"\x00not-protobuf"
    assert record.headers == {"reason": b"why"}


async def test_ping_says_whether_the_cluster_answers(private_broker: EmbeddedBroker) -> None:
    settings = KafkaSettings(bootstrap_servers=private_broker.bootstrap_servers)
    publisher = Publisher(settings, PublisherSettings(ping_timeout_s=0.5), CollectorRegistry())
    assert await publisher.ping() is False  # not started
    assert private_broker.process is not None
    async with publisher:
        assert await publisher.ping() is True
        freeze(private_broker.process.pid)  # no metadata answer while frozen
        try:
            assert await publisher.ping() is False
        finally:
            os.kill(private_broker.process.pid, signal.SIGCONT)
        assert await publisher.ping() is True


async def test_start_fails_clearly_when_no_broker_listens() -> None:
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    publisher = Publisher(settings, PublisherSettings(), CollectorRegistry())
    with pytest.raises(PublishError, match="cannot reach the brokers"):
        await publisher.start()


@pytest.mark.fault
async def test_an_outage_is_a_503_and_the_retry_publishes_with_the_same_event_id(
    private_broker: EmbeddedBroker, redis_client: aioredis.Redis, unique_name: str
) -> None:
    # Given a gateway on a broker that is about to freeze (SIGSTOP: it keeps its topics)
    kafka = KafkaSettings(
        bootstrap_servers=private_broker.bootstrap_servers, request_timeout_ms=1000
    )
    await apply_plan(kafka, [PLAYER_ACTIONS])
    registry = CollectorRegistry()
    headers = {**bearer(unique_name), "Idempotency-Key": "during-outage"}
    store = IdempotencyStore(redis_client, unique_name, ttl_s=60, pending_ttl_s=60)
    stored_key = store.key_for(unique_name, "during-outage")
    assert private_broker.process is not None
    pid = private_broker.process.pid
    publisher = Publisher(kafka, PublisherSettings(retry_budget_s=1.0), registry)
    app = create_app(GATEWAY_SETTINGS, publisher, redis_client, registry, key_prefix=unique_name)
    async with publisher, TestClient(TestServer(app)) as client:
        freeze(pid)
        try:
            # When a request arrives during the outage
            failed = await client.post("/v1/events", json=level_completed(), headers=headers)
        finally:
            os.kill(pid, signal.SIGCONT)

        # Then it is a 503 with Retry-After, the key remembers the failed attempt's event id...
        assert failed.status == 503
        assert int(failed.headers["Retry-After"]) > 0
        assert await redis_client.hget(stored_key, "state") == b"failed"
        stored_event_id = await redis_client.hget(stored_key, "event_id")
        assert isinstance(stored_event_id, bytes)
        first_event_id = stored_event_id.decode()

        # ...and the client's retry after the outage publishes it, with that event id
        retried = await client.post("/v1/events", json=level_completed(), headers=headers)
        assert retried.status == 202
        assert (await retried.json())["event_id"] == first_event_id

    probe_consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    await probe_consumer.start()
    try:
        records = await TopicProbe(probe_consumer).records_of(PLAYER_ACTIONS, unique_name, {})
    finally:
        await probe_consumer.stop()
    # At least once: the frozen attempt, if the broker stored it late, carries the same ids.
    assert records
    assert {decode(r.value).event_id for r in records} == {first_event_id}
