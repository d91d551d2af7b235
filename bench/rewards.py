"""`liveops bench rewards`: the rewards processor on the real runtime, against MySQL's own limits.

One run (see bench/harness.py): preload a topic with realistic player actions and purchases,
then measure, interleaved over several rounds, each in its own child process and on its own
fresh database:
- `rewards` (the subject): a Worker running RewardsProcessor with all the work done: consume,
  rules, campaigns, caps, one MySQL transaction per batch (durable dedup, ledger,
  wallet, counters; its writes and COMMIT finish while the next batch is handled),
  RewardGranted published and acknowledged, offsets staged and committed. As for the other
  subjects (bench.child.batch_result): throughput runs from the first poll to the last settle,
  latency p50/p99 per event from its batch's poll to its settle (the topic is preloaded, so
  gateway time would only measure the queue); `handle_share` is the part of the run spent
  inside handle().
- `ceiling`: one ledger row and one wallet upsert per event written straight into MySQL,
  one transaction per batch (`--max-records`, 500) in multi-row statements: the best case
  for the issue's ceiling. The processor writes more rows than that for the same events.
- `naive`: one transaction per event (ledger row, wallet upsert, commit): the floor.
- `same_rows`: exactly the rows the processor writes for these events (durable claims, every
  grant's ledger rows, wallet deltas, cap counters, refusals), written straight into MySQL
  the ceiling's way (bench/rewards_rows.py): what the rows alone cost, without the work.
Ratios `vs_ceiling`, `vs_naive` and `vs_same_rows` compare throughputs; the target is
vs_ceiling >= 0.5. The ceiling is the issue's: one ledger row and one wallet upsert per event.
The subject runs with the default `dedup` setting (processor: the transaction's durable claim
alone); `by_dedup_mode.runtime` is the same processor measured in the same rounds with the
runtime's Redis lease and mark around each batch as well.

`liveops bench rewards --events 20000 --rounds 3` prints the JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiomysql
import pymysql
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from bench import harness, rewards_rows
from bench.child import batch_result, drop_keys, result
from bench.harness import ChildSpec
from schemas.codec import encode
from schemas.liveops.v1 import actions_pb2, purchases_pb2
from schemas.liveops.v1.envelope_pb2 import ClientInfo, Envelope, Platform
from topics.admin import apply_plan
from topics.catalog import DAY_MS, REWARDS_GRANTED, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool, migrate
from workers.processors.rewards import ledger
from workers.processors.rewards.grants import AssetKind
from workers.processors.rewards.processor import RewardsProcessor
from workers.processors.rewards.settings import RewardsSettings
from workers.processors.rewards.sql import insert_rows
from workers.runtime.context import WorkerContext
from workers.runtime.processor import DedupMode, Outcome
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import RunLimits, Worker
from workers.settings import (
    BatchSettings,
    FleetSettings,
    MySQLSettings,
    ProcessorBatches,
    RedisSettings,
)

DEFAULT_MYSQL = "mysql://root@127.0.0.1:3306/mysql"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
BATCH_SIZE = 500
PLAYERS = 2_000
_BENCH_RUNTIME = RuntimeSettings(session_timeout_ms=6_000, heartbeat_interval_ms=1_000)


def realistic_envelopes(events: int, seed: int = 7) -> Iterator[Envelope]:
    """Mostly levels and matches, some logins and quests, a few purchases, 2,000 players."""
    rng = random.Random(seed)
    for n in range(events):
        player = f"bench-p{rng.randrange(PLAYERS)}"
        envelope = Envelope(
            event_id=f"bench-{n}",
            idempotency_key=f"bench-{n}",
            player_id=player,
            client=ClientInfo(platform=Platform.PLATFORM_ANDROID, app_version="2.14.0"),
        )
        envelope.received_at.GetCurrentTime()
        draw = rng.random()
        if draw < 0.5:
            level = actions_pb2.LevelCompleted(level_id=f"{n % 90}", stars=rng.randrange(1, 4))
            envelope.level_completed.CopyFrom(level)
        elif draw < 0.8:
            won = rng.random() < 0.6
            outcome = actions_pb2.MATCH_OUTCOME_WIN if won else actions_pb2.MATCH_OUTCOME_LOSS
            match = actions_pb2.MatchResult(match_id=f"m{n}", mode="ranked", outcome=outcome)
            envelope.match_result.CopyFrom(match)
        elif draw < 0.9:
            envelope.daily_login.streak_days = rng.randrange(1, 10)
        elif draw < 0.97:
            envelope.quest_completed.quest_id = f"q{rng.randrange(40)}"
        else:
            verified = purchases_pb2.PurchaseVerified(
                store=purchases_pb2.STORE_GOOGLE,
                product_id="com.example.game.gems.small",
                transaction_id=f"GPA.{n}",
            )
            envelope.purchase_verified.CopyFrom(verified)
        yield envelope


async def preload(kafka: KafkaSettings, topic: Topic, events: int) -> None:
    await apply_plan(kafka, (topic, REWARDS_GRANTED))
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all", linger_ms=20)
    await producer.start()
    try:
        sends = [
            await producer.send(topic.name, encode(e), key=e.player_id.encode())
            for e in realistic_envelopes(events)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def fresh_database(root_dsn: str) -> MySQLTarget:
    """A migrated database of this child's own, so every round starts from empty tables."""
    root = MySQLTarget.from_dsn(root_dsn)
    name = f"bench_rewards_{uuid.uuid4().hex[:10]}"
    with pymysql.connect(
        host=root.host, port=root.port, user=root.user, password=root.password
    ) as c:
        c.cursor().execute(f"CREATE DATABASE `{name}`")
    target = MySQLTarget(root.host, root.port, root.user, root.password, name)
    migrate(target)
    return target


