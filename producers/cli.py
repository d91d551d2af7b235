"""`liveops gateway`: serve the reference HTTP gateway until SIGTERM or Ctrl-C.

On a stop signal the gateway stops accepting connections, lets requests in flight finish
within `shutdown_grace_s`, then waits for the publisher to flush what it sent, and exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
import typer
from aiohttp import web
from prometheus_client import CollectorRegistry

from producers.gateway import create_app
from producers.publisher import Publisher
from schemas.errors import LiveopsError

#: Builds read-only routes another layer serves on the gateway (e.g. leaderboards), from the
#: fleet settings and the gateway's Redis client.
RouteFactory = Callable[[Any, aioredis.Redis], Sequence[web.RouteDef]]

log = structlog.get_logger(__name__)


def leaderboard_routes(fleet: Any, redis: aioredis.Redis) -> Sequence[web.RouteDef]:
    """GET /v1/leaderboards/... (top, a player, around a player, friends), which the
    leaderboards layer serves from Redis."""
    # Imported when the command runs: producers never imports workers at import time
    # (workers.settings imports producers.settings).
    from workers.processors.leaderboards.definitions import load_definitions
    from workers.processors.leaderboards.factory import leaderboard_settings
    from workers.processors.leaderboards.routes import leaderboard_routes as routes

    settings = leaderboard_settings(fleet)
    return routes(
        redis,
        load_definitions(settings.definitions_path),
        key_prefix=fleet.redis.key_prefix,
        settings=settings,
    )


#: Other layers' read-only routes the `liveops gateway` command mounts.
ROUTE_FACTORIES: tuple[RouteFactory, ...] = (leaderboard_routes,)


def gateway_command(ctx: typer.Context) -> None:
    """Serve POST /v1/events, /v1/purchases, /v1/devices and the probes (LIVEOPS_GATEWAY__*)."""
    # ctx.obj is workers.settings.FleetSettings; typed loosely so producers never imports
    # workers (workers.settings imports producers.settings).
    fleet: Any = ctx.obj
    try:
        asyncio.run(serve(fleet, ROUTE_FACTORIES))
    except LiveopsError as exc:  # bad JWT key, unreachable broker, invalid board definitions
        typer.echo(f"liveops gateway: {exc}", err=True)
        raise typer.Exit(1) from None


async def serve(fleet: Any, route_factories: Sequence[RouteFactory] = ()) -> None:
    """Run until SIGTERM/SIGINT. `route_factories` add other layers' read-only routes."""
    settings = fleet.gateway
    registry = CollectorRegistry()
    redis = aioredis.Redis.from_url(fleet.redis.url.get_secret_value())
    publisher = Publisher(fleet.kafka, fleet.publisher, registry)
    try:
        extra_routes = [route for factory in route_factories for route in factory(fleet, redis)]
        # Built before connecting, so a missing JWT key fails fast without touching Kafka.
        app = create_app(
            settings,
            publisher,
            redis,
            registry,
            key_prefix=fleet.redis.key_prefix,
            extra_routes=extra_routes,
        )
        await publisher.start()
        runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=settings.shutdown_grace_s, access_log=None
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.host, settings.port).start()
            log.info("gateway.listening", host=settings.host, port=settings.port)
            await _stop_signal()
            log.info("gateway.stopping", grace_s=settings.shutdown_grace_s)
        finally:
            await runner.cleanup()
    finally:
        await publisher.stop()
        await redis.aclose()
    log.info("gateway.stopped")


async def _stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
