"""Event plans: thousands of envelopes with known expected effects, duplicates and garbage.

A plan is built once, deterministically from a seed, and says both what goes onto the topic (in
order) and what the probe processor must end up having applied: each idempotency key exactly
once, whatever was delivered twice or thrice, killed, rebalanced or flushed on the way.

Duplicates are what clients and producers really send: a copy with the same event id (a
producer retry, often right behind the original) or with a new event id and the same
idempotency key (a client retry through another gateway, some way later in the stream).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata
from google.protobuf.timestamp_pb2 import Timestamp

from schemas.codec import encode, headers_for, new_event_id, now_utc
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import Topic
from topics.settings import KafkaSettings

#: Header that names a garbage record, so the checker finds it again in the dead letters.
MARKER_HEADER = "fault-test-marker"
#: How far behind its original a client-retry copy may land, in records.
RETRY_COPY_WINDOW = 300
SEND_CHUNK = 500

#: Fills an envelope's payload, drawing what it needs from the plan's seeded generator.
PayloadFiller = Callable[[random.Random, Envelope], None]


class GarbageKind(StrEnum):
    UNDECODABLE = "undecodable"
    NO_PLAYER_ID = "no-player-id"
    NO_PAYLOAD = "no-payload"


#: Error class named in the dead-letter headers for each kind of garbage.
EXPECTED_ERROR_CLASS = {
    GarbageKind.UNDECODABLE: "UndecodableEventError",
    GarbageKind.NO_PLAYER_ID: "InvalidEnvelopeError",
    GarbageKind.NO_PAYLOAD: "InvalidEnvelopeError",
}
#: What the dead letter's error message must say for each kind (schemas/codec.py's words).
EXPECTED_REASON = {
    GarbageKind.UNDECODABLE: "not a liveops.v1.Envelope",
    GarbageKind.NO_PLAYER_ID: "lacks player_id",
    GarbageKind.NO_PAYLOAD: "no known payload",
}

#: Bytes that can never parse as an Envelope: field 0, wire type 7, then noise.
_UNDECODABLE = b"\x07\xff\xfe garbage from a broken client"


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record to produce, in plan order."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class EventPlan:
    """What to send, and what must come out of it."""

    records: list[Record] = field(default_factory=list)
    #: idempotency key -> player id, for every event that must be applied exactly once.
    expected: dict[str, str] = field(default_factory=dict)
    #: idempotency key -> every event id its copies carry (any of them may be the applied one).
    event_ids: dict[str, set[str]] = field(default_factory=dict)
    #: marker -> kind, for every garbage record that must land in the dead letters.
    garbage: dict[str, GarbageKind] = field(default_factory=dict)
    #: idempotency key -> the original envelope (every copy carries the same payload), from
    #: which a checker computes the effects the event must have.
    sources: dict[str, Envelope] = field(default_factory=dict)

    @property
    def expected_counts(self) -> Counter[str]:
        """Applied events per player, as the probe's Redis hash must hold them."""
        return Counter(self.expected.values())

    @property
    def deliveries(self) -> int:
        return len(self.records)


def build_plan(
    prefix: str,
    *,
    events: int,
    players: int = 40,
    copies: tuple[int, ...] = (1,),
    garbage_every: int = 0,
    seed: int = 7,
    payload: PayloadFiller | None = None,
) -> EventPlan:
    """`events` distinct events for `players` players, each delivered `rng.choice(copies)` times.

    Every id starts with `prefix` (the test's unique name), so state in the shared MySQL and
    the broker is this test's alone. With garbage_every=N, one record in N is garbage, cycling
    through the GarbageKind values. `payload` fills each event (default: a daily login, what
    the probe counts); event i was received at the gateway i seconds after the first.
    """
    rng = random.Random(seed)
    plan = EventPlan()
    placed: list[tuple[float, int, Record]] = []
    first_received = now_utc() - timedelta(seconds=events)
    for index in range(events):
        player_id = f"{prefix}-p{rng.randrange(players):03d}"
        idempotency_key = f"{prefix}-k{index:06d}"
        envelope = _envelope(player_id, idempotency_key, first_received, index)
        (payload or fill_daily_login)(rng, envelope)
        plan.expected[idempotency_key] = player_id
        plan.event_ids[idempotency_key] = {envelope.event_id}
        plan.sources[idempotency_key] = envelope
        placed.append((float(index), len(placed), _record(envelope)))
        for _ in range(rng.choice(copies) - 1):
            if rng.random() < 0.5:
                # A producer retry: the very same record, right behind the original.
                copy, position = envelope, index + 0.5 * rng.random()
            else:
                # A client retry: a new event id, the same idempotency key and action,
                # somewhat later.
                copy = Envelope()
                copy.CopyFrom(envelope)
                copy.event_id = new_event_id()
                plan.event_ids[idempotency_key].add(copy.event_id)
                position = index + rng.uniform(1, RETRY_COPY_WINDOW)
            placed.append((position, len(placed), _record(copy)))
    placed.sort()
    plan.records = [record for _, _, record in placed]
    if garbage_every:
        _interleave_garbage(plan, prefix, garbage_every)
    return plan


