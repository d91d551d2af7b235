"""Value types of the runtime: a record as consumed, and a record to publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One Kafka record as polled, detached from aiokafka's type."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    @classmethod
    def from_consumer(cls, record: Any) -> InboundRecord:
        """From an aiokafka ConsumerRecord (untyped: aiokafka ships no type hints)."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple((name, bytes(value)) for name, value in record.headers or ()),
        )

    def header(self, name: str) -> str | None:
        """The last value of a header, decoded, or None."""
        for key, value in reversed(self.headers):
            if key == name:
                return value.decode(errors="replace")
        return None


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record the runtime publishes: an output event, a retry or a dead letter."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
