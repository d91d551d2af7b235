"""`liveops bench runtime`: what the worker runtime costs per event, against bare consumers.

One run (see bench/harness.py): preload a topic with realistic envelopes, then measure,
interleaved over several rounds, each in its own child process:
- `runtime` (the subject): a Worker running a processor that does nothing, so every cost is
  the runtime's own: poll, decode and validate, one Redis round trip to claim the batch, the
  handle call, one Redis round trip to mark it done, the offset commit (at most every
  LIVEOPS_RUNTIME__COMMIT_INTERVAL_MS), metrics. Latency p50/p99 is per event, from the
  moment its batch was polled to its settle (bench/child.py batch_result). Throughput runs
  from the first batch's poll to the last batch's settle.
- `by_dedup_mode`: the subject's figures again under `runtime` (DedupMode.RUNTIME, the
  default), next to `processor`: the same null processor declaring DedupMode.PROCESSOR,
  measured in the same rounds, so the runtime skips both Redis round trips; what a processor
  that guards itself (leaderboards) pays the runtime. Each with throughput, p50/p99, ratios.
- `by_pipeline`: the subject (`pipelined`: a batch settles while the next is handled) next
  to `sequential` (LIVEOPS_RUNTIME__PIPELINE=false: one batch at a time), same rounds.
- `by_claim_ahead`: the subject (`on`: the next batch's claim is sent before this one is
  handled) next to `off` (LIVEOPS_RUNTIME__CLAIM_AHEAD=false), same rounds.
- `raw`: aiokafka getmany with nothing done (the ceiling of any Python consumer);
- `quix_empty`, `faust_empty`: empty pipelines of the two stream frameworks;
- `naive`: the same work one event at a time on a plain consumer: decode and validate, claim
  its dedup key (one Redis round trip), the null handle, mark it done (another round trip);
  offsets committed once per poll. The floor that batching the dedup round trips lifts.
Ratios compare throughputs. The run prints one JSON line.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import aiomysql
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from bench import harness
from bench.child import batch_result, drop_keys, result
from bench.harness import ChildSpec
from bench.rewards import preload
from schemas.codec import decode, validate
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import DAY_MS, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool
from workers.runtime.context import WorkerContext
from workers.runtime.dedup import Deduplicator
from workers.runtime.processor import DedupMode, Outcome
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import RunLimits, Worker
from workers.settings import FleetSettings, RedisSettings

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_MYSQL = "mysql://root@127.0.0.1:3306/mysql"
_BENCH_RUNTIME = RuntimeSettings(session_timeout_ms=6_000, heartbeat_interval_ms=1_000)


class NullProcessor:
    """Applies nothing: what is left is the runtime."""

    name: ClassVar[str] = "bench-null"
    version: ClassVar[str] = "1"
    dedup: ClassVar[DedupMode] = DedupMode.RUNTIME

    def __init__(self, group: ConsumerGroup) -> None:
        self.group = group

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        return [Outcome.applied() for _ in batch]


class SelfGuardedNullProcessor(NullProcessor):
    """The null processor declaring that it guards itself: the runtime without Redis dedup
    (it checks nothing itself: a measurement of the runtime, not a processor to copy)."""

    dedup: ClassVar[DedupMode] = DedupMode.PROCESSOR


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point of `python -m bench.child runtime` (one child process)."""
    options = argparse.ArgumentParser()
    options.add_argument("--redis-url", default=DEFAULT_REDIS)
    options.add_argument("--mysql-dsn", default=DEFAULT_MYSQL)
    options.add_argument("--dedup", choices=[m.value for m in DedupMode], default="runtime")
    options.add_argument("--naive", action="store_true")
    options.add_argument("--no-pipeline", action="store_true")
    options.add_argument("--no-claim-ahead", action="store_true")
    options.parse_args(args.rest, namespace=args)
    if args.naive:
        return await measure_naive(args)
    null = SelfGuardedNullProcessor if args.dedup == DedupMode.PROCESSOR else NullProcessor
    source = Topic(args.topic, 6, DAY_MS, "bench", "Preloaded benchmark events.")
    group = ConsumerGroup(f"bench-runtime-{uuid.uuid4().hex[:8]}", (source,), retry_delays_s=())
    settings = FleetSettings(
        kafka=KafkaSettings(bootstrap_servers=args.bootstrap),
        redis=RedisSettings(key_prefix=f"bench-{uuid.uuid4().hex[:8]}"),
    )
    redis = aioredis.Redis.from_url(args.redis_url)
    # The pool is part of the context; the null processor never uses it.
    pool: aiomysql.Pool = await create_pool(MySQLTarget.from_dsn(args.mysql_dsn), maxsize=1)
    try:
        context = WorkerContext(settings, redis, pool, CollectorRegistry())
        runtime = _BENCH_RUNTIME.model_copy(
            update={"pipeline": not args.no_pipeline, "claim_ahead": not args.no_claim_ahead}
        )
        worker = Worker(context, [null(group)], runtime=runtime)
        worker.progress.batch_log = []
        await worker.run(RunLimits(max_events=args.events, idle_s=30))
    finally:
        pool.close()
        await pool.wait_closed()
        await drop_keys(redis, settings.redis.key_prefix)
        await redis.aclose()
    return batch_result(worker.progress.batch_log)


