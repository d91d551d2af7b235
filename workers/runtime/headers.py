"""The headers that explain a retry record or a dead letter.

A retried or dead-lettered record keeps the original key, value and headers, and gains these.
Where it came from (original topic, partition, offset, timestamp) and when it first failed are
kept from the first failure across every retry tier; the rest describe the latest failure.
Times are milliseconds since the epoch, like Kafka record timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.runtime.records import Headers, InboundRecord

ORIGINAL_TOPIC = "liveops-original-topic"
ORIGINAL_PARTITION = "liveops-original-partition"
ORIGINAL_OFFSET = "liveops-original-offset"
ORIGINAL_TIMESTAMP = "liveops-original-timestamp"
ERROR_CLASS = "liveops-error-class"
ERROR_MESSAGE = "liveops-error-message"
STACK_DIGEST = "liveops-stack-digest"
ATTEMPT = "liveops-attempt"
FIRST_FAILURE_AT = "liveops-first-failure-at"
LAST_FAILURE_AT = "liveops-last-failure-at"
PROCESSOR = "liveops-processor"
PROCESSOR_VERSION = "liveops-processor-version"
DUE_AT = "liveops-due-at"
#: On records republished by `liveops dlq replay`: when, and from which dead-letter offset.
REPLAYED_AT = "liveops-replayed-at"
REPLAYED_FROM = "liveops-replayed-from"

_KEPT_FROM_FIRST_FAILURE = (
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    ORIGINAL_TIMESTAMP,
    FIRST_FAILURE_AT,
)
_FAILURE_HEADERS = frozenset(
    {
        *_KEPT_FROM_FIRST_FAILURE,
        ERROR_CLASS,
        ERROR_MESSAGE,
        STACK_DIGEST,
        ATTEMPT,
        LAST_FAILURE_AT,
        PROCESSOR,
        PROCESSOR_VERSION,
        DUE_AT,
    }
)
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an event failed: the error class, its message and where in the code (digest)."""

    error_class: str
    message: str
    stack_digest: str = ""


def attempt_of(record: InboundRecord) -> int:
    """How many times this event failed before (0 for a record from an input topic)."""
    value = record.header(ATTEMPT)
    return int(value) if value and value.isdigit() else 0


def failure_headers(
    record: InboundRecord,
    failure: Failure,
    *,
    processor: str,
    processor_version: str,
    now_ms: int,
    due_at_ms: int | None = None,
) -> Headers:
    """The record's own headers plus the failure headers, for a retry tier or the dead letters."""
    first = {name: record.header(name) for name in _KEPT_FROM_FIRST_FAILURE}
    own = tuple((name, value) for name, value in record.headers if name not in _FAILURE_HEADERS)
    added = {
        ORIGINAL_TOPIC: first[ORIGINAL_TOPIC] or record.topic,
        ORIGINAL_PARTITION: first[ORIGINAL_PARTITION] or str(record.partition),
        ORIGINAL_OFFSET: first[ORIGINAL_OFFSET] or str(record.offset),
        ORIGINAL_TIMESTAMP: first[ORIGINAL_TIMESTAMP] or str(record.timestamp_ms),
        ERROR_CLASS: failure.error_class,
        ERROR_MESSAGE: failure.message[:MAX_MESSAGE_CHARS],
        STACK_DIGEST: failure.stack_digest,
        ATTEMPT: str(attempt_of(record) + 1),
        FIRST_FAILURE_AT: first[FIRST_FAILURE_AT] or str(now_ms),
        LAST_FAILURE_AT: str(now_ms),
        PROCESSOR: processor,
        PROCESSOR_VERSION: processor_version,
    }
    if due_at_ms is not None:
        added[DUE_AT] = str(due_at_ms)
    return own + tuple((name, value.encode()) for name, value in added.items())


def replay_headers(record: InboundRecord, *, now_ms: int) -> Headers:
    """Headers of a dead letter republished to its original topic: the failure headers stay
    (so the history is visible), the attempt count restarts, and the replay is marked."""
    own = tuple(
        (name, value)
        for name, value in record.headers
        if name not in {ATTEMPT, DUE_AT, REPLAYED_AT, REPLAYED_FROM}
    )
    where = f"{record.topic}/{record.partition}/{record.offset}"
    return (*own, (REPLAYED_AT, str(now_ms).encode()), (REPLAYED_FROM, where.encode()))
