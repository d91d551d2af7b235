"""From a request body to the Envelope the gateway publishes, refusing anything invalid.

Two body formats: JSON in the documented shape (`type`, `occurred_at`, `client`, `payload`,
optional `player_id`), or a serialized Envelope (`application/x-protobuf`). Either way the
result carries exactly one payload clients may send on this route, the client's clock and
build; the gateway then fills in what only it may set (`stamp`): event id, receive time, trace,
idempotency key. Unknown fields are refused in both formats: the gateway is the contract's gate,
so it is deployed before clients send what it does not know.

Workers dedup on the envelope's idempotency key alone, across every player, but a client
chooses its Idempotency-Key for its own player only (often a predictable one, such as
"level-w1-l3"). So the client's key never reaches the envelope as it is: `envelope_key_for`
derives a globally unique key from (player, client key).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from producers.gateway.headers import TraceContext
from producers.gateway.problems import bad_request, forbidden, unprocessable
from schemas.codec import INPUT_PAYLOADS, new_event_id, now_utc, payload_type
from schemas.liveops.v1.envelope_pb2 import ClientInfo, Envelope, Platform

PURCHASE = "purchase_receipt_submitted"
DEVICE = "device_token_registered"
JSON_FIELDS = frozenset({"type", "occurred_at", "client", "payload", "player_id"})
CLIENT_FIELDS = frozenset({"platform", "app_version", "build", "schema_version"})
PLATFORMS: dict[str, Platform] = {
    "ios": Platform.PLATFORM_IOS,
    "android": Platform.PLATFORM_ANDROID,
    "web": Platform.PLATFORM_WEB,
    "server": Platform.PLATFORM_SERVER,
}
#: UUIDv5 namespace of the envelope keys derived from (player, client Idempotency-Key). Never
#: change it: every derived key would change with it, and a client retry straddling that
#: deploy would no longer dedup in the workers.
CLIENT_KEY_NAMESPACE = uuid.UUID("abd0772a-91ca-440e-8123-9524f7b2217e")
#: What a malformed JSON document or payload can raise while being parsed: JSONDecodeError is a
#: ValueError, json_format.ParseError is not; a deeply nested document raises RecursionError.
_PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, RecursionError)


@dataclass(frozen=True)
class EventRoute:
    """A POST route and the payloads it accepts."""

    path: str
    payloads: frozenset[str]
    #: Whether the JSON body must name its type (a single-payload route knows it).
    type_required: bool


EVENTS_ROUTE = EventRoute("/v1/events", INPUT_PAYLOADS - {PURCHASE, DEVICE}, True)
PURCHASES_ROUTE = EventRoute("/v1/purchases", frozenset({PURCHASE}), False)
DEVICES_ROUTE = EventRoute("/v1/devices", frozenset({DEVICE}), False)
EVENT_ROUTES = (EVENTS_ROUTE, PURCHASES_ROUTE, DEVICES_ROUTE)


def envelope_from_json(body: bytes, route: EventRoute) -> Envelope:
    """Parse the documented JSON shape; 400 for malformed input, 422 for an unknown type."""
    document = _load_json_object(body)
    unknown = sorted(set(document) - JSON_FIELDS)
    if unknown:
        raise bad_request(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(JSON_FIELDS))}"
        )
    name = _payload_name(document.get("type"), route)
    envelope = Envelope()
    player_id = document.get("player_id")
    if player_id is not None:
        if not isinstance(player_id, str):
            raise bad_request("player_id must be a string")
        try:
            envelope.player_id = player_id
        except _PARSE_ERRORS:
            raise bad_request("player_id is not valid UTF-8 text") from None
    occurred_at = document.get("occurred_at")
    if not isinstance(occurred_at, str):
        raise bad_request("occurred_at is required: an RFC 3339 time such as 2026-01-31T12:00:00Z")
    try:
        envelope.occurred_at.FromJsonString(occurred_at)
    except _PARSE_ERRORS as exc:
        raise bad_request(f"occurred_at is not an RFC 3339 time: {exc}") from None
    _parse_client(document.get("client"), envelope.client)
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise bad_request(f"payload is required: an object with the fields of {name}")
    target = getattr(envelope, name)
    try:
        json_format.ParseDict(payload, target, ignore_unknown_fields=False)
    except _PARSE_ERRORS as exc:
        raise bad_request(f"payload is not a valid {name}: {exc}") from None
    target.SetInParent()  # an empty payload ({}) still selects the oneof
    return envelope


def envelope_from_protobuf(body: bytes, route: EventRoute) -> Envelope:
    """Parse a serialized Envelope; the gateway later overwrites the fields it owns."""
    envelope = Envelope()
    try:
        envelope.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise bad_request(f"body is not a serialized liveops.v1.Envelope: {exc}") from None
    name = payload_type(envelope)
    if not name and _has_unknown_fields(envelope):
        raise unprocessable(
            "unknown-event-type",
            "Unknown event type",
            "the envelope carries a payload this gateway does not know",
        )
    if not name:
        raise bad_request("the envelope carries no payload")
    _check_payload_name(name, route)
    # Fields a newer client knows and this build does not are kept, not refused: they reach
    # Kafka as sent and survive every decode/encode in the fleet (version skew by design).
    if not envelope.HasField("occurred_at"):
        raise bad_request("the envelope lacks occurred_at")
    try:
        envelope.occurred_at.ToJsonString()
    except _PARSE_ERRORS as exc:
        raise bad_request(f"occurred_at is out of range: {exc}") from None
    if envelope.client.platform not in PLATFORMS.values():
        raise bad_request(
            f"client.platform {envelope.client.platform} is missing or not one this gateway "
            f"knows ({', '.join(PLATFORMS)})"
        )
    return envelope


def assign_player(envelope: Envelope, player_id: str) -> None:
    """Set the token's player; 403 when the body speaks for someone else."""
    if envelope.player_id and envelope.player_id != player_id:
        raise forbidden("the event's player_id is not the player of the bearer token")
    envelope.player_id = player_id


