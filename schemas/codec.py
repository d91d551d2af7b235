"""Encoding, decoding and headers of the one Envelope every topic carries."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import DecodeError
from ulid import ULID

from schemas.errors import InvalidEnvelopeError, UndecodableEventError
from schemas.liveops.v1.envelope_pb2 import Envelope

#: Version of the contract this build speaks; clients send theirs in ClientInfo.schema_version.
SCHEMA_VERSION = 1

HEADER_EVENT_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_TRACEPARENT = "traceparent"

#: Payload names (the oneof field names) that players may send through the gateway.
INPUT_PAYLOADS = frozenset(
    {
        "level_completed",
        "quest_completed",
        "daily_login",
        "match_result",
        "score_submitted",
        "purchase_receipt_submitted",
        "device_token_registered",
        "notification_requested",
        "offer_bought",
    }
)


def new_event_id() -> str:
    """A ULID: unique, and sortable by creation time."""
    return str(ULID())


def now_utc() -> datetime:
    return datetime.now(UTC)


def payload_type(envelope: Envelope) -> str:
    """The name of the payload the envelope carries, or "" when it carries none we know."""
    return envelope.WhichOneof("payload") or ""


def enum_label(enum: EnumTypeWrapper, value: int, prefix: str) -> str | None:
    """An enum value's name without `prefix`, lower case (PLATFORM_IOS -> "ios"), or None
    for a number this build does not know. Proto3 enums are open: a newer client or service
    sends values added to the schema after this worker was built, and `Name()` raises on them.
    """
    try:
        name: str = enum.Name(value)
    except ValueError:
        return None
    return name.removeprefix(prefix).lower()


def encode(envelope: Envelope) -> bytes:
    return envelope.SerializeToString()


def decode(data: bytes | None) -> Envelope:
    """Parse bytes into an Envelope. Unknown fields are kept and survive re-encoding."""
    if data is None:
        raise UndecodableEventError("record has no value (tombstone)")
    envelope = Envelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError as exc:
        raise UndecodableEventError(f"not a liveops.v1.Envelope: {exc}") from exc
    return envelope


def validate(envelope: Envelope) -> Envelope:
    """Check what every event must carry, whatever its payload."""
    if (
        envelope.event_id
        and envelope.idempotency_key
        and envelope.player_id
        and envelope.WhichOneof("payload")
    ):
        return envelope  # the common case, checked without building anything per event
    missing = [
        name for name in ("event_id", "idempotency_key", "player_id") if not getattr(envelope, name)
    ]
    if missing:
        raise InvalidEnvelopeError(f"envelope lacks {', '.join(missing)}")
    if not payload_type(envelope):
        raise InvalidEnvelopeError(
            "envelope carries no known payload (a newer client's event type, or none at all)"
        )
    return envelope


_parse = Envelope.FromString


def decode_valid(data: bytes | None) -> Envelope:
    """validate(decode(data)) for the workers' per-event path: one FromString instead of a new
    Envelope and ParseFromString; undecodable bytes (or none) take decode() for its precise
    ContractError."""
    try:
        envelope = _parse(data)  # type: ignore[arg-type]  # None raises TypeError: handled
    except (DecodeError, TypeError):
        return validate(decode(data))
    return validate(envelope)


def trace_id_of(traceparent: str) -> str:
    """The trace id of a W3C traceparent (`00-<trace-id>-<span-id>-<flags>`), or "".

    What every log line about an event carries as `trace_id`: the part that is the same on
    every hop of the trace (the span id changes at each one)."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else ""


def headers_for(envelope: Envelope) -> list[tuple[str, bytes]]:
    """Kafka headers that let consumers route and trace without decoding the value."""
    headers = [
        (HEADER_EVENT_TYPE, payload_type(envelope).encode()),
        (HEADER_SCHEMA_VERSION, str(envelope.client.schema_version or SCHEMA_VERSION).encode()),
    ]
    if envelope.trace.traceparent:
        headers.append((HEADER_TRACEPARENT, envelope.trace.traceparent.encode()))
    return headers
