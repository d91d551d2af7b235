"""From request bodies to envelopes: what is accepted, and the exact refusal for what is not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from producers.gateway.auth import PLAYER_ID_MAX_CHARS
from producers.gateway.envelopes import (
    DEVICES_ROUTE,
    EVENTS_ROUTE,
    PURCHASES_ROUTE,
    assign_player,
    envelope_from_json,
    envelope_from_protobuf,
    envelope_key_for,
    fingerprint_of,
    stamp,
)
from producers.gateway.headers import IDEMPOTENCY_KEY_MAX_CHARS, TraceContext
from producers.gateway.problems import ProblemError
from schemas.codec import payload_type
from schemas.liveops.v1.actions_pb2 import MATCH_OUTCOME_WIN
from schemas.liveops.v1.envelope_pb2 import PLATFORM_IOS, Envelope
from schemas.liveops.v1.purchases_pb2 import STORE_APPLE
from topics.catalog import PLAYER_ACTIONS, topic_for_payload

CLIENT = {"platform": "ios", "app_version": "2.14.0", "build": 120, "schema_version": 1}


def body(**overrides: Any) -> bytes:
    document: dict[str, Any] = {
        "type": "level_completed",
        "occurred_at": "2026-11-25T08:00:00Z",
        "client": CLIENT,
        "payload": {"level_id": "1-1", "stars": 3, "duration_ms": "61000", "score": 1200},
    }
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def refusal(raw: bytes, route: Any = EVENTS_ROUTE, *, protobuf: bool = False) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        (envelope_from_protobuf if protobuf else envelope_from_json)(raw, route)
    return caught.value


def test_json_event_becomes_an_envelope_with_client_clock_and_build() -> None:
    envelope = envelope_from_json(body(), EVENTS_ROUTE)

    assert payload_type(envelope) == "level_completed"
    assert envelope.level_completed.duration_ms == 61_000
    assert envelope.occurred_at.ToJsonString() == "2026-11-25T08:00:00Z"
    assert envelope.client.platform == PLATFORM_IOS
    assert (envelope.client.app_version, envelope.client.build) == ("2.14.0", 120)
    assert envelope.event_id == envelope.player_id == ""


def test_enums_and_empty_payloads_are_accepted() -> None:
    match = envelope_from_json(
        body(type="match_result", payload={"match_id": "m", "outcome": "MATCH_OUTCOME_WIN"}),
        EVENTS_ROUTE,
    )
    assert match.match_result.outcome == MATCH_OUTCOME_WIN
    quest = envelope_from_json(body(type="quest_completed", payload={}), EVENTS_ROUTE)
    assert payload_type(quest) == "quest_completed"


def test_a_shop_offer_bought_is_accepted_on_the_events_route_and_names_only_the_offer() -> None:
    bought = envelope_from_json(
        body(type="offer_bought", payload={"offer_id": "iron-sword"}), EVENTS_ROUTE
    )
    assert payload_type(bought) == "offer_bought"
    assert bought.offer_bought.offer_id == "iron-sword"
    assert topic_for_payload("offer_bought") is PLAYER_ACTIONS
    # The price is data of the rules file: a client cannot send one.
    priced = body(type="offer_bought", payload={"offer_id": "iron-sword", "price": 1})
    assert "not a valid offer_bought" in refusal(priced).detail
    assert refusal(body(type="offer_bought", payload={}), PURCHASES_ROUTE).detail == (
        "send offer_bought to POST /v1/events"
    )
    sent = Envelope()
    sent.occurred_at.FromJsonString("2026-11-25T08:00:00Z")
    sent.client.platform = PLATFORM_IOS
    sent.offer_bought.offer_id = "iron-sword"
    parsed = envelope_from_protobuf(sent.SerializeToString(), EVENTS_ROUTE)
    assert parsed.offer_bought.offer_id == "iron-sword"


def test_single_payload_routes_do_not_need_a_type() -> None:
    purchase = envelope_from_json(
        body(type=..., payload={"store": "STORE_APPLE", "product_id": "gems_100"}),
        PURCHASES_ROUTE,
    )
    assert purchase.purchase_receipt_submitted.store == STORE_APPLE
    device = envelope_from_json(
        body(type="device_token_registered", payload={"device_token": "abc"}), DEVICES_ROUTE
    )
    assert device.device_token_registered.device_token == "abc"


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"type": "a", "type": "b"}', 400, "duplicate key 'type'"),
        (body(extra=1), 400, "unknown field(s) 'extra'"),
        (body(type=...), 400, "type is required"),
        (body(type="teleported"), 422, "'teleported' is not an event type clients may send"),
        (body(type="reward_granted"), 422, "is not an event type clients may send"),
        (body(type="purchase_receipt_submitted"), 422, "POST /v1/purchases"),
        (body(type="device_token_registered"), 422, "POST /v1/devices"),
        (body(occurred_at=...), 400, "occurred_at is required"),
        (body(occurred_at="yesterday"), 400, "occurred_at is not an RFC 3339 time"),
        (body(client=...), 400, "client is required"),
        (body(client={**CLIENT, "platform": "gameboy"}), 400, "client.platform must be one of"),
        (body(client={**CLIENT, "build": -1}), 400, "client is not valid"),
        (body(client={**CLIENT, "os": "x"}), 400, "unknown client field(s) 'os'"),
        (body(payload=...), 400, "payload is required"),
        (body(payload={"level_id": "1", "lives": 3}), 400, "not a valid level_completed"),
        (body(payload={"stars": "many"}), 400, "not a valid level_completed"),
        (body(payload={"score": "SCORE"}).replace(b'"SCORE"', b"1e400"), 400, "not a valid"),
        (body(player_id=7), 400, "player_id must be a string"),
        (b'{"type": NaN}', 400, "NaN is not a JSON number"),
        (b"[" * 100_000, 400, "not valid JSON"),
        (b"\xff\xfe\x00garbage", 400, "not valid JSON"),
    ],
)
def test_bad_json_is_refused_with_a_precise_problem(raw: bytes, status: int, says: str) -> None:
    problem = refusal(raw)
    assert problem.status == status
    assert says in problem.detail


def test_purchase_route_refuses_other_types() -> None:
    problem = refusal(body(), PURCHASES_ROUTE)
    assert (problem.status, problem.detail) == (422, "send level_completed to POST /v1/events")


def protobuf_envelope() -> Envelope:
    envelope = Envelope()
    envelope.occurred_at.FromJsonString("2026-11-25T08:00:00Z")
    envelope.client.platform = PLATFORM_IOS
    envelope.score_submitted.leaderboard_id = "weekly"
    envelope.score_submitted.score = 10
    return envelope


def test_protobuf_envelope_is_accepted() -> None:
    envelope = envelope_from_protobuf(protobuf_envelope().SerializeToString(), EVENTS_ROUTE)
    assert envelope.score_submitted.score == 10


def test_a_newer_clients_unknown_fields_are_kept() -> None:
    # Field 63 is not in liveops.v1: a newer client's field, beside a payload this build knows.
    sent = protobuf_envelope().SerializeToString() + b"\xf8\x03\x01"
    envelope = envelope_from_protobuf(sent, EVENTS_ROUTE)
    assert envelope.score_submitted.score == 10
    assert envelope.SerializeToString() == sent


def test_protobuf_refusals() -> None:
    assert "not a serialized liveops.v1.Envelope" in refusal(b"\xff\xff", protobuf=True).detail

    empty = protobuf_envelope()
    empty.ClearField("score_submitted")
    assert refusal(empty.SerializeToString(), protobuf=True).detail == (
        "the envelope carries no payload"
    )

    # Field 63 is not in liveops.v1: a newer client's payload this gateway does not know.
    unknown_payload = empty.SerializeToString() + b"\xf8\x03\x01"
    assert refusal(unknown_payload, protobuf=True).status == 422

    output = protobuf_envelope()
    output.reward_granted.SetInParent()
    assert refusal(output.SerializeToString(), protobuf=True).status == 422

    no_clock = protobuf_envelope()
    no_clock.ClearField("occurred_at")
    assert "lacks occurred_at" in refusal(no_clock.SerializeToString(), protobuf=True).detail

    far_future = protobuf_envelope()
    far_future.occurred_at.seconds = 10**12
    assert "out of range" in refusal(far_future.SerializeToString(), protobuf=True).detail

    no_platform = protobuf_envelope()
    no_platform.ClearField("client")
    assert "client.platform" in refusal(no_platform.SerializeToString(), protobuf=True).detail


def test_the_token_player_wins_and_another_player_is_forbidden() -> None:
    envelope = envelope_from_json(body(), EVENTS_ROUTE)
    assign_player(envelope, "p-1")
    assert envelope.player_id == "p-1"

    other = envelope_from_json(body(player_id="p-2"), EVENTS_ROUTE)
    with pytest.raises(ProblemError) as caught:
        assign_player(other, "p-1")
    assert caught.value.status == 403


def test_stamp_sets_gateway_fields_and_the_key_defaults_to_the_event_id() -> None:
    trace = TraceContext("00-" + "a" * 32 + "-" + "b" * 16 + "-01", "k=v")
    envelope = stamp(envelope_from_json(body(), EVENTS_ROUTE), None, trace)
    assert len(envelope.event_id) == 26
    assert envelope.idempotency_key == envelope.event_id
    assert envelope.received_at.seconds > 0
    assert (envelope.trace.traceparent, envelope.trace.tracestate) == (
        trace.traceparent,
        trace.tracestate,
    )


def stamped(player_id: str, client_key: str | None) -> Envelope:
    """What the gateway publishes for `player_id`'s request with this Idempotency-Key."""
    envelope = envelope_from_json(body(), EVENTS_ROUTE)
    assign_player(envelope, player_id)
    return stamp(envelope, client_key, TraceContext("00-" + "a" * 32 + "-" + "b" * 16 + "-01"))


