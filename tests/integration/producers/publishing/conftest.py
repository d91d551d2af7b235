"""Fixtures of the producer tests: the catalog's input topics on the session broker, a real
publisher, a gateway on a loopback port (aiohttp TestServer) backed by real Kafka and Redis, and
a probe that reads what reached the topics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from producers.gateway import create_app
from producers.publisher import Publisher
from producers.settings import PublisherSettings
from topics.admin import apply_plan
from topics.catalog import Topic
from topics.settings import KafkaSettings

from .harness import GATEWAY_SETTINGS, INPUT_TOPICS, GatewayHarness, TopicProbe


@pytest.fixture(scope="session")
async def input_topics(kafka_settings: KafkaSettings) -> tuple[Topic, ...]:
    """The gateway's topics with their catalog partitions (idempotent: others may create them)."""
    await apply_plan(kafka_settings, INPUT_TOPICS)
    return INPUT_TOPICS


@pytest.fixture
async def probe(
    kafka_settings: KafkaSettings, input_topics: tuple[Topic, ...]
) -> AsyncIterator[TopicProbe]:
    consumer = AIOKafkaConsumer(**kafka_settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    yield TopicProbe(consumer)
    await consumer.stop()


@pytest.fixture
async def gateway(
    kafka_settings: KafkaSettings,
    input_topics: tuple[Topic, ...],
    redis_client: aioredis.Redis,
    unique_name: str,
) -> AsyncIterator[GatewayHarness]:
    registry = CollectorRegistry()
    async with Publisher(kafka_settings, PublisherSettings(), registry) as publisher:
        app = create_app(
            GATEWAY_SETTINGS, publisher, redis_client, registry, key_prefix=unique_name
        )
        async with TestClient(TestServer(app)) as client:
            yield GatewayHarness(client, publisher, registry, redis_client, unique_name)
