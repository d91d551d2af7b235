"""Retry and dead-letter headers: the origin and first failure survive every tier."""

from __future__ import annotations

from workers.runtime import headers
from workers.runtime.headers import Failure, failure_headers, replay_headers
from workers.runtime.records import Headers, InboundRecord

INPUT = InboundRecord(
    topic="player.actions.v1",
    partition=4,
    offset=17,
    timestamp_ms=1_000,
    key=b"p1",
    value=b"payload",
    headers=(("event-type", b"daily_login"), ("traceparent", b"00-abc-def-01")),
)


def as_record(topic: str, built: Headers, offset: int = 0) -> InboundRecord:
    return InboundRecord(topic, 0, offset, 5_000, b"p1", b"payload", built)


def test_first_failure_records_origin_and_keeps_own_headers() -> None:
    built = failure_headers(
        INPUT,
        Failure("TransientError", "store answered 503", "abc123"),
        processor="rewards",
        processor_version="7",
        now_ms=2_000,
        due_at_ms=12_000,
    )
    record = as_record("liveops.rewards.retry.10s", built)
    assert record.header("event-type") == "daily_login"
    assert record.header("traceparent") == "00-abc-def-01"
    assert record.header(headers.ORIGINAL_TOPIC) == "player.actions.v1"
    assert record.header(headers.ORIGINAL_PARTITION) == "4"
    assert record.header(headers.ORIGINAL_OFFSET) == "17"
    assert record.header(headers.ORIGINAL_TIMESTAMP) == "1000"
    assert record.header(headers.ATTEMPT) == "1"
    assert record.header(headers.FIRST_FAILURE_AT) == "2000"
    assert record.header(headers.LAST_FAILURE_AT) == "2000"
    assert record.header(headers.DUE_AT) == "12000"
    assert record.header(headers.PROCESSOR_VERSION) == "7"
    assert record.header(headers.STACK_DIGEST) == "abc123"


def test_later_failure_keeps_origin_and_first_failure_and_counts_attempts() -> None:
    first = as_record(
        "liveops.rewards.retry.10s",
        failure_headers(
            INPUT,
            Failure("TransientError", "503"),
            processor="r",
            processor_version="1",
            now_ms=2_000,
            due_at_ms=12_000,
        ),
    )
    second = as_record(
        "liveops.rewards.dlq",
        failure_headers(
            first,
            Failure("PermanentError", "bad"),
            processor="r",
            processor_version="1",
            now_ms=30_000,
        ),
    )
    assert second.header(headers.ORIGINAL_TOPIC) == "player.actions.v1"
    assert second.header(headers.ORIGINAL_OFFSET) == "17"
    assert second.header(headers.FIRST_FAILURE_AT) == "2000"
    assert second.header(headers.LAST_FAILURE_AT) == "30000"
    assert second.header(headers.ATTEMPT) == "2"
    assert second.header(headers.ERROR_CLASS) == "PermanentError"
    # No stale due time on a dead letter, and each failure header appears once
    assert second.header(headers.DUE_AT) is None
    names = [name for name, _ in second.headers]
    assert len(names) == len(set(names))


def test_long_messages_are_cut() -> None:
    built = failure_headers(
        INPUT, Failure("E", "x" * 5000), processor="p", processor_version="1", now_ms=1
    )
    message = as_record("t", built).header(headers.ERROR_MESSAGE) or ""
    assert len(message) == headers.MAX_MESSAGE_CHARS


def test_replay_restarts_attempts_and_says_where_it_came_from() -> None:
    letter = as_record(
        "liveops.rewards.dlq",
        failure_headers(INPUT, Failure("E", "m"), processor="p", processor_version="1", now_ms=1),
        offset=9,
    )
    replayed = as_record("player.actions.v1", replay_headers(letter, now_ms=99))
    assert replayed.header(headers.ATTEMPT) is None
    assert replayed.header(headers.REPLAYED_AT) == "99"
    assert replayed.header(headers.REPLAYED_FROM) == "liveops.rewards.dlq/0/9"
    assert replayed.header(headers.ERROR_CLASS) == "E"  # the history stays visible
