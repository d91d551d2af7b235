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

    # A new key is claimed under a leased batch; another worker sees it leased; we may
    # claim it again (our batch polled again after an outage)
    first = await mine.claim(["a", "b", "c"])
    assert first.claims == [Claim.CLAIMED] * 3
    assert first.all_claimed
    leased = await theirs.claim(["a", "new"])
    assert leased.claims == [Claim.LEASED, Claim.CLAIMED]
    assert not leased.all_claimed
    assert (await theirs.claim(["a"])).claims == [Claim.LEASED]
    again = await mine.claim(["a"])
    assert again.claims == [Claim.CLAIMED]
    assert again.marker != first.marker
    lease_ms = await redis_client.pttl(keys.dedup_batch_key(unique_name, "p", again.marker))
    assert 0 < lease_ms <= 30_000
    assert await redis_client.get(keys.dedup_key(unique_name, "p", "a")) == again.marker.encode()

    # Finishing the second batch: a is done (the batch key for the dedup TTL), b released;
    # c, claimed by the first batch, is still leased
    await mine.finish(again.marker, release=["b"])
    await mine.finish(first.marker, release=["b"])  # b names the first batch: released
    assert (await theirs.claim(["a", "b"])).claims == [Claim.DONE, Claim.CLAIMED]
    batch_ttl_s = await redis_client.ttl(keys.dedup_batch_key(unique_name, "p", again.marker))
    assert 3000 < batch_ttl_s <= 3600
    assert 3000 < await redis_client.ttl(keys.dedup_key(unique_name, "p", "a")) <= 3600

    # Releasing never removes another batch's marker, nor a done marker
    await redis_client.set(keys.dedup_key(unique_name, "p", "d"), keys.DONE)
    await mine.finish(first.marker, release=["b", "d"])
    b_marker = await redis_client.get(keys.dedup_key(unique_name, "p", "b"))
    assert isinstance(b_marker, bytes)
    assert b_marker.decode().startswith(keys.worker_markers("w2"))
    assert await redis_client.get(keys.dedup_key(unique_name, "p", "d")) == b"done"
    assert (await theirs.claim(["d"])).claims == [Claim.DONE]


async def test_an_expired_batch_lease_is_claimed_again(
    redis_client: aioredis.Redis, unique_name: str
) -> None:
    # Given a worker that claimed two events and died before finishing its batch
    dead = dedup_for(redis_client, unique_name, "dead")
    lost = await dead.claim(["x", "y"])
    survivor = dedup_for(redis_client, unique_name, "alive")
    assert (await survivor.claim(["x"])).claims == [Claim.LEASED]

    # When its batch lease expires
    await redis_client.delete(keys.dedup_batch_key(unique_name, "p", lost.marker))

    # Then another worker claims them; the dead batch's late finish does not mark them done
    taken = await survivor.claim(["x", "y"])
    assert taken.claims == [Claim.CLAIMED, Claim.CLAIMED]
    await dead.finish(lost.marker)
    assert (await dedup_for(redis_client, unique_name, "third").claim(["x"])).claims == [
        Claim.LEASED
    ]
    await survivor.finish(taken.marker)
    assert (await dead.claim(["x", "y"])).claims == [Claim.DONE, Claim.DONE]


async def test_a_lease_of_the_format_before_batch_markers_is_honoured(
    redis_client: aioredis.Redis, unique_name: str
) -> None:
    # Markers written by a worker of the previous release, during a rolling deploy
    await redis_client.set(keys.dedup_key(unique_name, "p", "old"), keys.lease_value("w1"))
    await redis_client.set(keys.dedup_key(unique_name, "p", "gone"), keys.DONE)

    assert (await dedup_for(redis_client, unique_name, "w2").claim(["old", "gone"])).claims == [
        Claim.LEASED,
        Claim.DONE,
    ]
    assert (await dedup_for(redis_client, unique_name, "w1").claim(["old"])).claims == [
        Claim.CLAIMED
    ]


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
