"""Idempotent retries across gateway replicas: Idempotency-Key -> event id, in Redis.

One hash per (player, key) with the event id, the topic, a fingerprint of the request and a
state. Every change is one Lua script, so two replicas (or two concurrent identical requests on
one replica) cannot both win:

- no record: the caller claims it (state `pending`, short TTL) and publishes;
- `pending`: another request is publishing; wait for it (`settle`), then answer like it;
- `published`: answer 202 with the stored event id, publish nothing;
- `failed`: the first attempt could not publish; the caller takes it over and publishes with
  the same event id and the same envelope key (the broker may have stored the first try:
  consumers dedup on the envelope's key). The record says how that key was made (`scheme`):
  gateways from before derived keys wrote no scheme and used the client's key as it was, so a
  takeover of their record publishes with the client's key again (Claim.derived_key False);
- another fingerprint: the client reused the key for a different request (422).

A claim holds the key `pending_ttl_s` only, so a gateway dying mid-publish frees it for the
client's retry; `published` and `failed` records live `ttl_s` (a day by default).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis

#: Namespace under the fleet's key prefix: <prefix>:gateway:idempotency:<sha256(player, key)>.
KEY_NAMESPACE = "gateway:idempotency"
#: How often a request waiting for an identical one in progress looks again.
POLL_INTERVAL_S = 0.05
#: The record's `scheme` when the envelope key is derived from (player, client key)
#: (producers.gateway.envelopes.envelope_key_for); absent in records of older gateways.
DERIVED_SCHEME = "derived"

_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'event_id', ARGV[1], 'fingerprint', ARGV[2],
             'topic', ARGV[3], 'owner', ARGV[4], 'scheme', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'claimed', ARGV[1], ARGV[3], ARGV[6]}
end
local stored = redis.call('HMGET', KEYS[1], 'event_id', 'topic', 'fingerprint', 'scheme')
local scheme = stored[4] or ''
if stored[3] ~= ARGV[2] then
  return {'conflict', stored[1], stored[2], scheme}
end
if state == 'failed' then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'owner', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'claimed', stored[1], stored[2], scheme}
end
return {state, stored[1], stored[2], scheme}
"""

_FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class ClaimState(StrEnum):
    #: This request owns the key: publish, then finish().
    CLAIMED = "claimed"
    #: Another request is publishing it now.
    PENDING = "pending"
    PUBLISHED = "published"
    #: The key was used before with a different request.
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    #: The event id to publish with (CLAIMED) or already published (PUBLISHED).
    event_id: str
    topic: str
    key: str
    owner: str
    #: False when an older gateway made the record: the envelope key is then the client's
    #: key as it was, not envelope_key_for's (see the module docstring).
    derived_key: bool = True


class IdempotencyStore:
    """Remembers which event each Idempotency-Key produced. Raises redis errors as they come."""

    def __init__(
        self, redis: aioredis.Redis, key_prefix: str, ttl_s: int, pending_ttl_s: int
    ) -> None:
        self._redis = redis
        self._key_prefix = key_prefix
        self._ttl_ms = ttl_s * 1000
        self._pending_ttl_ms = pending_ttl_s * 1000
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)

    def key_for(self, player_id: str, idempotency_key: str) -> str:
        """Hashed, so any player id and any printable key make one safe, bounded Redis key."""
        digest = hashlib.sha256(
            f"{len(player_id)}:{player_id}:{idempotency_key}".encode()
        ).hexdigest()
        return f"{self._key_prefix}:{KEY_NAMESPACE}:{digest}"

    async def claim(
        self, player_id: str, idempotency_key: str, event_id: str, fingerprint: str, topic: str
    ) -> Claim:
        key = self.key_for(player_id, idempotency_key)
        owner = secrets.token_hex(8)
        raw = await self._claim(
            keys=[key],
            args=[event_id, fingerprint, topic, owner, self._pending_ttl_ms, DERIVED_SCHEME],
        )
        state, stored_event_id, stored_topic, scheme = (_text(item) for item in raw)
        derived = scheme == DERIVED_SCHEME
        return Claim(ClaimState(state), stored_event_id, stored_topic, key, owner, derived)

    async def settle(
        self,
        player_id: str,
        idempotency_key: str,
        event_id: str,
        fingerprint: str,
        topic: str,
        wait_s: float,
    ) -> Claim:
        """Claim, waiting up to `wait_s` while an identical request is still publishing.

        Returns a PENDING claim when that request has not finished in time.
        """
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            claim = await self.claim(player_id, idempotency_key, event_id, fingerprint, topic)
            if claim.state is not ClaimState.PENDING:
                return claim
            if asyncio.get_running_loop().time() >= deadline:
                return claim
            await asyncio.sleep(POLL_INTERVAL_S)

    async def mark_published(self, claim: Claim) -> bool:
        """Record success; False when the claim had expired and someone else took the key."""
        return await self._finish_claim(claim, "published")

    async def mark_failed(self, claim: Claim) -> bool:
        """Record that publishing failed, so the client's retry publishes (same event id)."""
        return await self._finish_claim(claim, "failed")

    async def _finish_claim(self, claim: Claim, state: str) -> bool:
        done = await self._finish(keys=[claim.key], args=[claim.owner, state, self._ttl_ms])
        return bool(done)


def _text(item: bytes | str) -> str:
    return item.decode() if isinstance(item, bytes) else item