@contextlib.asynccontextmanager
async def scratch_database(root_dsn: str) -> AsyncIterator[MySQLTarget]:
    """A fresh migrated database for one measurement, dropped after it."""
    target = await asyncio.to_thread(fresh_database, root_dsn)
    try:
        yield target
    finally:
        await asyncio.to_thread(drop_database, target)


def drop_database(target: MySQLTarget) -> None:
    with pymysql.connect(
        host=target.host, port=target.port, user=target.user, password=target.password
    ) as c:
        c.cursor().execute(f"DROP DATABASE IF EXISTS `{target.database}`")


class _TimedRewards(RewardsProcessor):
    """The real processor on a group of this run, recording each batch's handle() time."""

    spans: list[tuple[float, float, int]]

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        started = time.perf_counter()
        outcomes = await super().handle(batch)
        self.spans.append((started, time.perf_counter(), len(batch)))
        return outcomes


async def measure_subject(args: argparse.Namespace, target: MySQLTarget) -> dict[str, Any]:
    source = Topic(args.topic, 6, DAY_MS, "bench", "Preloaded benchmark events.")
    group = ConsumerGroup(f"bench-rewards-{uuid.uuid4().hex[:8]}", (source,), retry_delays_s=())
    timed = type("BenchRewards", (_TimedRewards,), {"group": group, "spans": []})
    settings = FleetSettings(
        kafka=KafkaSettings(bootstrap_servers=args.bootstrap),
        redis=RedisSettings(key_prefix=f"bench-{uuid.uuid4().hex[:8]}"),
        mysql=MySQLSettings(),
        batch=ProcessorBatches(rewards=BatchSettings(max_records=args.max_records)),
    )
    pool = await create_pool(target, maxsize=4)
    redis = aioredis.Redis.from_url(args.redis_url)
    try:
        context = WorkerContext(settings, redis, pool, CollectorRegistry())
        chosen = RewardsSettings(dedup=args.dedup) if args.dedup else RewardsSettings()
        processor = timed(pool, chosen, metrics=context.metrics)
        worker = Worker(context, [processor], runtime=_BENCH_RUNTIME)
        worker.progress.batch_log = []
        await worker.run(RunLimits(max_events=args.events, idle_s=30))
    finally:
        pool.close()
        await pool.wait_closed()
        await drop_keys(redis, settings.redis.key_prefix)
        await redis.aclose()
    # How much of the wall time was the processor's own (the rest is the runtime's: poll,
    # Redis dedup, publishing the outputs, committing offsets).
    return batch_result(
        worker.progress.batch_log,
        in_handle_s=sum(end - start for start, end, _ in processor.spans),
    )


