"""Value types of the runtime: a record as consumed, and a record to publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from schemas.codec import encode, headers_for
from workers.runtime.processor import OutputEvent

#: Kafka allows a header without a value (null): kept as None, as it came.
Headers = tuple[tuple[str, bytes | None], ...]


class InboundRecord(NamedTuple):
    """One Kafka record as polled, detached from aiokafka's type.

    A NamedTuple rather than a frozen dataclass: one is built per polled record, and a tuple
    is built in a third of the time (a frozen dataclass sets each field through
    object.__setattr__). Just as immutable.
    """

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
        raw_headers = record.headers
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
            # aiokafka's (name, bytes | None) pairs, copied as they are: a null value stays
            # None (converting each value, as we once did, raised on it and crashed the poll).
            tuple(raw_headers) if raw_headers else (),
        )

    def header(self, name: str) -> str | None:
        """The last value of a header, decoded; None when it is absent or has no value."""
        for key, value in reversed(self.headers):
            if key == name:
                return None if value is None else value.decode(errors="replace")
        return None


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record the runtime publishes: an output event, a retry or a dead letter."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    @classmethod
    def of_output(cls, output: OutputEvent) -> OutboundRecord:
        """An output event as published: keyed by player id, with the codec's headers."""
        envelope = output.envelope
        return cls(
            output.topic.name,
            envelope.player_id.encode(),
            encode(envelope),
            tuple(headers_for(envelope)),
        )