def _interleave_garbage(plan: EventPlan, prefix: str, every: int) -> None:
    kinds = list(GarbageKind)
    mixed: list[Record] = []
    for position, record in enumerate(plan.records, start=1):
        mixed.append(record)
        if position % (every - 1) == 0:
            kind = kinds[len(plan.garbage) % len(kinds)]
            marker = f"{prefix}-g{len(plan.garbage):05d}-{kind}"
            plan.garbage[marker] = kind
            mixed.append(_garbage(kind, marker))
    plan.records = mixed


def _garbage(kind: GarbageKind, marker: str) -> Record:
    headers = ((MARKER_HEADER, marker.encode()),)
    if kind is GarbageKind.UNDECODABLE:
        return Record(marker.encode(), _UNDECODABLE, headers)
    envelope = _envelope(marker, marker, now_utc(), 0)
    fill_daily_login(random.Random(0), envelope)
    if kind is GarbageKind.NO_PLAYER_ID:
        envelope.ClearField("player_id")
    else:
        envelope.ClearField("daily_login")
    return Record(marker.encode(), encode(envelope), headers)


def fill_daily_login(rng: random.Random, envelope: Envelope) -> None:
    """The probe's payload: any payload would do, it counts events, not what they say."""
    envelope.daily_login.streak_days = 1
    envelope.daily_login.local_date = envelope.received_at.ToDatetime().date().isoformat()


def _envelope(
    player_id: str, idempotency_key: str, first_received: datetime, index: int
) -> Envelope:
    envelope = Envelope(
        event_id=new_event_id(), idempotency_key=idempotency_key, player_id=player_id
    )
    at = Timestamp()
    at.FromDatetime(first_received + timedelta(seconds=index))
    envelope.occurred_at.CopyFrom(at)
    envelope.received_at.CopyFrom(at)
    return envelope


def _record(envelope: Envelope) -> Record:
    return Record(envelope.player_id.encode(), encode(envelope), tuple(headers_for(envelope)))


async def produce(
    settings: KafkaSettings, topic: Topic, records: Iterable[Record]
) -> dict[TopicPartition, int]:
    """Send every record (key = player id, so per-player order holds) and await every ack.

    Returns the end offset (last acknowledged offset + 1) per partition written. Take these,
    not `end_offsets()`: the embedded broker answers ListOffsets(latest) with the base offset
    of the last batch + 1, short of the real end when batches hold several records.
    """
    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        enable_idempotence=settings.enable_idempotence,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    ends: dict[TopicPartition, int] = {}
    try:
        pending: list[asyncio.Future[RecordMetadata]] = []
        for record in records:
            pending.append(
                await producer.send(
                    topic.name, record.value, key=record.key, headers=list(record.headers)
                )
            )
            if len(pending) >= SEND_CHUNK:
                _note_ends(ends, await asyncio.gather(*pending))
                pending.clear()
        _note_ends(ends, await asyncio.gather(*pending))
    finally:
        await producer.stop()
    return ends


def _note_ends(ends: dict[TopicPartition, int], acks: Iterable[RecordMetadata]) -> None:
    for ack in acks:
        tp = TopicPartition(ack.topic, ack.partition)
        ends[tp] = max(ends.get(tp, 0), ack.offset + 1)
