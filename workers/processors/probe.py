"""The probe: a tiny but real processor for tests, fault tests and the demo.

Each applied event leaves exactly one trace in each of two stores, with two different guards:
- MySQL: a probe_effects row, written with claim_durably in the same transaction (survives a
  Redis flush);
- Redis: a count per player in one hash, bumped by a Lua script that checks the event's dedup
  key for `done` and sets it atomically with the count (the rule in workers/runtime/keys.py).
Test players steer it by their id prefix:
- `reject-...`: REJECTED (final, no effect, not dead-lettered);
- `poison-...`: PermanentError (dead letter; the runtime bisects the batch around it);
- `flaky-<n>-...`: TransientError for the first n attempts (counted per idempotency key in
  Redis), then applied; `flaky-...` without a number always fails (ends in the dead letters).
It consumes any ConsumerGroup it is given; the default reads player actions for the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import redis.asyncio as aioredis

from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import PLAYER_ACTIONS, ConsumerGroup
from workers.errors import PermanentError, TransientError
from workers.runtime import keys
from workers.runtime.context import ProcessorFactory, WorkerContext
from workers.runtime.durable import claim_durably
from workers.runtime.processor import Outcome

#: The demo's group: its own consumer group on player actions (rewards has another).
DEMO_GROUP = ConsumerGroup("probe", (PLAYER_ACTIONS,))

# KEYS[1]: counts hash, KEYS[2..]: dedup keys; ARGV[1]: TTL, ARGV[2]: done, ARGV[3..]: players.
_APPLY_LUA = """
local applied = {}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then
    applied[i - 1] = 0
  else
    redis.call('HINCRBY', KEYS[1], ARGV[i + 1], 1)
    redis.call('SET', KEYS[i], ARGV[2], 'EX', ARGV[1])
    applied[i - 1] = 1
  end
end
return applied
"""


def flaky_failures(player_id: str) -> int | None:
    """How many attempts a `flaky-` player's events fail: n for `flaky-<n>-`, None = always."""
    parts = player_id.split("-", 2)
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


class ProbeProcessor:
    name: ClassVar[str] = "probe"
    version: ClassVar[str] = "1"

    def __init__(
        self, context: WorkerContext, group: ConsumerGroup = DEMO_GROUP, *, dedup_ttl_s: int = 0
    ) -> None:
        self.group = group
        self._redis: aioredis.Redis = context.redis
        self._pool = context.mysql
        self._prefix = context.key_prefix
        self._ttl_s = dedup_ttl_s or context.settings.runtime.dedup_ttl_s
        self._apply = self._redis.register_script(_APPLY_LUA)

    async def start(self) -> None:
        """Nothing to open: Redis and MySQL belong to the runtime."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def ready(self) -> bool:
        return bool(await self._redis.ping())

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        poison = [e for e in batch if e.player_id.startswith("poison-")]
        if poison:
            raise PermanentError(f"poison event {poison[0].event_id} for {poison[0].player_id}")
        await self._fail_flaky([e for e in batch if e.player_id.startswith("flaky-")])
        wanted = [e for e in batch if not e.player_id.startswith("reject-")]
        fresh = await self._write_mysql(wanted)
        counted = await self._count_redis(wanted)
        outcomes = []
        for envelope in batch:
            key = envelope.idempotency_key
            if envelope.player_id.startswith("reject-"):
                outcomes.append(Outcome.rejected("reject- players are refused by the probe"))
            elif key in fresh or key in counted:
                outcomes.append(Outcome.applied())
            else:
                outcomes.append(Outcome.duplicate())
        return outcomes

    async def _fail_flaky(self, flaky: Sequence[Envelope]) -> None:
        if not flaky:
            return
        attempts_key = keys.probe_attempts_key(self._prefix, self.name)
        async with self._redis.pipeline(transaction=False) as pipe:
            for envelope in flaky:
                pipe.hincrby(attempts_key, envelope.idempotency_key, 1)
            attempts = await pipe.execute()
        for envelope, attempt in zip(flaky, attempts, strict=True):
            limit = flaky_failures(envelope.player_id)
            if limit is None or int(attempt) <= limit:
                raise TransientError(f"flaky player {envelope.player_id}: attempt {attempt}")

    async def _write_mysql(self, envelopes: Sequence[Envelope]) -> set[str]:
        if not envelopes:
            return set()
        async with self._pool.acquire() as conn:
            try:
                async with conn.cursor() as cursor:
                    fresh = await claim_durably(cursor, self.name, envelopes)
                    if fresh:
                        rows = ", ".join(["(%s, %s, %s)"] * len(fresh))
                        params = [
                            v for e in fresh for v in (e.idempotency_key, e.player_id, e.event_id)
                        ]
                        await cursor.execute(
                            "INSERT INTO probe_effects (idempotency_key, player_id, event_id) "  # noqa: S608 - only placeholders added
                            f"VALUES {rows}",
                            params,
                        )
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise
        return {e.idempotency_key for e in fresh}

    async def _count_redis(self, envelopes: Sequence[Envelope]) -> set[str]:
        if not envelopes:
            return set()
        dedup_keys = [keys.dedup_key(self._prefix, self.name, e.idempotency_key) for e in envelopes]
        applied = await self._apply(
            keys=[keys.probe_counts_key(self._prefix, self.name), *dedup_keys],
            args=[self._ttl_s, keys.DONE, *(e.player_id for e in envelopes)],
        )
        return {e.idempotency_key for e, hit in zip(envelopes, applied, strict=True) if int(hit)}


def probe_factory(group: ConsumerGroup = DEMO_GROUP) -> ProcessorFactory:
    """A factory building the probe on `group` (tests pass a group of their own)."""

    def build(context: WorkerContext) -> ProbeProcessor:
        return ProbeProcessor(context, group)

    return build
