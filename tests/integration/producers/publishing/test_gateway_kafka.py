"""Accepted events reach the right topic, keyed and with headers, exactly once per request."""

from __future__ import annotations

import pytest

from producers.gateway.envelopes import envelope_key_for
from producers.gateway.idempotency import IdempotencyStore
from schemas.codec import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, HEADER_TRACEPARENT, decode
from schemas.liveops.v1.envelope_pb2 import PLATFORM_WEB, Envelope
from topics.catalog import DEVICE_TOKENS, IAP_RECEIPTS, LEADERBOARD_SCORES, PLAYER_ACTIONS

from .harness import GatewayHarness, TopicProbe, bearer, gather_responses, level_completed

pytestmark = pytest.mark.integration

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_json_event_arrives_keyed_with_headers_and_decodes(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    headers = {**bearer(gateway.player_id), "traceparent": TRACEPARENT}

    response = await gateway.client.post("/v1/events", json=level_completed(), headers=headers)

    assert response.status == 202
    answer = await response.json()
    assert answer["topic"] == PLAYER_ACTIONS.name
    (record,) = await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since)
    envelope = decode(record.value)
    assert envelope.event_id == answer["event_id"] == answer["idempotency_key"]
    assert envelope.idempotency_key == envelope.event_id
    assert envelope.player_id == gateway.player_id
    assert envelope.level_completed.score == 1200
    assert envelope.received_at.seconds > 0
    assert envelope.trace.traceparent == TRACEPARENT
    assert record.headers[HEADER_EVENT_TYPE] == b"level_completed"
    assert record.headers[HEADER_SCHEMA_VERSION] == b"1"
    assert record.headers[HEADER_TRACEPARENT] == TRACEPARENT.encode()