async def measure_naive(args: argparse.Namespace) -> dict[str, Any]:
    """One event at a time: two Redis round trips per event, a commit per poll."""
    prefix = f"bench-naive-{uuid.uuid4().hex[:8]}"
    redis = aioredis.Redis.from_url(args.redis_url)
    dedup = Deduplicator(
        redis, prefix=prefix, processor="bench-naive", worker_id="naive", settings=_BENCH_RUNTIME
    )
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=f"bench-naive-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, started, finished = 0, 0.0, 0.0
    try:
        while seen < args.events:
            polled = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in polled.values():
                for record in records:
                    if not started:
                        started = time.perf_counter()
                    key = validate(decode(record.value)).idempotency_key
                    await dedup.finish((await dedup.claim([key])).marker)
                    seen += 1
            if polled:
                await consumer.commit()
        finished = time.perf_counter()
    finally:
        await consumer.stop()
        await drop_keys(redis, prefix)
        await redis.aclose()
    return result(seen, started, finished)


def run(
    events: int,
    rounds: int,
    *,
    bootstrap: str | None = None,
    redis_url: str = DEFAULT_REDIS,
    mysql_dsn: str = DEFAULT_MYSQL,
) -> dict[str, Any]:
    """Preload, measure subject and references, return the JSON line's dict."""
    with harness.preloaded_topic(bootstrap, "runtime", events, preload) as (bootstrap, topic):
        stores = ("--redis-url", redis_url, "--mysql-dsn", mysql_dsn)
        line = harness.measure(
            "runtime",
            ChildSpec("runtime", "runtime", (*stores, "--dedup", "runtime")),
            [
                ChildSpec("raw", "raw"),
                ChildSpec("quix_empty", "quix_empty"),
                ChildSpec("faust_empty", "faust_empty"),
                ChildSpec("naive", "runtime", ("--redis-url", redis_url, "--naive")),
            ],
            bootstrap=bootstrap,
            topic=topic,
            events=events,
            rounds=rounds,
            variants=[
                ChildSpec("processor", "runtime", (*stores, "--dedup", "processor")),
                ChildSpec("sequential", "runtime", (*stores, "--no-pipeline")),
                ChildSpec("claim_ahead_off", "runtime", (*stores, "--no-claim-ahead")),
            ],
        )
        # Each variant next to the subject's own figures (Redis dedup, pipelined).
        variants = line.pop("variants")
        subject = {
            "throughput_eps": line["throughput_eps"],
            "p50_ms": line["p50_ms"],
            "p99_ms": line["p99_ms"],
            "cpu_us_per_event": line.get("cpu_us_per_event"),
            "ratios": dict(line["ratios"]),
        }
        line["by_dedup_mode"] = {"runtime": subject, "processor": variants["processor"]}
        line["by_pipeline"] = {"pipelined": subject, "sequential": variants["sequential"]}
        line["by_claim_ahead"] = {"on": subject, "off": variants["claim_ahead_off"]}
        return line