def fingerprint_of(envelope: Envelope) -> str:
    """What makes two requests the same request: everything the client sent (not the trace)."""
    copy = Envelope()
    copy.CopyFrom(envelope)
    for field in ("event_id", "idempotency_key", "received_at", "trace"):
        copy.ClearField(field)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def envelope_key_for(player_id: str, client_key: str) -> str:
    """The envelope's idempotency key for a player's Idempotency-Key: a UUIDv5 (36 characters).

    Globally unique: two players sending the same key get different envelope keys, so neither
    event is dropped as the other's duplicate. Deterministic: the same player's retry gets the
    same envelope key, so the workers still dedup it after the gateway's own idempotency
    record has expired. The player id is length-prefixed, so no other (player, key) pair
    names the same text; the result fits VARCHAR(191) whatever the two lengths.
    """
    if not player_id:
        raise ValueError("an envelope key needs the player id")
    return str(uuid.uuid5(CLIENT_KEY_NAMESPACE, f"{len(player_id)}:{player_id}:{client_key}"))


def stamp(envelope: Envelope, client_key: str | None, trace: TraceContext) -> Envelope:
    """Fill in what only the gateway sets: event id, receive time, idempotency key, trace.

    Call it after `assign_player`: the idempotency key is derived from the envelope's player
    and the client's Idempotency-Key (`envelope_key_for`), or is the event id without one.
    """
    envelope.event_id = new_event_id()
    envelope.idempotency_key = (
        envelope_key_for(envelope.player_id, client_key) if client_key else envelope.event_id
    )
    envelope.received_at.FromDatetime(now_utc())
    envelope.trace.traceparent = trace.traceparent
    envelope.trace.tracestate = trace.tracestate
    return envelope


def _load_json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(
            body, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
        )
    except _PARSE_ERRORS as exc:
        raise bad_request(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise bad_request("body must be a JSON object")
    return document


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key given twice is ambiguous (parsers disagree on which wins): refuse it."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _payload_name(value: object, route: EventRoute) -> str:
    if value is None and not route.type_required:
        (only,) = route.payloads
        return only
    if not isinstance(value, str) or not value:
        raise bad_request("type is required: the name of the event's payload, a string")
    _check_payload_name(value, route)
    return value


def _check_payload_name(name: str, route: EventRoute) -> None:
    if name not in INPUT_PAYLOADS:
        raise unprocessable(
            "unknown-event-type",
            "Unknown event type",
            f"{name[:64]!r} is not an event type clients may send; known: "
            f"{', '.join(sorted(INPUT_PAYLOADS))}",
        )
    if name not in route.payloads:
        other = next(r.path for r in EVENT_ROUTES if name in r.payloads)
        raise unprocessable(
            "wrong-route", "Event type not accepted here", f"send {name} to POST {other}"
        )


def _parse_client(value: object, client: ClientInfo) -> None:
    if not isinstance(value, dict):
        raise bad_request(f"client is required: an object with {', '.join(sorted(CLIENT_FIELDS))}")
    unknown = sorted(set(value) - CLIENT_FIELDS)
    if unknown:
        raise bad_request(f"unknown client field(s) {', '.join(map(repr, unknown))}")
    platform = value.get("platform")
    if not isinstance(platform, str) or platform not in PLATFORMS:
        raise bad_request(f"client.platform must be one of {', '.join(PLATFORMS)}")
    rest = {key: item for key, item in value.items() if key != "platform"}
    try:
        json_format.ParseDict(rest, client, ignore_unknown_fields=False)
    except _PARSE_ERRORS as exc:
        raise bad_request(f"client is not valid: {exc}") from None
    client.platform = PLATFORMS[platform]


def _has_unknown_fields(envelope: Envelope) -> bool:
    """Whether the envelope, at any depth, holds fields this build does not define."""
    stripped = Envelope()
    stripped.CopyFrom(envelope)
    stripped.DiscardUnknownFields()
    return stripped.SerializeToString(deterministic=True) != envelope.SerializeToString(
        deterministic=True
    )
