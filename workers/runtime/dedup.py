"""Dedup in Redis: claim a batch of events in one round trip, mark them done in another.

Per event the claim says:
- DONE: applied before; the runtime counts it as a duplicate and skips it.
- LEASED: another worker is applying it right now; not processed twice: it goes to the first
  retry tier and is looked at again later.
- CLAIMED: ours now (`SET NX PX lease`); a lease we already hold (a batch polled again after
  a dependency outage) is claimed again.
After the effects are durable, `finish` turns claimed keys into `done` with the dedup TTL, and
releases the others (events sent to a retry tier or dead-lettered), so they can run again.
Both scripts touch several keys: they need one Redis node (or keys in one hash slot).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import redis.asyncio as aioredis

from workers.runtime import keys
from workers.runtime.scripts import BatchScript
from workers.runtime.settings import RuntimeSettings

# SET NX first: a new key (nearly every one) costs one call, not a GET and a SET.
_CLAIM_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local value = false
  if not redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    value = redis.call('GET', key)
  end
  if value == false then
    out[i] = 0
  elseif value == ARGV[3] then
    out[i] = 1
  elseif value == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 0
  else
    out[i] = 2
  end
end
return out
"""

# KEYS: the first ARGV[3] are marked done, the rest released if we still hold their lease.
_FINISH_LUA = """
local done_count = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  if i <= done_count then
    redis.call('SET', key, ARGV[4], 'EX', ARGV[2])
  elseif redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
  end
end
return #KEYS
"""


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    LEASED = "leased"


_CODES = (Claim.CLAIMED, Claim.DONE, Claim.LEASED)


class Deduplicator:
    """The dedup markers of one processor, held by one worker."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        processor: str,
        worker_id: str,
        settings: RuntimeSettings,
    ) -> None:
        self._prefix = prefix
        self._processor = processor
        self._lease = keys.lease_value(worker_id)
        self._settings = settings
        self._claim = BatchScript(client, _CLAIM_LUA)
        self._finish = BatchScript(client, _FINISH_LUA)

    def key(self, idempotency_key: str) -> str:
        return keys.dedup_key(self._prefix, self._processor, idempotency_key)

    async def claim(self, idempotency_keys: Sequence[str]) -> list[Claim]:
        """One decision per key, in order; keys must be distinct within one call."""
        if not idempotency_keys:
            return []
        codes = await self._claim(
            [self.key(k) for k in idempotency_keys],
            [self._lease, self._settings.lease_ms, keys.DONE],
        )
        return [_CODES[int(code)] for code in codes]

    async def finish(self, done: Sequence[str], release: Sequence[str]) -> None:
        """Mark `done` keys done for the dedup TTL; drop our lease on the `release` keys."""
        if not done and not release:
            return
        await self._finish(
            [self.key(k) for k in (*done, *release)],
            [self._lease, self._settings.dedup_ttl_s, len(done), keys.DONE],
        )
