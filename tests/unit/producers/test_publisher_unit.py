"""The publisher's retry, back-pressure and validation rules, against a fake aiokafka producer."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
)
from prometheus_client import CollectorRegistry

from producers.errors import PublisherNotStartedError, PublishError, PublishRejectedError
from producers.publisher import Delivery, Publisher, is_retriable
from producers.settings import PublisherSettings
from schemas.codec import HEADER_EVENT_TYPE, decode
from schemas.errors import InvalidEnvelopeError
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import LEADERBOARD_SCORES, PLAYER_ACTIONS
from topics.settings import KafkaSettings


class RecordMetadata(NamedTuple):
    partition: int
    offset: int


class FakeProducer:
    """Records sends; fails the next sends with `failures`; `hold` keeps acks back."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self.failures: list[Exception] = []
        self.always_fail: Exception | None = None
        self.hold = False
        self.held: list[asyncio.Future[RecordMetadata]] = []
        self.started = self.stopped = False
        #: Set on every send, so tests wait for sends instead of sleeping.
        self.sent_more = asyncio.Event()

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, key, value, headers or []))
        self.sent_more.set()
        if self.always_fail is not None:
            future.set_exception(self.always_fail)
        elif self.failures:
            future.set_exception(self.failures.pop(0))
        elif self.hold:
            self.held.append(future)
        else:
            future.set_result(RecordMetadata(0, len(self.sent) - 1))
        return future


def make_envelope(player_id: str = "p-1", key: str = "k-1") -> Envelope:
    envelope = Envelope(event_id="01E", idempotency_key=key, player_id=player_id)
    envelope.level_completed.level_id = "1-1"
    return envelope


class Harness(NamedTuple):
    publisher: Publisher
    producer: FakeProducer
    registry: CollectorRegistry


async def started(
    settings: PublisherSettings | None = None, kafka: KafkaSettings | None = None
) -> Harness:
    made: list[FakeProducer] = []

    def factory(**kwargs: Any) -> FakeProducer:
        made.append(FakeProducer(**kwargs))
        return made[-1]

    registry = CollectorRegistry()
    publisher = Publisher(
        kafka or KafkaSettings(),
        settings or PublisherSettings(),
        registry,
        producer_factory=factory,
    )
    await publisher.start()
    return Harness(publisher, made[0], registry)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_publish_sends_player_key_encoded_value_and_headers() -> None:
    h = await started()
    envelope = make_envelope()

    delivery = await h.publisher.publish(PLAYER_ACTIONS, envelope)

    assert delivery == Delivery(0, 0)
    topic, key, value, headers = h.producer.sent[0]
    assert (topic, key) == (PLAYER_ACTIONS.name, b"p-1")
    assert decode(value) == envelope
    assert (HEADER_EVENT_TYPE, b"level_completed") in headers
    assert sample(h.registry, "liveops_publisher_published_total", topic=PLAYER_ACTIONS.name) == 1


async def test_producer_follows_kafka_and_publisher_settings() -> None:
    h = await started(
        PublisherSettings(acks="1", linger_ms=7), KafkaSettings(enable_idempotence=True)
    )
    assert h.producer.kwargs["enable_idempotence"] is True
    assert h.producer.kwargs["acks"] == 1
    assert h.producer.kwargs["linger_ms"] == 7
    await h.publisher.stop()
    assert h.producer.stopped


async def test_retriable_errors_are_retried_until_acknowledged() -> None:
    h = await started()
    h.producer.failures = [KafkaConnectionError(), NotLeaderForPartitionError()]

    delivery = await h.publisher.publish(PLAYER_ACTIONS, make_envelope())

    assert len(h.producer.sent) == 3
    assert delivery.offset == 2
    assert sample(h.registry, "liveops_publisher_published_total", topic=PLAYER_ACTIONS.name) == 1


async def test_non_retriable_error_fails_at_once_and_says_so() -> None:
    h = await started()
    h.producer.failures = [MessageSizeTooLargeError()]

    with pytest.raises(PublishRejectedError, match=PLAYER_ACTIONS.name) as caught:
        await h.publisher.publish(PLAYER_ACTIONS, make_envelope())

    assert caught.value.retriable is False
    assert len(h.producer.sent) == 1
    labels = {"topic": PLAYER_ACTIONS.name, "error": "MessageSizeTooLargeError"}
    assert sample(h.registry, "liveops_publisher_failed_total", **labels) == 1


async def test_retries_stop_when_the_budget_is_spent() -> None:
    h = await started(PublisherSettings(retry_budget_s=0.3))
    h.producer.always_fail = KafkaConnectionError()

    with pytest.raises(PublishError, match=PLAYER_ACTIONS.name) as caught:
        await h.publisher.publish(PLAYER_ACTIONS, make_envelope())

    assert caught.value.retriable is True
    assert isinstance(caught.value.__cause__, KafkaConnectionError | TimeoutError)
    assert len(h.producer.sent) > 1
    assert sample(h.registry, "liveops_publisher_in_flight") == 0


