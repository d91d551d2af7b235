"""render_record: how `liveops tail` shows one record, decodable or not. Pure, no broker."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import headers_for
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import PLAYER_ACTIONS
from topics.tail import TailRecord, render_record


def level_completed() -> Envelope:
    envelope = Envelope(event_id="01J0", idempotency_key="idem-1", player_id="player-1")
    envelope.level_completed.level_id = "w1-l3"
    envelope.level_completed.stars = 3
    envelope.client.platform = 99  # type: ignore[assignment]  # a newer client's platform
    envelope.trace.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    return envelope


def record(value: bytes | None, **kwargs: object) -> TailRecord:
    fields: dict[str, object] = {
        "topic": PLAYER_ACTIONS.name,
        "partition": 3,
        "offset": 17,
        "timestamp_ms": 1_764_057_600_123,
        "key": b"player-1",
        "value": value,
        "headers": (),
    }
    fields.update(kwargs)
    return TailRecord(**fields)  # type: ignore[arg-type]  # test-only overrides by name


def as_doc(tail_record: TailRecord) -> dict[str, object]:
    doc: dict[str, object] = json.loads(
        render_record(tail_record, PLAYER_ACTIONS.value_type, as_json=True)
    )
    return doc


def test_json_line_has_metadata_and_value_with_proto_field_names() -> None:
    envelope = level_completed()

    doc = as_doc(record(envelope.SerializeToString(), headers=tuple(headers_for(envelope))))

    assert doc["partition"] == 3
    assert doc["offset"] == 17
    assert doc["timestamp"] == "2025-11-25T08:00:00.123Z"
    assert doc["key"] == "player-1"
    assert doc["headers"] == {
        "event-type": "level_completed",
        "schema-version": "1",
        "traceparent": envelope.trace.traceparent,
    }
    assert doc["value"] == {
        "event_id": "01J0",
        "idempotency_key": "idem-1",
        "player_id": "player-1",
        "client": {"platform": 99},
        "trace": {"traceparent": envelope.trace.traceparent},
        "level_completed": {"level_id": "w1-l3", "stars": 3},
    }
    assert "error" not in doc
    assert "warning" not in doc


def test_human_layout_shows_position_key_headers_then_indented_json() -> None:
    envelope = level_completed()
    tail_record = record(envelope.SerializeToString(), headers=(("event-type", b"x"),))

    text = render_record(tail_record, Envelope, as_json=False)

    head, *body = text.splitlines()
    assert head.startswith(f"{PLAYER_ACTIONS.name} p3@17 2025-11-25T08:00:00.123Z key=player-1")
    assert head.endswith("event-type=x")
    assert json.loads("\n".join(body))["player_id"] == "player-1"


def test_garbage_bytes_give_an_error_with_the_offset_not_an_exception() -> None:
    doc = as_doc(record(b"\xff\xff\xff"))
    text = render_record(record(b"\xff\xff\xff"), Envelope, as_json=False)

    assert "value" not in doc
    assert "not a liveops.v1.Envelope (3 bytes)" in str(doc["error"])
    assert "error at offset 17: not a liveops.v1.Envelope" in text


def test_tombstone_and_missing_key_are_shown_as_such() -> None:
    doc = as_doc(record(None, key=None))

    assert doc["key"] is None
    assert doc["error"] == "record has no value (tombstone)"


def test_bytes_that_parse_as_an_invalid_envelope_carry_a_warning() -> None:
    # Empty bytes are a valid, empty protobuf message: decodable, but no ids and no payload.
    doc = as_doc(record(b""))

    assert doc["value"] == {}
    assert "envelope lacks event_id, idempotency_key, player_id" in str(doc["warning"])


def test_non_utf8_key_and_header_values_are_replaced_not_fatal() -> None:
    doc = as_doc(record(b"", key=b"\xffk", headers=(("h", b"\xfe"),)))

    assert doc["key"] == "\ufffdk"
    assert doc["headers"] == {"h": "\ufffd"}


# No deadline: the machine is shared, a slow example is not a failure.
@settings(deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_render_to_one_json_line(value: bytes) -> None:
    line = render_record(record(value), Envelope, as_json=True)

    doc = json.loads(line)
    assert "\n" not in line
    assert ("value" in doc) != ("error" in doc)
