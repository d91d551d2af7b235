"""The dedup scripts on real Redis, and the durable guard on real MySQL."""

from __future__ import annotations

import aiomysql
import pytest
import redis.asyncio as aioredis

from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.runtime import keys
from workers.runtime.dedup import Claim, Deduplicator
from workers.runtime.durable import claim_durably
from workers.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


def dedup_for(client: aioredis.Redis, prefix: str, worker_id: str) -> Deduplicator:
    settings = RuntimeSettings(lease_ms=30_000, dedup_ttl_s=3600)
    return Deduplicator(
        client, prefix=prefix, processor="p", worker_id=worker_id, settings=settings
    )


async def test_claim_lease_done_and_release(redis_client: aioredis.Redis, unique_name: str) -> None:
    mine = dedup_for(redis_client, unique_name, "w1")
    theirs = dedup_for(redis_client, unique_name, "w2")

    # A new key is claimed with a lease; another worker sees it leased; we may claim it again
    assert await mine.claim(["a", "b", "c"]) == [Claim.CLAIMED] * 3
    assert await theirs.claim(["a"]) == [Claim.LEASED]
    assert await mine.claim(["a"]) == [Claim.CLAIMED]
    lease_ttl_ms = await redis_client.pttl(keys.dedup_key(unique_name, "p", "a"))
    assert 0 < lease_ttl_ms <= 30_000

    # Finishing: a is done (with the dedup TTL), b released, c left as is
    await mine.finish(done=["a"], release=["b"])
    assert await theirs.claim(["a", "b"]) == [Claim.DONE, Claim.CLAIMED]
    assert 3000 < await redis_client.ttl(keys.dedup_key(unique_name, "p", "a")) <= 3600

    # Releasing never removes another worker's lease, nor a done marker
    await mine.finish(done=[], release=["b", "a"])
    assert await redis_client.get(keys.dedup_key(unique_name, "p", "b")) == b"lease:w2"
    assert await redis_client.get(keys.dedup_key(unique_name, "p", "a")) == b"done"


async def test_durable_claim_returns_only_new_events(
    mysql_pool: aiomysql.Pool, unique_name: str
) -> None:
    def event(key: str) -> Envelope:
        return Envelope(event_id=key, idempotency_key=f"{unique_name}-{key}", player_id="p")

    async with mysql_pool.acquire() as conn:
        async with conn.cursor() as cursor:
            fresh = await claim_durably(
                cursor, "durable-test", [event("a"), event("b"), event("a")]
            )
        await conn.commit()
        assert [e.event_id for e in fresh] == ["a", "b"]

        # A rolled-back claim leaves nothing behind
        async with conn.cursor() as cursor:
            fresh = await claim_durably(cursor, "durable-test", [event("b"), event("c")])
        await conn.rollback()
        assert [e.event_id for e in fresh] == ["c"]

        async with conn.cursor() as cursor:
            fresh = await claim_durably(cursor, "durable-test", [event("a"), event("c")])
            await cursor.execute(
                "SELECT COUNT(*) FROM processed_events WHERE processor = %s "
                "AND idempotency_key LIKE %s",
                ("durable-test", f"{unique_name}-%"),
            )
            (count,) = await cursor.fetchone()
        await conn.commit()
    assert [e.event_id for e in fresh] == ["c"]
    assert count == 3
