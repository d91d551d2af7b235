"""Read a catalog topic and show each record as readable JSON: `liveops tail TOPIC`.

A debugging tool: it never joins a consumer group and never commits, so it cannot disturb the
workers; it assigns every partition and seeks to the beginning or the end. A record that does
not decode prints an error line with its offset instead of stopping the tail. Sensitive fields
(receipts, purchase and push tokens: `[debug_redact = true]` in the .proto) are shown as their
size only (schemas/redaction.py): what the tail prints ends up pasted in chats and tickets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from google.protobuf.message import DecodeError, Message

from schemas.codec import validate
from schemas.errors import InvalidEnvelopeError, LiveopsError, UndecodableEventError
from schemas.liveops.v1.envelope_pb2 import Envelope
from schemas.redaction import redacted_dict, scrub, sensitive_values
from topics.admin import BrokerUnreachableError
from topics.catalog import Topic
from topics.offsets import EndOffsetsUnconfirmedError, end_offsets
from topics.settings import KafkaSettings

#: Longest wait in one poll, so an idle timeout is noticed soon after it passes.
_POLL_MS = 500


class TopicNotOnClusterError(LiveopsError):
    """The topic is in the catalog but the cluster does not have it (yet)."""


@dataclass(frozen=True)
class TailOptions:
    from_beginning: bool = False
    #: Stop after this many records (decoded or not); None follows forever.
    max_records: int | None = None
    #: Stop after this many seconds without a new record; None waits forever.
    idle_timeout_s: float | None = None
    #: One JSON object per line instead of the indented, human layout.
    as_json: bool = False


@dataclass(frozen=True)
class TailRecord:
    """The parts of a Kafka record the tail shows."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def decode_value(value_type: type[Message], data: bytes | None) -> Message:
    """Parse a record value; UndecodableEventError says why it is not a `value_type`."""
    if data is None:
        raise UndecodableEventError("record has no value (tombstone)")
    message = value_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise UndecodableEventError(
            f"not a {message.DESCRIPTOR.full_name} ({len(data)} bytes): {exc}"
        ) from exc
    return message


def render_record(record: TailRecord, value_type: type[Message], *, as_json: bool) -> str:
    """One record as text: metadata, then the value as JSON with proto field names.

    Sensitive fields are redacted, and so are their values wherever a header quotes them (a
    dead letter's `liveops-error-message` may quote what the handler choked on).
    """
    doc: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _iso(record.timestamp_ms),
        "key": _text(record.key),
        "headers": {name: _text(value) for name, value in record.headers},
    }
    try:
        message = decode_value(value_type, record.value)
    except UndecodableEventError as exc:
        doc["error"] = str(exc)
    else:
        doc["value"] = redacted_dict(message)
        secrets = sensitive_values(message)
        if secrets:
            doc["headers"] = {
                name: None if text is None else scrub(text, secrets)
                for name, text in doc["headers"].items()
            }
        if isinstance(message, Envelope):
            # Garbage sometimes parses as an empty envelope; say so rather than print {}.
            try:
                validate(message)
            except InvalidEnvelopeError as exc:
                doc["warning"] = str(exc)
    if as_json:
        return json.dumps(doc, sort_keys=False)
    return _human(doc)


def _human(doc: dict[str, Any]) -> str:
    headers = " ".join(f"{name}={value}" for name, value in doc["headers"].items())
    head = (
        f"{doc['topic']} p{doc['partition']}@{doc['offset']} {doc['timestamp']} "
        f"key={doc['key']}" + (f" {headers}" if headers else "")
    )
    if "error" in doc:
        return f"{head}\n  error at offset {doc['offset']}: {doc['error']}"
    lines = [head]
    if "warning" in doc:
        lines.append(f"  warning: {doc['warning']}")
    lines.append(json.dumps(doc["value"], indent=2))
    return "\n".join(lines)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _iso(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def tail_topic(
    settings: KafkaSettings, topic: Topic, options: TailOptions, emit: Callable[[str], None]
) -> int:
    """Print records of `topic` through `emit` until max_records or the idle timeout.

    Returns how many records were shown. Raises BrokerUnreachableError and
    TopicNotOnClusterError.
    """
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), group_id=None, enable_auto_commit=False)
    try:
        try:
            await consumer.start()
            # A metadata refresh: partitions_for_topic only answers from cached metadata.
            await consumer.topics()
        except KafkaConnectionError as exc:
            raise BrokerUnreachableError(
                f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}"
            ) from exc
        numbers = consumer.partitions_for_topic(topic.name)
        if not numbers:
            raise TopicNotOnClusterError(
                f"{topic.name} is in the catalog but not on the cluster "
                "(create it with `liveops topics apply`)"
            )
        partitions = [TopicPartition(topic.name, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        if options.from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            # Not seek_to_end(): the embedded broker's ListOffsets falls short of the end, and
            # the tail would show records written before it started.
            try:
                ends = await end_offsets(settings, partitions)
            except (KafkaError, EndOffsetsUnconfirmedError) as exc:
                raise BrokerUnreachableError(f"cannot read the end of {topic.name}: {exc}") from exc
            for tp, offset in ends.items():
                consumer.seek(tp, offset)
        return await _follow(consumer, topic, options, emit)
    finally:
        await consumer.stop()


async def _follow(
    consumer: Any, topic: Topic, options: TailOptions, emit: Callable[[str], None]
) -> int:
    shown = 0
    last_record_at = time.monotonic()
    while options.max_records is None or shown < options.max_records:
        remaining = None if options.max_records is None else options.max_records - shown
        batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=remaining)
        if not batches:
            idle_s = time.monotonic() - last_record_at
            if options.idle_timeout_s is not None and idle_s >= options.idle_timeout_s:
                break
            continue
        last_record_at = time.monotonic()
        for partition in sorted(batches, key=lambda tp: tp.partition):
            for record in batches[partition]:
                tail_record = TailRecord(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    timestamp_ms=record.timestamp,
                    key=record.key,
                    value=record.value,
                    headers=tuple(record.headers),
                )
                emit(render_record(tail_record, topic.value_type, as_json=options.as_json))
                shown += 1
    return shown
