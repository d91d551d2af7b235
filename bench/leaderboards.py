"""`liveops bench leaderboards`: the scoring processor on the real runtime, next to references.

One run (see bench/harness.py): preload a topic with score submissions (three boards: best,
increment, latest; 20,000 players), then measure, interleaved over several rounds, each in its
own child process:
- `leaderboards` (the subject): a Worker (pipelined loop, the default) running
  LeaderboardsProcessor with all the work done: consume, one Lua call per batch (dedup marker,
  operator, ranks, journal), the applied submissions copied to MySQL in before_commit() (while
  the next batch is handled), rank-changed events published and acknowledged, offsets
  staged and committed (at most every LIVEOPS_RUNTIME__COMMIT_INTERVAL_MS).
  Throughput runs from the first poll to the last settle; latency p50/p99 is per event, from
  the moment its batch was polled to its settle (bench/child.py batch_result; the
  topic is preloaded, so gateway time would only measure the queue). `handle_share` is the
  part of that time spent inside handle() (before_commit() overlaps it); `exactly_once` is
  1.0 when MySQL holds exactly one record per event.
- `quix_empty`, `faust_empty`: empty pipelines on the same topic (bench/child.py).
- `naive`: the same scoring one event at a time: one Lua call (one Redis round trip) per
  event, journal copied every 500 events; no runtime.
Then, once, `scale`: scoring and rank queries against boards preloaded with 10 thousand and
10 million players (`--scale-sizes`), to show how the cost grows with the board (O(log N)).

`liveops bench leaderboards --events 20000 --rounds 3` prints the JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomysql
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from bench import harness
from bench.child import batch_result, drop_keys, result
from bench.harness import ChildSpec
from bench.rewards import scratch_database
from schemas.codec import decode, encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import DAY_MS, LEADERBOARD_RANKS, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool
from workers.processors.leaderboards import keys, reads
from workers.processors.leaderboards.definitions import Definitions, parse_definitions
from workers.processors.leaderboards.journal import flush_journal
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.scoring import ScoringScript, Submission
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.runtime.context import WorkerContext
from workers.runtime.processor import Outcome
from workers.runtime.settings import WEEK_S, RuntimeSettings
from workers.runtime.worker import RunLimits, Worker
from workers.settings import FleetSettings, MySQLSettings, RedisSettings

DEFAULT_MYSQL = "mysql://root@127.0.0.1:3306/mysql"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
PLAYERS = 20_000
NAIVE_COPY_EVERY = 500
_BENCH_RUNTIME = RuntimeSettings(session_timeout_ms=6_000, heartbeat_interval_ms=1_000)
_SETTINGS = LeaderboardSettings(close_lazily=False, journal_copy_interval_s=0)
BOARDS = """
version = "bench"
[[leaderboards]]
id = "bench-arena"
operator = "best"
reset = "weekly"
max_score = 1000000
top_thresholds = [10, 100]

[[leaderboards]]
id = "bench-points"
operator = "increment"
reset = "monthly"
min_score = 1
max_score = 10000
top_thresholds = [10]

[[leaderboards]]
id = "bench-trophies"
operator = "latest"
max_score = 30000
top_thresholds = [100]
"""


def definitions() -> Definitions:
    return parse_definitions(BOARDS, source="bench")


def submissions(events: int, seed: int = 5) -> Iterator[Envelope]:
    """Half arena matches, a third event points, the rest trophy counts; 20,000 players."""
    rng = random.Random(seed)
    for n in range(events):
        envelope = Envelope(
            event_id=f"bench-{n}",
            idempotency_key=f"bench-{n}",
            player_id=f"p{rng.randrange(PLAYERS)}",
        )
        envelope.received_at.GetCurrentTime()
        draw = rng.random()
        if draw < 0.5:
            board, score = "bench-arena", rng.randrange(1_000_000)
        elif draw < 0.83:
            board, score = "bench-points", rng.randrange(1, 500)
        else:
            board, score = "bench-trophies", rng.randrange(30_000)
        envelope.score_submitted.leaderboard_id = board
        envelope.score_submitted.score = score
        yield envelope


async def preload(kafka: KafkaSettings, topic: Topic, events: int) -> None:
    await apply_plan(kafka, (topic, LEADERBOARD_RANKS))
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all", linger_ms=20)
    await producer.start()
    try:
        sends = [
            await producer.send(topic.name, encode(e), key=e.player_id.encode())
            for e in submissions(events)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


class _TimedLeaderboards(LeaderboardsProcessor):
    """The real processor on a group of this run, recording each batch's handle() time."""

    spans: list[tuple[float, float, int]]

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        started = time.perf_counter()
        outcomes = await super().handle(batch)
        self.spans.append((started, time.perf_counter(), len(batch)))
        return outcomes