def _rows(events: int) -> Iterator[tuple[tuple[object, ...], tuple[object, ...]]]:
    """A ledger row and its wallet delta per event, as the processor would write them."""
    rng = random.Random(11)
    for n in range(events):
        player = f"bench-p{rng.randrange(PLAYERS)}"
        key = f"bench-{n}"
        ledger = (uuid.uuid4().hex, player, "currency", "coins", 100, "level_completed")
        yield (*ledger, "rewards", key, key, "level-completed", 1), (player, "coins", 100)


_LEDGER = (
    "INSERT INTO reward_ledger (grant_id, player_id, asset_kind, asset_id, amount, reason, "
    "source, idempotency_key, source_event_id, rule_id, rule_version)"
)
_WALLET = ledger.WALLET_INSERTS[AssetKind.CURRENCY]


async def measure_mysql_only(args: argparse.Namespace, target: MySQLTarget) -> dict[str, Any]:
    """`ceiling`: 500 events per transaction, multi-row; `naive`: one transaction per event."""
    rows = list(_rows(args.events))
    per_txn = args.max_records if args.mode == "ceiling" else 1
    pool: aiomysql.Pool = await create_pool(target, maxsize=1)
    try:
        async with pool.acquire() as conn, conn.cursor() as cursor:
            started = time.perf_counter()
            for first in range(0, len(rows), per_txn):
                chunk = rows[first : first + per_txn]
                # The processor's own statement builder: the ceiling pays no extra cost.
                await insert_rows(cursor, _LEDGER, [ledger for ledger, _ in chunk])
                await insert_rows(
                    cursor, _WALLET, sorted(wallet for _, wallet in chunk), ledger.WALLET_UPSERT
                )
                await conn.commit()
            finished = time.perf_counter()
    finally:
        pool.close()
        await pool.wait_closed()
    return result(len(rows), started, finished)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point of `python -m bench.child rewards --mode ...` (one child process)."""
    options = argparse.ArgumentParser()
    modes = ("subject", "ceiling", "naive", "same_rows")
    options.add_argument("--mode", choices=modes, default="subject")
    options.add_argument("--mysql-dsn", default=DEFAULT_MYSQL)
    options.add_argument("--redis-url", default=DEFAULT_REDIS)
    options.add_argument("--max-records", type=int, default=BATCH_SIZE)
    options.add_argument("--dedup", choices=[m.value for m in DedupMode], default=None)
    options.parse_args(args.rest, namespace=args)
    if args.mode == "same_rows":  # bench/rewards_rows.py
        async with scratch_database(args.mysql_dsn) as processed:
            await measure_subject(args, processed)  # not timed: it writes the rows to replay
            async with scratch_database(args.mysql_dsn) as target:
                return await rewards_rows.replay(processed, target, args.max_records)
    async with scratch_database(args.mysql_dsn) as target:
        if args.mode == "subject":
            return await measure_subject(args, target)
        return await measure_mysql_only(args, target)


def run(
    events: int,
    rounds: int,
    *,
    bootstrap: str | None = None,
    mysql_dsn: str = DEFAULT_MYSQL,
    redis_url: str = DEFAULT_REDIS,
    max_records: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Preload, measure subject and references, return the JSON line's dict."""
    with harness.preloaded_topic(bootstrap, "rewards", events, preload) as (bootstrap, topic):
        extra = (
            *("--mysql-dsn", mysql_dsn, "--redis-url", redis_url),
            *("--max-records", str(max_records)),
        )
        return harness.measure(
            "rewards",
            ChildSpec("rewards", "rewards", ("--mode", "subject", *extra)),
            [
                ChildSpec("ceiling", "rewards", ("--mode", "ceiling", *extra)),
                ChildSpec("naive", "rewards", ("--mode", "naive", *extra)),
                ChildSpec("same_rows", "rewards", ("--mode", "same_rows", *extra)),
            ],
            bootstrap=bootstrap,
            topic=topic,
            events=events,
            rounds=rounds,
            variants=[
                ChildSpec("runtime", "rewards", ("--mode", "subject", "--dedup", "runtime", *extra))
            ],
            variants_key="by_dedup_mode",
        )
