"""Dedup in Redis: claim a batch of events in one round trip, mark the batch done in another.

The claim writes one batch key (`lease`, expiring after `lease_ms`) and, into each new event's
dedup key, the batch's marker (keys.py). Per event it says:
- DONE: applied before (its key holds `done`, or names a batch that is done); the runtime
  counts it as a duplicate and skips it.
- LEASED: its key names a batch of another worker still in flight; not processed twice: it
  goes to the first retry tier and is looked at again later.
- CLAIMED: ours now. Also when its key names a batch whose lease has expired (its worker died
  before finishing it), or one of ours never finished (a batch polled again after a
  dependency outage).
After the effects are durable, `finish` writes `done` into the batch key, for the dedup TTL:
one write however many events the batch claimed (the markers were written with that TTL by
the claim). It releases the events sent to a retry tier or dead-lettered (deletes their
markers while they still name this batch), so they can run again.
Both scripts touch keys they are not given (a marker's batch key): they need one Redis node.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple

import redis.asyncio as aioredis

from workers.runtime import keys
from workers.runtime.scripts import BatchScript
from workers.runtime.settings import RuntimeSettings

# KEYS: the batch key, then one dedup key per event. ARGV: this batch's marker, lease ms,
# `done`, dedup TTL s, the batch key prefix, this worker's marker prefix, the old-format lease
# of this worker, `lease`. SET NX first: a new key (nearly every one) costs one call. The
# answer is one string, a digit per key (0 claimed, 1 done, 2 leased): the usual all-zero
# answer is checked in one comparison instead of decoding 500 integers.
_CLAIM_LUA = """
redis.call('SET', KEYS[1], ARGV[8], 'PX', ARGV[2])
local out = {}
local mine = #ARGV[6]
for i = 2, #KEYS do
  local key = KEYS[i]
  local code = 0
  if not redis.call('SET', key, ARGV[1], 'NX', 'EX', ARGV[4]) then
    local value = redis.call('GET', key)
    if value == ARGV[3] then
      code = 1
    elseif value and string.sub(value, 1, 2) == 'b:' then
      local state = redis.call('GET', ARGV[5] .. string.sub(value, 3))
      if state == ARGV[3] then
        code = 1
      elseif state and string.sub(value, 1, mine) ~= ARGV[6] then
        code = 2
      end
    elseif value and value ~= ARGV[7] then
      code = 2
    end
    if code == 0 then
      redis.call('SET', key, ARGV[1], 'EX', ARGV[4])
    end
  end
  out[i - 1] = code
end
return table.concat(out)
"""

# KEYS: the batch key, then the dedup keys to release. ARGV: the batch's marker, `done`, TTL s.
_FINISH_LUA = """
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
  end
end
return #KEYS
"""


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    LEASED = "leased"


_CODES = (Claim.CLAIMED, Claim.DONE, Claim.LEASED)
_ZERO = ord("0")


class ClaimedBatch(NamedTuple):
    """The answer of one claim: a decision per key, and the marker to finish the batch with
    ("" when nothing was claimed: there is nothing to finish). `all_claimed` is True when
    every key was claimed (the usual case), so callers may skip looking at each decision."""

    marker: str
    claims: list[Claim]
    all_claimed: bool = False


class Deduplicator:
    """The dedup markers of one processor, held by one worker (its input and retry loops)."""

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
        self._worker_id = worker_id
        self._batch_prefix = keys.dedup_batch_prefix(prefix, processor)
        self._key_prefix = keys.dedup_key_prefix(prefix, processor)
        self._mine = keys.worker_markers(worker_id)
        self._old_lease = keys.lease_value(worker_id)
        self._numbers = itertools.count(1)
        self._settings = settings
        self._claim = BatchScript(client, _CLAIM_LUA)
        self._finish = BatchScript(client, _FINISH_LUA)

    def key(self, idempotency_key: str) -> str:
        return self._key_prefix + idempotency_key

    async def claim(self, idempotency_keys: Sequence[str]) -> ClaimedBatch:
        """One decision per key, in order; keys must be distinct within one call."""
        if not idempotency_keys:
            return ClaimedBatch("", [])
        marker = keys.batch_marker(self._worker_id, next(self._numbers))
        codes = await self._claim(
            [
                keys.dedup_batch_key(self._prefix, self._processor, marker),
                *[self._key_prefix + k for k in idempotency_keys],
            ],
            [
                marker,
                self._settings.lease_ms,
                keys.DONE,
                self._settings.dedup_ttl_s,
                self._batch_prefix,
                self._mine,
                self._old_lease,
                keys.LEASED,
            ],
        )
        if isinstance(codes, str):  # a client made with decode_responses=True
            codes = codes.encode()
        if codes == b"0" * len(idempotency_keys):
            return ClaimedBatch(marker, [Claim.CLAIMED] * len(idempotency_keys), True)
        claims = [_CODES[code - _ZERO] for code in codes]
        return ClaimedBatch(marker if Claim.CLAIMED in claims else "", claims)

    async def finish(self, marker: str, release: Sequence[str] = ()) -> None:
        """Mark the batch `marker` done for the dedup TTL, so are the events it claimed;
        delete the markers of the `release` keys that still name it."""
        if not marker:
            return
        await self._finish(
            [
                keys.dedup_batch_key(self._prefix, self._processor, marker),
                *[self.key(k) for k in release],
            ],
            [marker, keys.DONE, self._settings.dedup_ttl_s],
        )
