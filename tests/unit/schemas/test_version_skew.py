"""Version skew is a feature: older and newer clients' envelopes meet this build's workers.

Older clients omit fields added later; newer clients send fields, enum values and payloads this
build does not know. What we promise (schemas/codec.py, envelope.proto):
- an older envelope decodes and validates as long as it carries the ids and a known payload;
- unknown fields (top level or inside a payload) and unknown enum values are kept and survive
  a decode/encode round trip byte for byte, so forwarding (retry, dead letter) loses nothing;
- an unknown payload means "no payload": validate() refuses it with a clear reason;
- bytes that are not an Envelope raise UndecodableEventError, never anything else.
"""

from __future__ import annotations

import pytest
from google.protobuf import unknown_fields
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import (
    HEADER_EVENT_TYPE,
    HEADER_SCHEMA_VERSION,
    HEADER_TRACEPARENT,
    SCHEMA_VERSION,
    decode,
    encode,
    headers_for,
    payload_type,
    validate,
)
from schemas.errors import ContractError, InvalidEnvelopeError, UndecodableEventError
from schemas.liveops.v1.actions_pb2 import LevelCompleted, MatchOutcome
from schemas.liveops.v1.envelope_pb2 import Envelope, Platform

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
LEVEL_COMPLETED_FIELD = 20
# Read from the descriptors, not hardcoded: payloads are added to the schema all the time.
ENVELOPE_FIELDS = frozenset(Envelope.DESCRIPTOR.fields_by_number)
LEVEL_COMPLETED_FIELDS = frozenset(LevelCompleted.DESCRIPTOR.fields_by_number)
#: An output payload number (40-59) this build does not know: what a newer worker may send.
UNKNOWN_PAYLOAD_FIELD = max(n for n in range(40, 60) if n not in ENVELOPE_FIELDS)
#: 19000-19999 are reserved by protobuf itself.
_MAX_FIELD = 18_999

# Raw protobuf wire format, to play a client built from a schema this build has never seen.


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    return varint(number << 3 | 0) + varint(value)


