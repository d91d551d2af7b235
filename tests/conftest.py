"""Fixtures shared by every test: a private embedded broker, Redis and a private MySQL database.

Each test session gets its own broker (free port) and its own MySQL database, created with the
migrations and dropped at the end; each test gets its own Redis key prefix and a unique name for
consumer groups. Integration tests never mock Kafka, Redis or MySQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import aiomysql
import pymysql
import pytest
import redis.asyncio as aioredis
import structlog

from topics.admin import ApplyStatus, apply_plan
from topics.devbroker import EmbeddedBroker, free_port
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool, migrate

REDIS_URL = "redis://127.0.0.1:6379/0"
MYSQL_ROOT = MySQLTarget(host="127.0.0.1", port=3306, user="root", password="", database="test")


#: How long before pytest-timeout fails a test the asyncio tasks are dumped: its own dump
#: shows only threads, and a hung coroutine sits in an idle event loop.
_TASK_DUMP_LEAD_S = 20.0
_session_loop: asyncio.AbstractEventLoop | None = None


@pytest.fixture(scope="session", autouse=True)
async def _remember_session_loop() -> None:
    global _session_loop  # the hook below runs outside any fixture
    _session_loop = asyncio.get_running_loop()


def _dump_asyncio_tasks() -> None:
    lead = f"{_TASK_DUMP_LEAD_S:.0f} s"
    print(f"--- asyncio tasks {lead} before the test's timeout ---", file=sys.stderr)
    for task in asyncio.all_tasks():
        print(repr(task), file=sys.stderr)
        awaited: Any = task.get_coro()
        while awaited is not None:  # the whole await chain, not only the task's own frame
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                code = frame.f_code
                print(f"  {code.co_filename}:{frame.f_lineno} {code.co_name}", file=sys.stderr)
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)


def _timeout_s(item: pytest.Item) -> float:
    """pytest-timeout's timeout for `item`: its marker, else --timeout, else PYTEST_TIMEOUT,
    else the ini file's; 0 is no timeout."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        if value is not None:
            return float(value)
    for value in (item.config.getoption("timeout", None), os.environ.get("PYTEST_TIMEOUT")):
        if value is not None:
            return float(value)
    return float(item.config.getini("timeout") or 0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Dump every asyncio task's await chain shortly before pytest-timeout fails a hung test
    (its timer covers setup, call and teardown, and so does this one). Only the session's
    loop, and only while it runs: a sync test has no tasks to show (pytest-timeout's own dump
    shows its threads)."""
    timeout_s = _timeout_s(item)
    timer = None
    if timeout_s > 2 * _TASK_DUMP_LEAD_S:

        def dump_in_loop() -> None:
            loop = _session_loop  # looked up now: the first test's setup is what sets it
            if loop is not None and loop.is_running():
                with contextlib.suppress(RuntimeError):  # closed in between
                    loop.call_soon_threadsafe(_dump_asyncio_tasks)

        timer = threading.Timer(timeout_s - _TASK_DUMP_LEAD_S, dump_in_loop)
        timer.daemon = True
        timer.start()
    try:
        return (yield)
    finally:
        if timer is not None:
            timer.cancel()


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Undo any logging set up by a test (the CLI's root callback configures structlog to
    write to the stderr of that moment, which pytest closes after the test)."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_settings(kafka_broker: EmbeddedBroker) -> KafkaSettings:
    """Settings for the session's broker, on which the whole catalog is applied first.

    As in production, topics exist before anything produces to them: Tansu would otherwise
    create a topic on first produce with its own partition count (4), and a test that then
    expects the catalog's shape would depend on which test ran first.
    """
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers)
    results = asyncio.run(apply_plan(settings))
    failed = [r.describe() for r in results if r.status == ApplyStatus.FAILED]
    assert not failed, f"could not apply the catalog to the test broker: {failed}"
    return settings


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses: for consumer groups, key prefixes, player ids."""
    return f"t-{request.node.name[:24]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")


@pytest.fixture(scope="session")
def mysql_target() -> Iterator[MySQLTarget]:
    """A database of our own, migrated to head, dropped when the session ends."""
    name = f"liveops_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(
        host=MYSQL_ROOT.host,
        port=MYSQL_ROOT.port,
        user=MYSQL_ROOT.user,
        password=MYSQL_ROOT.password,
        autocommit=True,
    )
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    target = MySQLTarget(
        MYSQL_ROOT.host, MYSQL_ROOT.port, MYSQL_ROOT.user, MYSQL_ROOT.password, name
    )
    migrate(target)
    yield target
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


@pytest.fixture
async def pool(mysql_target: MySQLTarget) -> AsyncIterator[aiomysql.Pool]:
    """A pool on the session's database; four connections, for tests that run two workers.
    (Here, not in a conftest of tests/integration/rewards: mypy reads every conftest.py as one
    module named `conftest` unless its folder is a package.)"""
    created = await create_pool(mysql_target, maxsize=4)
    yield created
    created.close()
    await created.wait_closed()


@pytest.fixture
async def redis_client(unique_name: str) -> AsyncIterator[aioredis.Redis]:
    """A Redis client; every key the test writes under `unique_name` is deleted afterwards."""
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    async for key in client.scan_iter(match=f"{unique_name}*"):
        await client.delete(key)
    await client.aclose()
