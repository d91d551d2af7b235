"""Refused requests answer a precise problem and publish nothing (the topics' ends stay put)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .harness import (
    MAX_BODY_BYTES,
    GatewayHarness,
    TopicProbe,
    bearer,
    level_completed,
)

pytestmark = pytest.mark.integration


def as_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# (name, path, body, content type, headers besides auth, use a token?, status, detail says)
CASES = [
    ("no token", "/v1/events", as_json(level_completed()), "application/json", {}, False, 401,
     "Authorization header is missing"),
    ("token of another secret", "/v1/events", as_json(level_completed()), "application/json",
     bearer("x", "another-secret-of-at-least-32-bytes!"), False, 401, "Signature verification"),
    ("body speaks for another player", "/v1/events",
     as_json(level_completed(player_id="someone-else")), "application/json", {}, True, 403,
     "not the player of the bearer token"),
    ("body too large", "/v1/events",
     as_json(level_completed(payload={"level_id": "x" * MAX_BODY_BYTES})), "application/json", {},
     True, 413, f"exceeds {MAX_BODY_BYTES} bytes"),
    ("form body", "/v1/events", b"a=1", "application/x-www-form-urlencoded", {}, True, 415,
     "'application/x-www-form-urlencoded' is not accepted"),
    ("unknown event type", "/v1/events", as_json(level_completed(type="boss_defeated")),
     "application/json", {}, True, 422, "'boss_defeated' is not an event type"),
    ("purchase on the events route", "/v1/events",
     as_json(level_completed(type="purchase_receipt_submitted", payload={})), "application/json",
     {}, True, 422, "POST /v1/purchases"),
    ("malformed JSON", "/v1/events", b'{"type": "level_completed",', "application/json", {}, True,
     400, "not valid JSON"),
    ("malformed payload", "/v1/events", as_json(level_completed(payload={"stars": "three"})),
     "application/json", {}, True, 400, "not a valid level_completed"),
    ("malformed protobuf", "/v1/devices", b"\xff\xff\xff", "application/x-protobuf", {}, True, 400,
     "not a serialized liveops.v1.Envelope"),
    ("bad idempotency key", "/v1/events", as_json(level_completed()), "application/json",
     {"Idempotency-Key": "k" * 129}, True, 400, "at most 128"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "content_type", "headers", "with_token", "status", "says"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_refused_requests_publish_nothing(
    gateway: GatewayHarness,
    probe: TopicProbe,
    path: str,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    with_token: bool,
    status: int,
    says: str,
) -> None:
    before = await probe.end_offsets()
    sent_headers = {"Content-Type": content_type, **headers}
    if with_token:
        sent_headers.update(bearer(gateway.player_id))

    response = await gateway.client.post(path, data=body, headers=sent_headers)

    assert response.status == status
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = await response.json(content_type=None)
    assert problem["status"] == status
    assert says in problem["detail"]
    assert await probe.end_offsets() == before
