"""Two gateway replicas share the idempotency store: a request another replica is publishing is
answered like that replica answers it, and never published twice."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from producers.gateway import create_app
from producers.gateway.envelopes import EVENTS_ROUTE, assign_player, envelope_from_json
from producers.gateway.envelopes import fingerprint_of as fingerprint_envelope
from producers.gateway.idempotency import Claim, ClaimState, IdempotencyStore
from topics.catalog import PLAYER_ACTIONS

from .harness import GATEWAY_SETTINGS, GatewayHarness, TopicProbe, bearer, level_completed

pytestmark = pytest.mark.integration

KEY = "replica-race"


async def claim_as_other_replica(
    redis: aioredis.Redis, prefix: str, player_id: str, event_id: str
) -> tuple[IdempotencyStore, Claim]:
    """What another replica does first for the same request: claim the key."""
    envelope = envelope_from_json(json.dumps(level_completed()).encode(), EVENTS_ROUTE)
    assign_player(envelope, player_id)
    store = IdempotencyStore(redis, prefix, ttl_s=60, pending_ttl_s=60)
    claim = await store.claim(
        player_id, KEY, event_id, fingerprint_envelope(envelope), PLAYER_ACTIONS.name
    )
    assert claim.state is ClaimState.CLAIMED
    return store, claim


async def test_a_request_another_replica_is_publishing_gets_that_replicas_answer(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    store, claim = await claim_as_other_replica(
        gateway.redis, gateway.player_id, gateway.player_id, "01OTHERREPLICAEVENT0000000"
    )
    headers = {**bearer(gateway.player_id), "Idempotency-Key": KEY}

    # The request either waits for the pending claim or finds it published: same answer.
    request = asyncio.create_task(
        gateway.client.post("/v1/events", json=level_completed(), headers=headers)
    )
    assert await store.mark_published(claim)  # the other replica's broker ack arrives
    response = await request

    assert response.status == 202
    assert (await response.json())["event_id"] == "01OTHERREPLICAEVENT0000000"
    assert await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since) == []


async def test_a_request_still_in_progress_elsewhere_is_a_409_with_retry_after(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    await claim_as_other_replica(gateway.redis, gateway.player_id, gateway.player_id, "01X")
    impatient = GATEWAY_SETTINGS.model_copy(update={"idempotency_wait_s": 0.0})
    registry = CollectorRegistry()
    app = create_app(
        impatient, gateway.publisher, gateway.redis, registry, key_prefix=gateway.player_id
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            "/v1/events",
            json=level_completed(),
            headers={**bearer(gateway.player_id), "Idempotency-Key": KEY},
        )
        problem = await response.json(content_type=None)

    assert response.status == 409
    assert response.headers["Retry-After"] == "1"
    assert "still being processed" in problem["detail"]
    assert await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since) == []
