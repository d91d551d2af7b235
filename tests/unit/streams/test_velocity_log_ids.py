"""A record the velocity job rejects is logged with the player and trace it still carries."""

from __future__ import annotations

from schemas.codec import HEADER_TRACEPARENT, trace_id_of
from workers.streams.velocity_job import as_text, header_text

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_traceparent_header_is_found_in_pairs_and_in_a_mapping() -> None:
    pairs = [("other", b"x"), (HEADER_TRACEPARENT, TRACEPARENT.encode())]
    mapping = {HEADER_TRACEPARENT.encode(): TRACEPARENT.encode()}

    assert header_text(pairs, HEADER_TRACEPARENT) == TRACEPARENT
    assert header_text(mapping, HEADER_TRACEPARENT) == TRACEPARENT
    assert trace_id_of(header_text(pairs, HEADER_TRACEPARENT)) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_record_without_the_header_or_key_logs_empty_ids() -> None:
    assert header_text(None, HEADER_TRACEPARENT) == ""
    assert header_text([], HEADER_TRACEPARENT) == ""
    assert as_text(None) == ""
    assert as_text(b"player-\xff") == "player-\ufffd"
