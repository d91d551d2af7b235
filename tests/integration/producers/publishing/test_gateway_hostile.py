"""Property tests: malformed, oversized and hostile requests never get a 5xx, never crash the
gateway, and publish nothing unless the gateway accepted them (202)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.liveops.v1.envelope_pb2 import PLATFORM_IOS, Envelope

from .harness import (
    JWT_SECRET,
    MAX_BODY_BYTES,
    GatewayHarness,
    TopicProbe,
    bearer,
    level_completed,
)

pytestmark = pytest.mark.integration

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    # One gateway per test serves every example: nothing an example does leaks into the next
    # except published records, which the property accounts for.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
REFUSALS = {400, 401, 403, 404, 405, 409, 413, 415, 422}

header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"),
    max_size=160,
)
usable_keys = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_json_events(draw: st.DrawFn) -> bytes:
    """A valid event with one field replaced, removed or added (some stay valid)."""
    document: dict[str, Any] = level_completed()
    section = draw(st.sampled_from(["top", "client", "payload"]))
    target: dict[str, Any] = document if section == "top" else document[section]
    key = draw(st.sampled_from(sorted(target)) | st.text(max_size=12))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(json_values)
    return json.dumps(document).encode()


def valid_protobuf() -> bytes:
    envelope = Envelope()
    envelope.occurred_at.FromJsonString("2026-11-25T08:00:00Z")
    envelope.client.platform = PLATFORM_IOS
    envelope.quest_completed.quest_id = "q-1"
    return envelope.SerializeToString()


@st.composite
def mutated_protobuf(draw: st.DrawFn) -> bytes:
    """A valid serialized envelope with bytes flipped, cut or inserted."""
    data = bytearray(valid_protobuf())
    position = draw(st.integers(0, len(data)))
    action = draw(st.sampled_from(["flip", "cut", "insert"]))
    if action == "flip" and position < len(data):
        data[position] ^= draw(st.integers(1, 255))
    elif action == "cut":
        del data[position:]
    else:
        data[position:position] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


JSON_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8"])
#: Past the JSON decoder's recursion limit (~1000) yet under the body limit.
deeply_nested = st.integers(1000, MAX_BODY_BYTES // 2 - 1).map(
    lambda depth: b"[" * depth + b"]" * depth
)
oversized = st.integers(MAX_BODY_BYTES + 1, 3 * MAX_BODY_BYTES).map(
    lambda size: b'{"type": "' + b"x" * size + b'"}'
)
json_bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    mutated_json_events(),
    mutated_json_events(),
    deeply_nested,
    st.text(max_size=300).map(str.encode),
    oversized,
)
protobuf_bodies = st.one_of(mutated_protobuf(), st.binary(max_size=600), oversized)
any_content_type = st.sampled_from(
    ["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/protobuf"]
) | header_text.filter(str.strip)
#: (Content-Type, body): mostly bodies of the announced type, where the parsers are exercised.
requests = st.one_of(
    st.tuples(JSON_TYPES, json_bodies),
    st.tuples(st.just("application/x-protobuf"), protobuf_bodies),
    st.tuples(any_content_type, st.binary(max_size=600) | json_bodies),
)


async def problem_or_accepted(response: Any) -> dict[str, Any]:
    assert response.status < 500
    assert response.status == 202 or response.status in REFUSALS
    document: dict[str, Any] = await response.json(content_type=None)
    if response.status != 202:
        assert response.headers["Content-Type"] == "application/problem+json"
        assert document["status"] == response.status
        assert document["detail"]
    return document


@PROPERTY_SETTINGS
@given(
    path=st.sampled_from(["/v1/events", "/v1/purchases", "/v1/devices"]),
    request=requests,
    # Mostly absent or usable, so most examples get past the header check to the body parsers.
    idempotency_key=st.one_of(st.none(), st.none(), usable_keys, header_text),
    traceparent=st.none() | header_text,
)
async def test_hostile_bodies_and_headers_never_5xx_and_publish_only_accepted_events(
    gateway: GatewayHarness,
    probe: TopicProbe,
    path: str,
    request: tuple[str, bytes],
    idempotency_key: str | None,
    traceparent: str | None,
) -> None:
    content_type, body = request
    headers = {**bearer(gateway.player_id), "Content-Type": content_type}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if traceparent is not None:
        headers["traceparent"] = traceparent
    before = await probe.end_offsets()

    response = await gateway.client.post(path, data=body, headers=headers)

    await problem_or_accepted(response)
    if response.status != 202:
        assert await probe.end_offsets() == before


subjects = st.one_of(
    st.text(max_size=140),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
)


@PROPERTY_SETTINGS
@given(
    authorization=st.one_of(
        header_text,
        header_text.map(lambda text: "Bearer " + text),
        st.tuples(subjects, st.integers(-3600, 3600)).map(
            lambda claims: (
                "Bearer "
                + jwt.encode({"sub": claims[0], "exp": int(time.time()) + claims[1]}, JWT_SECRET)
            )
        ),
    )
)
async def test_hostile_authorization_is_401_and_publishes_nothing(
    gateway: GatewayHarness, probe: TopicProbe, authorization: str
) -> None:
    before = await probe.end_offsets()

    response = await gateway.client.post(
        "/v1/events",
        json=level_completed(),
        headers={"Authorization": authorization, "Idempotency-Key": "hostile-auth"},
    )

    document = await problem_or_accepted(response)
    if response.status != 202:
        assert response.status == 401, document
        assert await probe.end_offsets() == before


async def test_the_gateway_still_serves_after_the_hostile_runs(gateway: GatewayHarness) -> None:
    response = await gateway.client.post(
        "/v1/events", json=level_completed(), headers=bearer(gateway.player_id)
    )
    assert response.status == 202
