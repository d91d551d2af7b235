"""The demo's stack: embedded broker, checked Redis and MySQL, topics, migrations, gateway, workers.

Everything it starts it stops, in reverse order, even when a step fails. It uses its own MySQL
database (`liveops_demo`, recreated each run) and its own Redis key prefix (deleted at the end),
so a demo never touches the data of a real deployment pointed at by the same settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from producers.cli import ROUTE_FACTORIES
from producers.gateway import create_app
from producers.publisher import Publisher
from schemas.errors import LiveopsError
from topics.admin import ApplyStatus, apply_plan
from topics.devbroker import STATE_DIR, EmbeddedBroker, free_port
from workers.db import MySQLTarget, migrate
from workers.processors.registry import factories_for
from workers.runtime.context import WorkerContext, open_context
from workers.runtime.worker import Worker
from workers.settings import FleetSettings

DEMO_DATABASE = "liveops_demo"

REDIS_HOW_TO_START = (
    "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
)
MYSQL_HOW_TO_START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"


class DemoPrerequisiteError(LiveopsError):
    """Redis or MySQL does not answer; the message says how to start it."""


@dataclass
class DemoStack:
    settings: FleetSettings
    gateway_url: str
    jwt_secret: str
    context: WorkerContext
    worker: Worker
    topics_created: int


async def check_services(settings: FleetSettings) -> None:
    """Fail with the exact command to run when Redis or MySQL does not answer."""
    client = aioredis.Redis.from_url(settings.redis.url.get_secret_value(), socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", said plainly
        raise DemoPrerequisiteError(
            f"Redis does not answer ({exc.__class__.__name__}); start it with: {REDIS_HOW_TO_START}"
        ) from None
    finally:
        await client.aclose()
    target = MySQLTarget.from_dsn(settings.mysql.dsn.get_secret_value())
    try:
        connection = pymysql.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            connect_timeout=3,
        )
        connection.close()
    except pymysql.MySQLError as exc:
        raise DemoPrerequisiteError(
            f"MySQL does not answer at {target.host}:{target.port} ({exc.args[-1]}); "
            f"start it with: {MYSQL_HOW_TO_START}"
        ) from None


def recreate_database(settings: FleetSettings) -> FleetSettings:
    """Point the settings at a fresh `liveops_demo` database, migrated to head."""
    target = MySQLTarget.from_dsn(settings.mysql.dsn.get_secret_value())
    connection = pymysql.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        autocommit=True,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{DEMO_DATABASE}`")
        cursor.execute(f"CREATE DATABASE `{DEMO_DATABASE}`")
    connection.close()
    demo = MySQLTarget(target.host, target.port, target.user, target.password, DEMO_DATABASE)
    migrate(demo)
    auth = f"{demo.user}:{demo.password}" if demo.password else demo.user
    dsn = f"mysql://{auth}@{demo.host}:{demo.port}/{demo.database}"
    mysql = settings.mysql.model_copy(update={"dsn": SecretStr(dsn)})
    return settings.model_copy(update={"mysql": mysql})


@contextlib.asynccontextmanager
async def demo_stack(base: FleetSettings, say: Say) -> AsyncIterator[DemoStack]:
    await check_services(base)
    say("Redis and MySQL answer")
    STATE_DIR.mkdir(exist_ok=True)
    broker = EmbeddedBroker(port=free_port(), log_path=Path(STATE_DIR, "demo-broker.log"))
    broker.start()
    say(f"embedded Kafka broker (Tansu, memory only) on {broker.bootstrap_servers}")
    jwt_secret = secrets.token_urlsafe(32)
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap_servers}),
            "redis": base.redis.model_copy(
                update={"key_prefix": f"liveops-demo-{uuid.uuid4().hex[:8]}"}
            ),
            "gateway": base.gateway.model_copy(
                update={
                    "port": free_port(),
                    "jwt_algorithm": "HS256",
                    "jwt_secret": SecretStr(jwt_secret),
                }
            ),
            "metrics_port": 0,
        }
    )
    try:
        results = await apply_plan(settings.kafka)
        created = sum(1 for r in results if r.status == ApplyStatus.DONE)
        say(f"topics applied: {created} created")
        settings = await asyncio.to_thread(recreate_database, settings)
        say(f"MySQL database {DEMO_DATABASE} migrated")
        async with open_context(settings) as context, _gateway(settings) as url:
            say(f"gateway on {url}")
            processors = [factory(context) for factory in factories_for("all").values()]
            worker = Worker(context, processors, runtime=settings.runtime, metrics_port=0)
            task = asyncio.create_task(worker.run(), name="demo-worker")
            say(f"workers running: {', '.join(p.name for p in processors)}")
            try:
                yield DemoStack(settings, url, jwt_secret, context, worker, created)
            finally:
                worker.request_stop()
                await task
                await _delete_keys(context.redis, settings.redis.key_prefix)
    finally:
        broker.stop()
        say("stopped the workers, the gateway and the broker")


@contextlib.asynccontextmanager
async def _gateway(settings: FleetSettings) -> AsyncIterator[str]:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    redis = aioredis.Redis.from_url(settings.redis.url.get_secret_value())
    publisher = Publisher(settings.kafka, settings.publisher, registry)
    await publisher.start()
    runner: web.AppRunner | None = None
    try:
        routes = [route for factory in ROUTE_FACTORIES for route in factory(settings, redis)]
        app = create_app(
            settings.gateway,
            publisher,
            redis,
            registry,
            key_prefix=settings.redis.key_prefix,
            extra_routes=routes,
        )
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.gateway.host, settings.gateway.port).start()
        yield f"http://{settings.gateway.host}:{settings.gateway.port}"
    finally:
        if runner is not None:
            await runner.cleanup()
        await publisher.stop()
        await redis.aclose()


async def _delete_keys(client: aioredis.Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        await client.delete(key)


class Say:
    """Prints a numbered step of the demo."""

    def __init__(self) -> None:
        self.step = 0

    def __call__(self, text: str) -> None:
        self.step += 1
        print(f"[{self.step:>2}] {text}", flush=True)
