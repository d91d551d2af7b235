"""The reference HTTP gateway: authenticated players POST events; the gateway publishes them.

Life of one POST /v1/events (or /v1/purchases, /v1/devices):
1. The auth middleware verifies the bearer token; its `sub` is the player (401 otherwise).
2. Content type (415), Idempotency-Key (400), body size (413), body (400, or 422 for an event
   type this route does not take), player (403 when the body names another player).
3. The gateway stamps event id, receive time, trace and idempotency key (derived from the
   player and the client's Idempotency-Key, so it is unique across players; see `stamp`).
4. With an Idempotency-Key, the idempotency store decides: publish, or answer like the first
   request (same event id, nothing published), or 409/422.
5. Publish to the payload's catalog topic and wait for the broker's ack: 202 with the event id;
   503 with Retry-After when the broker cannot take it.
Nothing reaches Kafka before every check has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from producers.errors import PublishError
from producers.gateway.auth import TokenVerifier, auth_middleware, player_id_of
from producers.gateway.envelopes import (
    DEVICES_ROUTE,
    EVENTS_ROUTE,
    PURCHASES_ROUTE,
    EventRoute,
    assign_player,
    envelope_from_json,
    envelope_from_protobuf,
    fingerprint_of,
    stamp,
)
from producers.gateway.headers import (
    IDEMPOTENCY_KEY_HEADER,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    idempotency_key_from,
    trace_from,
)
from producers.gateway.idempotency import Claim, ClaimState, IdempotencyStore
from producers.gateway.metrics import GatewayMetrics
from producers.gateway.problems import (
    ProblemError,
    conflict,
    problem_middleware,
    too_large,
    unavailable,
    unprocessable,
    unsupported_media_type,
)
from producers.publisher import Delivery
from producers.settings import GatewaySettings
from schemas.codec import payload_type
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import Topic, topic_for_payload

JSON_TYPE = "application/json"
PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
#: Probes and metrics answer without a token; every other route, added ones included, needs one.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
REDIS_PING_TIMEOUT_S = 2.0

log = structlog.get_logger(__name__)


class EventPublisher(Protocol):
    """What the gateway needs of producers.publisher.Publisher."""

    async def publish(self, topic: Topic, envelope: Envelope) -> Delivery: ...

    async def ping(self) -> bool: ...


def create_app(
    settings: GatewaySettings,
    publisher: EventPublisher,
    redis: aioredis.Redis,
    registry: CollectorRegistry,
    *,
    key_prefix: str = "liveops",
    extra_routes: Sequence[web.RouteDef] = (),
) -> web.Application:
    """Build the gateway. The caller owns (starts and stops) the publisher and the Redis client.

    `extra_routes` are read-only (GET) routes other layers serve behind the same token check;
    their handlers read the verified player with producers.gateway.auth.player_id_of(request).
    Raises GatewayConfigError when the JWT key is missing or unreadable.
    """
    for route in extra_routes:
        if route.method not in READ_ONLY_METHODS:
            raise ValueError(f"extra route {route.method} {route.path} is not read-only (GET)")
    gateway = Gateway(settings, publisher, redis, registry, key_prefix)
    app = web.Application(
        middlewares=[
            gateway.metrics.middleware(),
            problem_middleware,
            auth_middleware(TokenVerifier(settings), PUBLIC_PATHS),
        ],
        client_max_size=settings.max_body_bytes,
    )
    app.add_routes(
        [
            web.post(EVENTS_ROUTE.path, gateway.post_event),
            web.post(PURCHASES_ROUTE.path, gateway.post_purchase),
            web.post(DEVICES_ROUTE.path, gateway.post_device),
            web.get("/healthz", gateway.healthz),
            web.get("/readyz", gateway.readyz),
            web.get("/metrics", gateway.metrics_page),
            *extra_routes,
        ]
    )
    return app


class Gateway:
    """The request handlers and what they share."""

    def __init__(
        self,
        settings: GatewaySettings,
        publisher: EventPublisher,
        redis: aioredis.Redis,
        registry: CollectorRegistry,
        key_prefix: str,
    ) -> None:
        self._settings = settings
        self._publisher = publisher
        self._redis = redis
        self._registry = registry
        self._store = IdempotencyStore(
            redis, key_prefix, settings.idempotency_ttl_s, settings.idempotency_pending_ttl_s
        )
        self.metrics = GatewayMetrics(registry)

    async def post_event(self, request: web.Request) -> web.Response:
        return await self._accept(request, EVENTS_ROUTE)

    async def post_purchase(self, request: web.Request) -> web.Response:
        return await self._accept(request, PURCHASES_ROUTE)

    async def post_device(self, request: web.Request) -> web.Response:
        return await self._accept(request, DEVICES_ROUTE)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready when the broker's metadata and Redis both answer."""
        checks = {"kafka": await self._publisher.ping(), "redis": await self._redis_answers()}
        return web.json_response(checks, status=200 if all(checks.values()) else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _accept(self, request: web.Request, route: EventRoute) -> web.Response:
        player_id = player_id_of(request)
        # The client's key, scoped to its player here and in the idempotency store; the
        # envelope carries a key derived from both (`stamp`), never this one as it is.
        client_key = idempotency_key_from(request.headers.get(IDEMPOTENCY_KEY_HEADER))
        envelope = await self._read_envelope(request, route)
        assign_player(envelope, player_id)
        topic = topic_for_payload(payload_type(envelope))
        fingerprint = fingerprint_of(envelope)
        trace = trace_from(
            request.headers.get(TRACEPARENT_HEADER), request.headers.get(TRACESTATE_HEADER)
        )
        stamp(envelope, client_key, trace)
        if client_key is None:
            await self._publish(topic, envelope)
            return _accepted(envelope, envelope.event_id, topic.name)
        claim = await self._settle(player_id, client_key, envelope, fingerprint, topic)
        if claim.state is ClaimState.PUBLISHED:
            self.metrics.duplicates.inc()
            envelope.event_id = claim.event_id
            return _accepted(envelope, client_key, claim.topic)
        envelope.event_id = claim.event_id  # a retry after a failure keeps the first event id
        if not claim.derived_key:
            # Its first attempt went through a gateway from before derived keys, which put
            # the client's key in the envelope: the same key lets the workers dedup the two.
            envelope.idempotency_key = client_key
        try:
            await self._publish(topic, envelope)
        except ProblemError:
            await self._finish(claim, published=False)
            raise
        await self._finish(claim, published=True)
        return _accepted(envelope, client_key, topic.name)

    async def _read_envelope(self, request: web.Request, route: EventRoute) -> Envelope:
        limit = self._settings.max_body_bytes
        if "Content-Type" not in request.headers:
            raise unsupported_media_type(f"Content-Type is missing; send {JSON_TYPE}")
        content_type = request.content_type
        if content_type != JSON_TYPE and content_type not in PROTOBUF_TYPES:
            raise unsupported_media_type(
                f"Content-Type {content_type[:64]!r} is not accepted; "
                f"send {JSON_TYPE} or application/x-protobuf"
            )
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise too_large(limit) from None
        if content_type == JSON_TYPE:
            return envelope_from_json(body, route)
        return envelope_from_protobuf(body, route)

    async def _settle(
        self,
        player_id: str,
        client_key: str,
        envelope: Envelope,
        fingerprint: str,
        topic: Topic,
    ) -> Claim:
        try:
            claim = await self._store.settle(
                player_id,
                client_key,
                envelope.event_id,
                fingerprint,
                topic.name,
                self._settings.idempotency_wait_s,
            )
        except RedisError as exc:
            log.warning("gateway.idempotency_store_unavailable", error=repr(exc))
            raise unavailable(
                "the idempotency store is unreachable; retry with the same Idempotency-Key",
                self._settings.publish_retry_after_s,
            ) from None
        if claim.state is ClaimState.CONFLICT:
            raise unprocessable(
                "idempotency-key-reused",
                "Idempotency-Key reused",
                f"this {IDEMPOTENCY_KEY_HEADER} was already used for a different request",
            )
        if claim.state is ClaimState.PENDING:
            raise conflict(
                f"a request with this {IDEMPOTENCY_KEY_HEADER} is still being processed",
                retry_after_s=1,
            )
        return claim

    async def _publish(self, topic: Topic, envelope: Envelope) -> None:
        started = time.perf_counter()
        try:
            await self._publisher.publish(topic, envelope)
        except PublishError as exc:
            log.warning(
                "gateway.publish_failed",
                topic=topic.name,
                event_id=envelope.event_id,
                # The envelope's (derived) key, the one the workers' dedup rows hold.
                envelope_idempotency_key=envelope.idempotency_key,
                error=str(exc),
            )
            raise unavailable(
                f"the event could not be published to {topic.name}; "
                f"retry with the same {IDEMPOTENCY_KEY_HEADER}",
                self._settings.publish_retry_after_s,
            ) from None
        finally:
            self.metrics.publish_seconds.labels(topic.name).observe(time.perf_counter() - started)

    async def _finish(self, claim: Claim, *, published: bool) -> None:
        """Record the outcome. If Redis fails now, the short claim TTL frees the key anyway."""
        try:
            if published:
                await self._store.mark_published(claim)
            else:
                await self._store.mark_failed(claim)
        except RedisError as exc:
            log.warning("gateway.idempotency_record_failed", published=published, error=repr(exc))

    async def _redis_answers(self) -> bool:
        try:
            async with asyncio.timeout(REDIS_PING_TIMEOUT_S):
                return bool(await self._redis.ping())
        except (RedisError, TimeoutError, OSError):
            return False


def _accepted(envelope: Envelope, idempotency_key: str, topic_name: str) -> web.Response:
    """202. `idempotency_key` is the client's own Idempotency-Key (the event id without one),
    the key to retry with, not the envelope's derived key."""
    return web.json_response(
        {
            "event_id": envelope.event_id,
            "idempotency_key": idempotency_key,
            "topic": topic_name,
        },
        status=202,
    )
