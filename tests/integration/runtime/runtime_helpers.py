"""Publishing envelopes and reading topics and the probe's effects, for the runtime tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import aiomysql
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp

from schemas.codec import encode, headers_for, new_event_id
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import Topic
from topics.settings import KafkaSettings
from workers.runtime import keys
from workers.runtime.records import InboundRecord

#: Upper bound of every wait; never reached when all is well.
DEADLINE_S = 60.0


def login(player_id: str, idempotency_key: str = "") -> Envelope:
    event_id = new_event_id()
    received = Timestamp()
    received.GetCurrentTime()
    envelope = Envelope(
        event_id=event_id,
        idempotency_key=idempotency_key or event_id,
        player_id=player_id,
        received_at=received,
    )
    envelope.trace.traceparent = f"00-{'a' * 32}-{'b' * 16}-01"
    envelope.daily_login.SetInParent()
    return envelope


async def publish(
    settings: KafkaSettings,
    topic: Topic,
    items: Sequence[Envelope | bytes],
    *,
    extra_headers: Sequence[tuple[str, bytes | None]] = (),
) -> None:
    """Publish envelopes (keyed by player, with `extra_headers` before their own) or raw
    bytes (garbage, keyed "garbage"), in order."""
    producer = AIOKafkaProducer(**settings.client_kwargs(), enable_idempotence=False)
    await producer.start()
    try:
        for item in items:
            if isinstance(item, bytes):
                await producer.send_and_wait(topic.name, item, key=b"garbage")
            else:
                await producer.send_and_wait(
                    topic.name,
                    encode(item),
                    key=item.player_id.encode(),
                    headers=[*extra_headers, *headers_for(item)],
                )
    finally:
        await producer.stop()


async def read_all(settings: KafkaSettings, topic: Topic, expected: int) -> list[InboundRecord]:
    """Every record of `topic` once at least `expected` are there (or at the deadline)."""
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[InboundRecord] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(records) < expected and time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=200)
            records += [InboundRecord.from_consumer(r) for rs in polled.values() for r in rs]
        return records
    finally:
        await consumer.stop()


async def probe_rows(pool: aiomysql.Pool, like: str) -> dict[str, str]:
    """probe_effects rows (idempotency key -> player) whose key starts with `like`."""
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT idempotency_key, player_id FROM probe_effects WHERE idempotency_key LIKE %s",
            (like + "%",),
        )
        rows = await cursor.fetchall()
        await conn.commit()  # end the snapshot, so the next read sees new rows
    return {str(key): str(player) for key, player in rows}


async def probe_counts(client: aioredis.Redis, prefix: str) -> dict[str, int]:
    raw = await client.hgetall(keys.probe_counts_key(prefix, "probe"))
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def committed_total(settings: KafkaSettings, group_id: str, topic: Topic) -> int:
    """Sum of the group's committed offsets on `topic` (records consumed and committed)."""
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for partition in range(topic.partitions):
            total += await consumer.committed(TopicPartition(topic.name, partition)) or 0
        return total
    finally:
        await consumer.stop()


async def record_count(settings: KafkaSettings, topic: Topic) -> int:
    """How many records `topic` holds (sum of end offsets; nothing is deleted in tests)."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        ends = await consumer.end_offsets(partitions)
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def forward(port: int, target_port: int) -> asyncio.Server:
    """A plain TCP forwarder 127.0.0.1:port -> 127.0.0.1:target_port: a dependency coming
    back on the address a worker was already trying."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w))

    return await asyncio.start_server(accept, "127.0.0.1", port)
