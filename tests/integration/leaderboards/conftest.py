"""Fixtures of the leaderboards integration tests: real Redis and MySQL, a processor built on
them with boards whose ids no other test uses, and a clock the test moves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiomysql
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool
from workers.processors.leaderboards.definitions import Definitions, parse_definitions
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.settings import LeaderboardSettings

from .lb_helpers import Clock, ProcessorFactory, boards_toml, on_group


@pytest.fixture
async def mysql_pool(mysql_target: MySQLTarget) -> AsyncIterator[aiomysql.Pool]:
    pool = await create_pool(mysql_target, maxsize=4)
    yield pool
    pool.close()
    await pool.wait_closed()


@pytest.fixture
def board_prefix() -> str:
    """Prefix of this test's board ids: the MySQL tables are shared by the whole session."""
    return f"b{uuid.uuid4().hex[:10]}"


@pytest.fixture
def definitions(board_prefix: str) -> Definitions:
    return parse_definitions(boards_toml(board_prefix))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_processor(
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    clock: Clock,
) -> ProcessorFactory:
    def build(
        *,
        prefix: str = unique_name,
        board_definitions: Definitions | None = None,
        settings: LeaderboardSettings | None = None,
        registry: CollectorRegistry | None = None,
        mysql: aiomysql.Pool | None = None,
        kafka: KafkaSettings | None = None,
        group: ConsumerGroup | None = None,
    ) -> LeaderboardsProcessor:
        """Lazy closing off unless `settings` turn it on (it then needs `kafka`); `group`:
        consume and close periods for a group of the test's own."""
        kind = LeaderboardsProcessor if group is None else on_group(group)
        return kind(
            redis=redis_client,
            mysql=mysql or mysql_pool,
            definitions=board_definitions or definitions,
            key_prefix=prefix,
            settings=settings or LeaderboardSettings(close_lazily=False),
            kafka=kafka,
            metrics=registry or CollectorRegistry(),
            clock=clock,
        )

    return build