async def _recorded(pool: aiomysql.Pool) -> int:
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM leaderboard_submissions"
        )
        rows, distinct = await cursor.fetchone()
        await conn.commit()
    return int(rows) if rows == distinct else -1


async def measure_subject(args: argparse.Namespace, target: MySQLTarget) -> dict[str, Any]:
    source = Topic(args.topic, 6, DAY_MS, "bench", "Preloaded benchmark events.")
    group = ConsumerGroup(f"bench-lb-{uuid.uuid4().hex[:8]}", (source,), retry_delays_s=())
    timed = type("BenchLeaderboards", (_TimedLeaderboards,), {"group": group, "spans": []})
    prefix = f"bench-lb-{uuid.uuid4().hex[:8]}"
    settings = FleetSettings(
        kafka=KafkaSettings(bootstrap_servers=args.bootstrap),
        redis=RedisSettings(key_prefix=prefix),
        mysql=MySQLSettings(),
    )
    pool = await create_pool(target, maxsize=4)
    redis = aioredis.Redis.from_url(args.redis_url)
    try:
        context = WorkerContext(settings, redis, pool, CollectorRegistry())
        processor = timed(
            redis=redis,
            mysql=pool,
            definitions=definitions(),
            key_prefix=prefix,
            settings=_SETTINGS,
            metrics=context.metrics,
        )
        worker = Worker(context, [processor], runtime=_BENCH_RUNTIME)
        worker.progress.batch_log = []
        await worker.run(RunLimits(max_events=args.events, idle_s=30))
        recorded = await _recorded(pool)
    finally:
        pool.close()
        await pool.wait_closed()
        await drop_keys(redis, prefix)
        await redis.aclose()
    return batch_result(
        worker.progress.batch_log,
        in_handle_s=sum(end - start for start, end, _ in processor.spans),
        exactly_once=1.0 if recorded == args.events else 0.0,
    )


async def measure_naive(args: argparse.Namespace, target: MySQLTarget) -> dict[str, Any]:
    """One Lua call per event, straight from a plain consumer: the floor batching lifts."""
    prefix = f"bench-naive-{uuid.uuid4().hex[:8]}"
    redis = aioredis.Redis.from_url(args.redis_url)
    pool = await create_pool(target, maxsize=2)
    checker = LeaderboardsProcessor(
        redis=redis, mysql=pool, definitions=definitions(), key_prefix=prefix, settings=_SETTINGS
    )
    script = ScoringScript(redis, prefix=prefix, dedup_ttl_s=WEEK_S)
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=f"bench-naive-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, started = 0, 0.0
    try:
        while seen < args.events:
            for records in (await consumer.getmany(timeout_ms=500, max_records=500)).values():
                for record in records:
                    if not started:
                        started = time.perf_counter()
                    checked = checker.submission_of(decode(record.value))
                    if isinstance(checked, Submission):
                        await script.apply([checked])
                    seen += 1
                    if seen % NAIVE_COPY_EVERY == 0:
                        await flush_journal(redis, pool, prefix=prefix)
        await flush_journal(redis, pool, prefix=prefix)
        finished = time.perf_counter()
    finally:
        await consumer.stop()
        pool.close()
        await pool.wait_closed()
        await drop_keys(redis, prefix)
        await redis.aclose()
    return result(seen, started, finished)


def _quantile_ms(samples: list[float], q: int) -> float:
    return round(statistics.quantiles(samples, n=100)[q - 1] * 1000, 3) if len(samples) > 1 else 0.0


async def _fill(redis: aioredis.Redis, key: str, size: int, codec: Any) -> None:
    rng = random.Random(size)
    chunk = 20_000
    for first in range(0, size, chunk):
        mapping = {
            f"s{i}": codec.encode(rng.randrange(1_000_000), rng.randrange(600_000))
            for i in range(first, min(first + chunk, size))
        }
        await redis.zadd(key, mapping)