def bytes_field(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def ids(envelope: Envelope, event_id: str = "01JD0000000000000000000000") -> Envelope:
    envelope.event_id = event_id
    envelope.idempotency_key = f"idem-{event_id}"
    envelope.player_id = "player-42"
    return envelope


# (a) Older clients


def test_older_client_envelope_without_client_trace_or_occurred_at_is_valid() -> None:
    # Given an event from a build that predates ClientInfo, TraceContext and occurred_at
    old = ids(Envelope())
    old.daily_login.streak_days = 3
    old.received_at.FromSeconds(1_764_057_600)

    # When a worker decodes and validates it
    envelope = validate(decode(encode(old)))

    # Then it is accepted, with the missing parts simply absent
    assert payload_type(envelope) == "daily_login"
    assert not envelope.HasField("client")
    assert not envelope.HasField("trace")
    assert not envelope.HasField("occurred_at")
    assert envelope.client.schema_version == 0
    assert envelope.daily_login.streak_days == 3


@pytest.mark.parametrize(
    "missing", [("event_id",), ("player_id",), ("event_id", "idempotency_key", "player_id")]
)
def test_envelope_without_ids_is_refused_naming_them(missing: tuple[str, ...]) -> None:
    envelope = ids(Envelope())
    envelope.daily_login.streak_days = 1
    for name in missing:
        envelope.ClearField(name)

    with pytest.raises(InvalidEnvelopeError) as caught:
        validate(decode(encode(envelope)))

    assert str(caught.value) == f"envelope lacks {', '.join(missing)}"
    assert not caught.value.retriable


# (b) Newer clients: unknown fields and enum values


def newer_client_bytes(envelope_unknown: bytes, payload_unknown: bytes) -> bytes:
    """An envelope as a newer build serializes it: known fields in order, then the payload
    (with fields we do not know at its end), then top-level fields we do not know."""
    head = ids(Envelope())
    head.client.platform = Platform.PLATFORM_IOS
    head.client.schema_version = SCHEMA_VERSION + 1
    head.trace.traceparent = TRACEPARENT
    payload = LevelCompleted(level_id="w2-l7", stars=2).SerializeToString()
    return (
        encode(head)
        + bytes_field(LEVEL_COMPLETED_FIELD, payload + payload_unknown)
        + envelope_unknown
    )


def unknown(message: Message) -> list[tuple[int, object]]:
    fields = unknown_fields.UnknownFieldSet(message)
    return [(fields[i].field_number, fields[i].data) for i in range(len(fields))]


def test_unknown_fields_are_kept_at_top_level_and_inside_the_payload() -> None:
    data = newer_client_bytes(
        envelope_unknown=bytes_field(15, b"new top-level field"),
        payload_unknown=varint_field(9, 777),
    )

    envelope = validate(decode(data))

    assert envelope.level_completed.level_id == "w2-l7"
    assert unknown(envelope) == [(15, b"new top-level field")]
    assert unknown(envelope.level_completed) == [(9, 777)]
    assert encode(envelope) == data


def test_unknown_enum_values_decode_and_survive_re_encoding() -> None:
    newer = ids(Envelope())
    newer.client.platform = 99  # type: ignore[assignment]  # a platform added after this build
    newer.match_result.outcome = 7  # type: ignore[assignment]  # an outcome added later
    data = encode(newer)

    envelope = validate(decode(data))

    assert envelope.client.platform == 99
    assert envelope.match_result.outcome == 7
    assert 7 not in MatchOutcome.values()
    assert encode(envelope) == data


_unused_envelope_numbers = st.integers(1, _MAX_FIELD).filter(lambda n: n not in ENVELOPE_FIELDS)
_unused_level_numbers = st.integers(1, _MAX_FIELD).filter(lambda n: n not in LEVEL_COMPLETED_FIELDS)


def _unknown_fields(numbers: st.SearchStrategy[int]) -> st.SearchStrategy[bytes]:
    one = st.one_of(
        st.builds(varint_field, numbers, st.integers(0, 2**64 - 1)),
        st.builds(bytes_field, numbers, st.binary(max_size=32)),
    )
    return st.lists(one, max_size=4).map(b"".join)


# No deadline: the machine is shared, a slow example is not a failure.
@settings(deadline=None)
@given(_unknown_fields(_unused_envelope_numbers), _unknown_fields(_unused_level_numbers))
def test_any_unknown_fields_survive_a_round_trip_byte_for_byte(top: bytes, inner: bytes) -> None:
    data = newer_client_bytes(envelope_unknown=top, payload_unknown=inner)

    envelope = validate(decode(data))

    assert payload_type(envelope) == "level_completed"
    assert encode(envelope) == data


# (c) A payload this build does not know


def test_unknown_payload_number_means_no_payload_and_is_refused_clearly() -> None:
    # A number in the outputs' range (59 as this is written) not (yet) in this build's oneof.
    data = encode(ids(Envelope())) + bytes_field(UNKNOWN_PAYLOAD_FIELD, varint_field(1, 5))

    envelope = decode(data)

    assert payload_type(envelope) == ""
    with pytest.raises(InvalidEnvelopeError, match=r"carries no known payload \(a newer client"):
        validate(envelope)
    # Kept intact, so a dead-letter copy still holds the newer client's payload.
    assert encode(envelope) == data


# (d) Not an Envelope at all


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",
        b"hello world",
        b'{"event_id": "json, not protobuf"}',
        # A valid envelope cut in the middle of its payload.
        newer_client_bytes(b"", b"")[:-3],
    ],
    ids=["invalid-tag", "text", "json", "truncated"],
)
def test_garbage_bytes_are_undecodable(data: bytes) -> None:
    with pytest.raises(UndecodableEventError, match=r"^not a liveops\.v1\.Envelope"):
        decode(data)


def test_tombstone_is_undecodable_and_contract_errors_are_not_retriable() -> None:
    with pytest.raises(UndecodableEventError, match="tombstone") as caught:
        decode(None)

    assert isinstance(caught.value, ContractError)
    assert not caught.value.retriable


# No deadline: the machine is shared, a slow example is not a failure.
@settings(deadline=None)
@given(st.binary(max_size=128))
def test_decode_of_any_bytes_returns_an_envelope_or_raises_undecodable(data: bytes) -> None:
    try:
        envelope = decode(data)
    except UndecodableEventError:
        return
    assert isinstance(envelope, Envelope)


# (e) Headers


def test_headers_carry_event_type_client_schema_version_and_traceparent() -> None:
    envelope = decode(newer_client_bytes(b"", b""))

    assert headers_for(envelope) == [
        (HEADER_EVENT_TYPE, b"level_completed"),
        (HEADER_SCHEMA_VERSION, str(SCHEMA_VERSION + 1).encode()),
        (HEADER_TRACEPARENT, TRACEPARENT.encode()),
    ]


def test_older_client_headers_default_the_schema_version_and_omit_traceparent() -> None:
    old = ids(Envelope())
    old.quest_completed.quest_id = "q-1"
    old.occurred_at.CopyFrom(Timestamp(seconds=1_764_057_600))

    headers = dict(headers_for(decode(encode(old))))

    assert headers == {
        HEADER_EVENT_TYPE: b"quest_completed",
        HEADER_SCHEMA_VERSION: str(SCHEMA_VERSION).encode(),
    }
