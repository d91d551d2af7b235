"""Read what the probe processor really applied, and compare it with the plan, exactly.

(rewards_check.py and leaderboards_check.py do the same for the real processors.)

The probe writes each applied event twice, in two stores with two different guards:
- MySQL: a probe_effects row per idempotency key plus its processed_events row, in one
  transaction (the durable guard): a lost event is a missing row;
- Redis: a count per player in one hash, bumped by a Lua script that checks and sets the
  dedup marker atomically with the count: a doubled event is a count too high, a lost one too low.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import pymysql
import redis.asyncio as aioredis

from workers.db import MySQLTarget
from workers.runtime import keys

from .events import EventPlan


@dataclass(frozen=True)
class ProbeState:
    """The probe's effects for one test (keys under the test's prefix)."""

    #: idempotency key -> (player id, event id) from probe_effects.
    effects: dict[str, tuple[str, str]]
    #: idempotency keys in processed_events for the probe.
    durable_keys: frozenset[str]
    #: player id -> applied count, from the Redis hash.
    counts: dict[str, int]


class StateReader:
    """Reads one test's slice of MySQL and Redis (a direct link, never through a fault proxy)."""

    def __init__(
        self, target: MySQLTarget, redis_url: str, *, key_prefix: str, processor: str, ids: str
    ) -> None:
        self.target = target
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.processor = processor
        #: Every idempotency key of the test starts with this.
        self.like = like_pattern(ids)

    async def applied_count(self) -> int:
        """How many events have a durable effect so far: the progress of a run."""
        rows = await asyncio.to_thread(
            self._query,
            "SELECT COUNT(*) FROM probe_effects WHERE idempotency_key LIKE %s",
            (self.like,),
        )
        return int(str(rows[0][0]))

    async def read(self) -> ProbeState:
        effects = await asyncio.to_thread(
            self._query,
            "SELECT idempotency_key, player_id, event_id FROM probe_effects "
            "WHERE idempotency_key LIKE %s",
            (self.like,),
        )
        durable = await asyncio.to_thread(
            self._query,
            "SELECT idempotency_key FROM processed_events "
            "WHERE processor = %s AND idempotency_key LIKE %s",
            (self.processor, self.like),
        )
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            raw = await client.hgetall(keys.probe_counts_key(self.key_prefix, self.processor))
        finally:
            await client.aclose()
        return ProbeState(
            effects={str(key): (str(player), str(event)) for key, player, event in effects},
            durable_keys=frozenset(str(row[0]) for row in durable),
            counts={text_of(player): int(count) for player, count in raw.items()},
        )

    async def leased_count(self) -> int:
        """Dedup keys of this test naming a batch still leased: events claimed, not finished."""
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            pattern = keys.dedup_key(self.key_prefix, self.processor, "*")
            found = [key async for key in client.scan_iter(match=pattern, count=1000)]
            markers = [text_of(v) for v in (await client.mget(found) if found else []) if v]
            batches = sorted({m for m in markers if m.startswith(keys.BATCH_MARKER_PREFIX)})
            states = (
                await client.mget(
                    [keys.dedup_batch_key(self.key_prefix, self.processor, b) for b in batches]
                )
                if batches
                else []
            )
        finally:
            await client.aclose()
        in_flight = keys.LEASED.encode()
        leased = {b for b, state in zip(batches, states, strict=True) if state == in_flight}
        return sum(1 for marker in markers if marker in leased)

    async def in_flight(self) -> int:
        """Work a killed worker leaves behind: its leases."""
        return await self.leased_count()

    async def problems(self, plan: EventPlan, *, redis_lost: bool = False) -> list[str]:
        """Every way the probe's effects differ from the plan (Redis counts unless lost)."""
        return discrepancies(plan, await self.read(), check_counts=not redis_lost)

    def _query(self, sql: str, params: tuple[str, ...]) -> tuple[tuple[object, ...], ...]:
        return query(self.target, sql, params)


def like_pattern(prefix: str) -> str:
    """A LIKE pattern matching every string that starts with `prefix`, taken literally."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def query(target: MySQLTarget, sql: str, params: tuple[str, ...]) -> tuple[tuple[object, ...], ...]:
    """Run one read on a fresh direct connection (blocking: call it in a thread)."""
    connection = pymysql.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=target.database,
        autocommit=True,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return tuple(cursor.fetchall())
    finally:
        connection.close()


def text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def discrepancies(plan: EventPlan, state: ProbeState, *, check_counts: bool = True) -> list[str]:
    """Every way the final state differs from the plan; empty when it is exact.

    check_counts=False skips the Redis counts, for a test that flushes Redis on purpose.
    """
    problems: list[str] = []
    expected_keys = set(plan.expected)
    missing = sorted(expected_keys - set(state.effects))
    unexpected = sorted(set(state.effects) - expected_keys)
    if missing:
        problems.append(f"{len(missing)} events lost (no effect in MySQL), e.g. {missing[:5]}")
    if unexpected:
        problems.append(f"{len(unexpected)} effects nobody sent, e.g. {unexpected[:5]}")
    wrong = sorted(
        key
        for key, (player, event_id) in state.effects.items()
        if key in plan.expected
        and (player != plan.expected[key] or event_id not in plan.event_ids[key])
    )
    if wrong:
        problems.append(f"{len(wrong)} effects with a wrong player or event id, e.g. {wrong[:5]}")
    if state.durable_keys != expected_keys:
        problems.append(
            f"processed_events holds {len(state.durable_keys)} keys, expected {len(expected_keys)}"
        )
    if check_counts:
        expected_counts = plan.expected_counts
        actual = Counter(state.counts)
        for player in sorted(set(expected_counts) | set(actual)):
            if actual[player] != expected_counts[player]:
                how = "doubled" if actual[player] > expected_counts[player] else "lost"
                problems.append(
                    f"redis count of {player} is {actual[player]}, "
                    f"expected {expected_counts[player]} ({how})"
                )
    return problems