def test_two_players_sending_the_same_key_get_different_envelope_keys() -> None:
    # Given two players whose clients choose the same, predictable Idempotency-Key
    # When the gateway stamps both requests
    first, second = stamped("p-1", "level-w1-l3"), stamped("p-2", "level-w1-l3")

    # Then the workers, which dedup on the envelope key alone, see two different events
    assert first.idempotency_key != second.idempotency_key
    assert "level-w1-l3" not in first.idempotency_key + second.idempotency_key


def test_the_same_players_retry_gets_the_same_envelope_key() -> None:
    # A retry after the gateway's own record expired gets a new event id, but the workers
    # still dedup it: the envelope key depends on the player and the key only.
    first, retry = stamped("p-1", "level-w1-l3"), stamped("p-1", "level-w1-l3")

    assert first.event_id != retry.event_id
    assert first.idempotency_key == retry.idempotency_key
    assert first.idempotency_key == envelope_key_for("p-1", "level-w1-l3")
    assert stamped("p-1", "level-w1-l4").idempotency_key != first.idempotency_key


def test_the_derivation_never_changes() -> None:
    # Pinned: keys derived by an older gateway must match, or a retry straddling a deploy
    # is applied twice (the namespace and the length-prefixed text are the contract).
    assert envelope_key_for("p-1", "level-w1-l3") == "33f34b36-a2bf-5650-94bc-34bcc1dffa33"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("ab", "c"), ("a", "bc")),  # where the player ends and the key begins
        (("a:1", "x"), ("a", "1:x")),
        (("1:a", "b"), ("1", "a:b")),
        (("p\x00", "k"), ("p", "\x00k")),
    ],
)
def test_the_player_and_key_cannot_be_shifted_into_each_other(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    assert envelope_key_for(*one) != envelope_key_for(*other)


def test_the_longest_player_id_and_key_fit_the_dedup_columns() -> None:
    player_id, key = "p" * PLAYER_ID_MAX_CHARS, "k" * IDEMPOTENCY_KEY_MAX_CHARS

    envelope = stamped(player_id, key)

    assert len(envelope.idempotency_key) == 36  # VARCHAR(191) in processed_events and ledgers
    assert envelope.idempotency_key != stamped(player_id, key[:-1]).idempotency_key


def test_without_a_client_key_the_envelope_key_is_the_event_id() -> None:
    envelope = stamped("p-1", None)

    assert envelope.idempotency_key == envelope.event_id


def test_a_key_is_never_derived_without_a_player() -> None:
    with pytest.raises(ValueError, match="player id"):
        stamp(envelope_from_json(body(), EVENTS_ROUTE), "k", TraceContext("00-" + "a" * 32))


def test_fingerprint_ignores_what_the_gateway_sets_but_not_what_the_client_sent() -> None:
    first = envelope_from_json(body(), EVENTS_ROUTE)
    again = envelope_from_json(body(), EVENTS_ROUTE)
    assign_player(first, "p-1")
    assign_player(again, "p-1")
    before = fingerprint_of(first)
    stamp(again, "k", TraceContext("00-" + "c" * 32 + "-" + "d" * 16 + "-01"))
    assert fingerprint_of(again) == before

    changed = envelope_from_json(body(payload={"level_id": "1-2"}), EVENTS_ROUTE)
    assign_player(changed, "p-1")
    assert fingerprint_of(changed) != before