async def measure_scale(args: argparse.Namespace) -> dict[str, Any]:
    """Scoring and rank-query costs against boards of each size in --scale-sizes."""
    board = definitions().get("bench-arena")
    assert board is not None  # noqa: S101 - defined just above in BOARDS
    now = datetime.now(UTC)
    period = period_at(board, now)
    redis = aioredis.Redis.from_url(args.redis_url)
    report: dict[str, Any] = {}
    try:
        for size in args.scale_sizes:
            prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
            key = keys.board_key(prefix, board.id, period.key)
            await _fill(redis, key, size, board.codec)
            script = ScoringScript(redis, prefix=prefix, dedup_ttl_s=600)
            rng = random.Random(1)
            batch_s: list[float] = []
            for b in range(20):
                batch = [
                    Submission(
                        f"k{b}-{i}",
                        f"e{b}-{i}",
                        f"s{rng.randrange(size)}",
                        board,
                        period,
                        rng.randrange(1_000_000),
                        now + timedelta(seconds=i),
                    )
                    for i in range(200)
                ]
                started = time.perf_counter()
                await script.apply(batch)
                batch_s.append(time.perf_counter() - started)
            reads_s: dict[str, list[float]] = {"top": [], "player": [], "around": []}
            for _ in range(300):
                player = f"s{rng.randrange(size)}"
                for name, call in (
                    (
                        "top",
                        reads.read_top(
                            redis,
                            prefix=prefix,
                            board=board,
                            period=period,
                            offset=rng.randrange(size - 10),
                            limit=10,
                        ),
                    ),
                    (
                        "player",
                        reads.read_player(
                            redis, prefix=prefix, board=board, period=period, player_id=player
                        ),
                    ),
                    (
                        "around",
                        reads.read_around(
                            redis,
                            prefix=prefix,
                            board=board,
                            period=period,
                            player_id=player,
                            radius=5,
                        ),
                    ),
                ):
                    started = time.perf_counter()
                    await call
                    reads_s[name].append(time.perf_counter() - started)
            report[str(size)] = {
                "scoring_eps": round(200 * len(batch_s) / sum(batch_s), 1),
                "scoring_batch_p50_ms": _quantile_ms(batch_s, 50),
                **{
                    f"{name}_p50_ms": _quantile_ms(samples, 50) for name, samples in reads_s.items()
                },
                **{
                    f"{name}_p99_ms": _quantile_ms(samples, 99) for name, samples in reads_s.items()
                },
            }
            await drop_keys(redis, prefix)
    finally:
        await redis.aclose()
    return report


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point of `python -m bench.child leaderboards --mode ...` (one child process)."""
    options = argparse.ArgumentParser()
    options.add_argument("--mode", choices=("subject", "naive", "scale"), default="subject")
    options.add_argument("--mysql-dsn", default=DEFAULT_MYSQL)
    options.add_argument("--redis-url", default=DEFAULT_REDIS)
    options.add_argument("--scale-sizes", type=int, nargs="+", default=[10_000, 10_000_000])
    options.parse_args(args.rest, namespace=args)
    if args.mode == "scale":
        return await measure_scale(args)
    async with scratch_database(args.mysql_dsn) as target:
        if args.mode == "subject":
            return await measure_subject(args, target)
        return await measure_naive(args, target)


def run(
    events: int,
    rounds: int,
    *,
    bootstrap: str | None = None,
    mysql_dsn: str = DEFAULT_MYSQL,
    redis_url: str = DEFAULT_REDIS,
    scale_sizes: Sequence[int] = (10_000, 10_000_000),
) -> dict[str, Any]:
    """Preload, measure subject and references, then the board-size scale; one dict."""
    with harness.preloaded_topic(bootstrap, "lb", events, preload) as (bootstrap, topic):
        extra = ("--mysql-dsn", mysql_dsn, "--redis-url", redis_url)
        line = harness.measure(
            "leaderboards",
            ChildSpec("leaderboards", "leaderboards", ("--mode", "subject", *extra)),
            [
                ChildSpec("quix_empty", "quix_empty"),
                ChildSpec("faust_empty", "faust_empty"),
                ChildSpec("naive", "leaderboards", ("--mode", "naive", *extra)),
            ],
            bootstrap=bootstrap,
            topic=topic,
            events=events,
            rounds=rounds,
        )
        if scale_sizes:
            sizes = tuple(str(s) for s in scale_sizes)
            scale = ChildSpec(
                "scale", "leaderboards", ("--mode", "scale", *extra, "--scale-sizes", *sizes)
            )
            line["scale"] = harness.run_child(scale, bootstrap, topic, events, 3600.0)
        return line