def test_a_timeout_counts_as_retriable_whatever_aiokafka_says() -> None:
    assert is_retriable(KafkaTimeoutError())
    assert is_retriable(KafkaConnectionError())
    assert not is_retriable(MessageSizeTooLargeError())
    assert not is_retriable(ValueError())


async def test_callers_wait_when_max_in_flight_records_await_their_ack() -> None:
    h = await started(PublisherSettings(max_in_flight=2))
    h.producer.hold = True
    tasks = [
        asyncio.create_task(h.publisher.publish(PLAYER_ACTIONS, make_envelope(f"p-{i}")))
        for i in range(3)
    ]
    await _until(h.producer, lambda: len(h.producer.held) == 2)
    for _ in range(10):  # give the third caller every chance to (wrongly) get through
        await asyncio.sleep(0)
    assert len(h.producer.sent) == 2
    assert sample(h.registry, "liveops_publisher_in_flight") == 2

    h.producer.held[0].set_result(RecordMetadata(3, 0))
    await _until(h.producer, lambda: len(h.producer.held) == 3)
    for index, future in enumerate(h.producer.held[1:], start=1):
        future.set_result(RecordMetadata(3, index))

    deliveries = await asyncio.gather(*tasks)
    assert [d.offset for d in deliveries] == [0, 1, 2]
    assert sample(h.registry, "liveops_publisher_in_flight") == 0


async def test_invalid_envelopes_are_never_sent() -> None:
    h = await started()
    with pytest.raises(InvalidEnvelopeError, match="player_id"):
        await h.publisher.publish(PLAYER_ACTIONS, make_envelope(player_id=""))
    with pytest.raises(InvalidEnvelopeError, match=LEADERBOARD_SCORES.name):
        await h.publisher.publish(LEADERBOARD_SCORES, make_envelope())
    assert h.producer.sent == []


async def test_publish_many_sends_in_order_and_checks_every_envelope_first() -> None:
    h = await started()
    batch = [(PLAYER_ACTIONS, make_envelope("p-1", f"k-{i}")) for i in range(3)]

    deliveries = await h.publisher.publish_many(batch)

    assert [d.offset for d in deliveries] == [0, 1, 2]
    assert [decode(sent[2]).idempotency_key for sent in h.producer.sent] == ["k-0", "k-1", "k-2"]
    with pytest.raises(InvalidEnvelopeError):
        await h.publisher.publish_many([*batch, (PLAYER_ACTIONS, make_envelope(player_id=""))])
    assert len(h.producer.sent) == 3


async def test_publish_many_raises_after_awaiting_the_rest() -> None:
    h = await started()
    h.producer.failures = [MessageSizeTooLargeError()]
    batch = [(PLAYER_ACTIONS, make_envelope("p-1", f"k-{i}")) for i in range(3)]

    with pytest.raises(PublishRejectedError):
        await h.publisher.publish_many(batch)

    assert sample(h.registry, "liveops_publisher_published_total", topic=PLAYER_ACTIONS.name) == 2


async def test_publish_raw_keeps_bytes_and_accepts_a_topic_name() -> None:
    h = await started()
    await h.publisher.publish_raw("liveops.rewards.dlq", b"k", b"\x00raw", [("reason", b"x")])
    assert h.producer.sent == [("liveops.rewards.dlq", b"k", b"\x00raw", [("reason", b"x")])]
    with pytest.raises(ValueError, match="key or a value"):
        await h.publisher.publish_raw(PLAYER_ACTIONS, None, None)


async def test_publishing_outside_start_stop_is_refused() -> None:
    publisher = Publisher(KafkaSettings(), PublisherSettings(), CollectorRegistry())
    with pytest.raises(PublisherNotStartedError):
        await publisher.publish(PLAYER_ACTIONS, make_envelope())
    assert await publisher.ping() is False


async def test_start_failure_closes_the_producer_and_raises_publish_error() -> None:
    made: list[FakeProducer] = []

    class Unreachable(FakeProducer):
        async def start(self) -> None:
            raise KafkaConnectionError("no broker")

    def factory(**kwargs: Any) -> FakeProducer:
        made.append(Unreachable(**kwargs))
        return made[-1]

    publisher = Publisher(
        KafkaSettings(), PublisherSettings(), CollectorRegistry(), producer_factory=factory
    )
    with pytest.raises(PublishError, match="cannot reach the brokers"):
        await publisher.start()
    assert made[0].stopped


async def _until(producer: FakeProducer, condition: Any, timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            producer.sent_more.clear()
            await producer.sent_more.wait()
