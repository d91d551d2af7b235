"""The publisher: puts envelopes on catalog topics and returns once the broker has them.

Life of one publish:
1. Validate the envelope (ids, a payload the topic carries); a broken one raises ContractError
   and is never sent.
2. Take an in-flight slot: at most `max_in_flight` records wait for their acknowledgement; past
   that, callers wait here instead of memory growing without bound (back-pressure).
3. Send (key = player id, so one player's events keep their order on one partition) and wait for
   the acknowledgement. Retriable broker errors are retried with exponential backoff and jitter
   until `retry_budget_s` has passed in total.
4. Give the slot back and return (partition, offset), or raise PublishError naming the topic
   and the cause. A PublishError does not prove the record is absent (an ack can be lost), so
   whoever retries keeps the idempotency key: consumers dedup on it.

Callers own the envelope's idempotency key, and it must be globally unique: consumers dedup on
the key alone, not per player or per producer, so a key another event already used makes this
one a silently dropped duplicate. Never copy a client-chosen key into it as it is (the gateway
derives one from the player and the client's key: producers.gateway.envelopes.envelope_key_for);
use the event id, or a key derived from something globally unique, of at most 191 characters
(the MySQL dedup keys).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, NamedTuple, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from producers.errors import PublisherNotStartedError, PublishError, PublishRejectedError
from producers.settings import PublisherSettings
from schemas.codec import encode, headers_for, payload_type, validate
from schemas.errors import InvalidEnvelopeError
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import Topic
from topics.ping import cluster_answers
from topics.settings import KafkaSettings

Headers = Sequence[tuple[str, bytes]]

#: First backoff step and the cap of one backoff wait; the budget bounds the total.
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0


class Delivery(NamedTuple):
    """Where the broker stored a record."""

    partition: int
    offset: int


class PublisherMetrics:
    """The publisher's metrics, registered on the registry the caller owns."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "liveops_publisher_published_total",
            "Records acknowledged by the broker.",
            ["topic"],
            registry=registry,
        )
        self.failed = Counter(
            "liveops_publisher_failed_total",
            "Records given up on, by the error that ended the last attempt.",
            ["topic", "error"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "liveops_publisher_publish_seconds",
            "From send to acknowledgement, retries included.",
            ["topic"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "liveops_publisher_in_flight",
            "Records sent and not yet acknowledged.",
            registry=registry,
        )


def is_retriable(exc: BaseException) -> bool:
    """Ask the error. aiokafka marks KafkaTimeoutError (no ack within request_timeout_ms) as
    not retriable, but a timeout is the most transient failure there is."""
    return isinstance(exc, KafkaTimeoutError) or (
        isinstance(exc, KafkaError) and bool(exc.retriable)
    )


class Publisher:
    """Publishes to Kafka with bounded retries and back-pressure. One per process.

    Use `async with Publisher(...)` or call start() and stop(); stop() waits for records
    already sent to be acknowledged.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: PublisherSettings,
        registry: CollectorRegistry,
        *,
        producer_factory: Callable[..., Any] = AIOKafkaProducer,
    ) -> None:
        """`producer_factory` builds the aiokafka producer; unit tests pass a fake."""
        self._kafka = kafka
        self._producer_factory = producer_factory
        self._settings = settings
        self._metrics = PublisherMetrics(registry)
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._producer: Any = None

    async def start(self) -> None:
        """Connect to the cluster; raise PublishError when no broker answers."""
        if self._producer is not None:
            return
        producer = self._producer_factory(
            **self._kafka.client_kwargs(),
            acks="all" if self._settings.acks == "all" else int(self._settings.acks),
            enable_idempotence=self._kafka.enable_idempotence,
            linger_ms=self._settings.linger_ms,
            max_batch_size=self._settings.max_batch_bytes,
            compression_type=self._settings.compression_type,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise PublishError(
                f"cannot reach the brokers at {self._kafka.bootstrap_servers}: {exc!r}"
            ) from exc
        self._producer = producer

    async def stop(self) -> None:
        """Flush what was sent, then close. Safe to call twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def ping(self) -> bool:
        """Readiness: whether cluster metadata can be fetched now."""
        producer = self._producer
        if producer is None:
            return False
        return await cluster_answers(producer.client, self._settings.ping_timeout_s)

    async def publish(self, topic: Topic, envelope: Envelope) -> Delivery:
        """Publish one envelope, keyed by player id, and wait for the acknowledgement.

        The envelope's idempotency key must be globally unique (see the module docstring):
        consumers treat any other event with the same key as a duplicate of this one.
        """
        self._check(topic, envelope)
        return await self._deliver(
            topic.name, envelope.player_id.encode(), encode(envelope), headers_for(envelope)
        )

    async def publish_many(self, items: Iterable[tuple[Topic, Envelope]]) -> list[Delivery]:
        """Publish a batch and wait for every acknowledgement.

        Every envelope is checked before any is sent. Records are sent in the given order, so
        one player's events keep it unless a retry reorders them. If some fail, the others
        are still awaited and the first failure is raised; the ones that succeeded stay
        published (consumers dedup on the idempotency key when the caller retries).
        """
        batch = list(items)
        for topic, envelope in batch:
            self._check(topic, envelope)
        results = await asyncio.gather(
            *(
                self._deliver(
                    topic.name, envelope.player_id.encode(), encode(envelope), headers_for(envelope)
                )
                for topic, envelope in batch
            ),
            return_exceptions=True,
        )
        deliveries: list[Delivery] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            deliveries.append(result)
        return deliveries

    async def publish_raw(
        self, topic: Topic | str, key: bytes | None, value: bytes | None, headers: Headers = ()
    ) -> Delivery:
        """Publish bytes as they are: retry and dead-letter records keep the original value.

        A string names a topic outside the catalog objects at hand (a dead letter's original
        topic, read from its headers); everything else passes the Topic.
        """
        name = topic.name if isinstance(topic, Topic) else topic
        if not name:
            raise ValueError("publish_raw needs a topic name")
        if key is None and value is None:
            raise ValueError("publish_raw needs a key or a value")
        return await self._deliver(name, key, value, headers)

    def _check(self, topic: Topic, envelope: Envelope) -> None:
        validate(envelope)
        payload = payload_type(envelope)
        if topic.payloads and payload not in topic.payloads:
            raise InvalidEnvelopeError(
                f"{topic.name} carries {', '.join(sorted(topic.payloads))}, not {payload}"
            )

    async def _deliver(
        self, topic_name: str, key: bytes | None, value: bytes | None, headers: Headers
    ) -> Delivery:
        producer = self._producer
        if producer is None:
            raise PublisherNotStartedError("publish before Publisher.start() or after stop()")
        budget_s = self._settings.retry_budget_s
        async with self._slots:
            self._metrics.in_flight.inc()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(budget_s):
                    record = await self._send_with_retries(
                        producer, topic_name, key, value, headers
                    )
            except TimeoutError as exc:
                self._metrics.failed.labels(topic_name, "RetryBudgetExhausted").inc()
                raise PublishError(
                    f"{topic_name}: no acknowledgement within the retry budget of {budget_s} s"
                ) from exc
            except KafkaError as exc:
                self._metrics.failed.labels(topic_name, type(exc).__name__).inc()
                error = PublishError if is_retriable(exc) else PublishRejectedError
                raise error(f"{topic_name}: {type(exc).__name__}: {exc}") from exc
            finally:
                self._metrics.in_flight.dec()
        self._metrics.publish_seconds.labels(topic_name).observe(time.perf_counter() - started)
        self._metrics.published.labels(topic_name).inc()
        return Delivery(record.partition, record.offset)

    async def _send_with_retries(
        self,
        producer: Any,
        topic_name: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
    ) -> Any:
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retriable),
            wait=wait_random_exponential(multiplier=BACKOFF_FIRST_S, max=BACKOFF_MAX_S),
            stop=stop_after_delay(self._settings.retry_budget_s),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                future = await producer.send(
                    topic_name, value=value, key=key, headers=list(headers)
                )
                # Shielded: when the budget runs out, aiokafka still owns (and resolves) it.
                return await asyncio.shield(future)
        raise AssertionError("unreachable: tenacity either returns or reraises")