async def test_protobuf_body_is_routed_by_payload(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    sent = Envelope(event_id="client-chosen", received_at={"seconds": 1})
    sent.occurred_at.FromJsonString("2026-11-25T08:00:00Z")
    sent.client.platform = PLATFORM_WEB
    sent.score_submitted.leaderboard_id = "weekly"
    sent.score_submitted.score = 77

    response = await gateway.client.post(
        "/v1/events",
        data=sent.SerializeToString(),
        headers={**bearer(gateway.player_id), "Content-Type": "application/x-protobuf"},
    )

    assert response.status == 202
    answer = await response.json()
    assert answer["topic"] == LEADERBOARD_SCORES.name
    (record,) = await probe.records_of(LEADERBOARD_SCORES, gateway.player_id, since)
    envelope = decode(record.value)
    assert envelope.event_id == answer["event_id"] != "client-chosen"
    assert envelope.received_at.seconds > 1
    assert envelope.score_submitted.score == 77
    assert envelope.trace.traceparent  # a new trace, since the client sent none


async def test_purchases_and_devices_have_their_own_routes_and_topics(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    auth = bearer(gateway.player_id)
    purchase = level_completed(
        type="purchase_receipt_submitted",
        payload={"store": "STORE_GOOGLE", "product_id": "gems_100", "purchase_token": "tok"},
    )
    device = level_completed(payload={"provider": "PUSH_PROVIDER_FCM", "device_token": "d"})
    del device["type"]

    bought = await gateway.client.post("/v1/purchases", json=purchase, headers=auth)
    registered = await gateway.client.post("/v1/devices", json=device, headers=auth)

    assert (bought.status, registered.status) == (202, 202)
    assert (await bought.json())["topic"] == IAP_RECEIPTS.name
    (receipt,) = await probe.records_of(IAP_RECEIPTS, gateway.player_id, since)
    assert decode(receipt.value).purchase_receipt_submitted.product_id == "gems_100"
    (token,) = await probe.records_of(DEVICE_TOKENS, gateway.player_id, since)
    assert decode(token.value).device_token_registered.device_token == "d"


async def test_a_retried_request_gets_the_same_event_id_and_is_published_once(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    headers = {**bearer(gateway.player_id), "Idempotency-Key": "level-1-1-attempt"}

    first = await gateway.client.post("/v1/events", json=level_completed(), headers=headers)
    retry = await gateway.client.post("/v1/events", json=level_completed(), headers=headers)

    assert (first.status, retry.status) == (202, 202)
    answer = await first.json()
    assert await retry.json() == answer
    assert answer["idempotency_key"] == "level-1-1-attempt"  # the client's own key
    records = await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since)
    assert [decode(r.value).event_id for r in records] == [answer["event_id"]]
    assert decode(records[0].value).idempotency_key == envelope_key_for(
        gateway.player_id, "level-1-1-attempt"
    )


async def failed_then_retried(
    gateway: GatewayHarness, probe: TopicProbe, client_key: str, *, older_gateway: bool
) -> list[Envelope]:
    """Post, mark the gateway's record `failed` as if publishing had failed although the
    broker stored the event (with `older_gateway`, also without a `scheme`, as gateways
    before derived keys wrote it), post again; both must be 202 with one event id. The
    envelopes published, in order."""
    since = await probe.end_offsets()
    headers = {**bearer(gateway.player_id), "Idempotency-Key": client_key}
    first = await gateway.client.post("/v1/events", json=level_completed(), headers=headers)
    assert first.status == 202
    store = IdempotencyStore(gateway.redis, gateway.player_id, ttl_s=60, pending_ttl_s=60)
    record = store.key_for(gateway.player_id, client_key)
    if older_gateway:
        await gateway.redis.hdel(record, "scheme")
    await gateway.redis.hset(record, "state", "failed")
    retry = await gateway.client.post("/v1/events", json=level_completed(), headers=headers)
    assert retry.status == 202
    assert (await retry.json())["event_id"] == (await first.json())["event_id"]
    records = await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since)
    return [decode(record.value) for record in records]


async def test_a_retry_of_an_older_gateways_failed_attempt_keeps_that_attempts_key(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    # Given a first attempt that a gateway from before derived keys recorded as failed, though
    # the broker stored it (its envelope key: the client's own), when the client retries
    # through a gateway of this version,
    first, retried = await failed_then_retried(
        gateway, probe, "straddles-the-deploy", older_gateway=True
    )

    # Then the retry carries the client's key as it was, the key the older gateway's attempt
    # carried: the workers dedup the two. (The first attempt here, really made by this
    # version, carried the derived key.)
    assert retried.idempotency_key == "straddles-the-deploy"
    assert first.idempotency_key == envelope_key_for(gateway.player_id, "straddles-the-deploy")


async def test_a_retry_of_a_failed_attempt_keeps_the_derived_key(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    envelopes = await failed_then_retried(gateway, probe, "failed-once", older_gateway=False)
    derived = envelope_key_for(gateway.player_id, "failed-once")
    assert [e.idempotency_key for e in envelopes] == [derived, derived]


async def test_concurrent_identical_requests_publish_once(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    headers = {**bearer(gateway.player_id), "Idempotency-Key": "double-tap"}

    responses = await gather_responses(
        *(
            gateway.client.post("/v1/events", json=level_completed(), headers=headers)
            for _ in range(5)
        )
    )

    assert [r.status for r in responses] == [202] * 5
    event_ids = {(await r.json())["event_id"] for r in responses}
    assert len(event_ids) == 1
    records = await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since)
    assert [decode(r.value).event_id for r in records] == list(event_ids)


async def test_a_key_reused_for_another_request_is_refused(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    since = await probe.end_offsets()
    headers = {**bearer(gateway.player_id), "Idempotency-Key": "reused"}
    other = level_completed(payload={"level_id": "9-9", "stars": 1})

    first = await gateway.client.post("/v1/events", json=level_completed(), headers=headers)
    reused = await gateway.client.post("/v1/events", json=other, headers=headers)

    assert first.status == 202
    assert reused.status == 422
    assert (
        "already used for a different request" in (await reused.json(content_type=None))["detail"]
    )
    records = await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since)
    assert len(records) == 1


async def test_idempotency_keys_are_scoped_per_player(
    gateway: GatewayHarness, probe: TopicProbe
) -> None:
    # Given two players whose clients send the same Idempotency-Key
    since = await probe.end_offsets()
    other_player = gateway.player_id + "-b"

    # When both post an event
    for player in (gateway.player_id, other_player):
        response = await gateway.client.post(
            "/v1/events",
            json=level_completed(),
            headers={**bearer(player), "Idempotency-Key": "same-key"},
        )
        assert response.status == 202
        assert (await response.json())["idempotency_key"] == "same-key"

    # Then both events arrive, with keys the workers (which dedup across players) tell apart
    (mine,) = await probe.records_of(PLAYER_ACTIONS, gateway.player_id, since)
    (theirs,) = await probe.records_of(PLAYER_ACTIONS, other_player, since)
    keys = [decode(record.value).idempotency_key for record in (mine, theirs)]
    assert keys[0] != keys[1]
    assert keys == [envelope_key_for(p, "same-key") for p in (gateway.player_id, other_player)]


async def test_probes_and_metrics(gateway: GatewayHarness) -> None:
    ready = await gateway.client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"kafka": True, "redis": True}

    await gateway.client.post(
        "/v1/events", json=level_completed(), headers=bearer(gateway.player_id)
    )
    text = await (await gateway.client.get("/metrics")).text()

    assert f'liveops_publisher_published_total{{topic="{PLAYER_ACTIONS.name}"}} 1.0' in text
    assert 'route="/v1/events",status="202"' in text
