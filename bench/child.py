"""Measured programs, one per child process: `python -m bench.child KIND --bootstrap ...`.

Each consumes `--events` records of a preloaded topic from the beginning with a fresh consumer
group and writes one JSON object into --result-file: throughput_eps (first record to last),
peak_rss_mb, and for subjects p50_ms/p99_ms. References: `raw` (aiokafka getmany, the ceiling of
any Python consumer), `quix_empty` (an empty Quix Streams pipeline), `faust_empty` (an empty
faust-streaming agent).
Any other KIND is a subject module `bench.<KIND>` with `async def measure(args) -> dict`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis.asyncio as aioredis


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM, not getrusage's ru_maxrss, which Linux carries
    across exec (every child reported at least the harness's RSS at fork time)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def result(events: int, started: float, finished: float, **extra: Any) -> dict[str, Any]:
    elapsed = max(finished - started, 1e-9)
    return {"throughput_eps": round(events / elapsed, 1), "peak_rss_mb": peak_rss_mb(), **extra}


def batch_result(
    batch_log: Sequence[tuple[float, float, int, float]],
    *,
    in_handle_s: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """result() of a subject on the runtime, from its batch log (Progress.batch_log: polled_at,
    settled_at, size, cpu_s per batch; settled: effects durable, outputs acknowledged, dedup
    marked, offsets staged for the next commit, at most LIVEOPS_RUNTIME__COMMIT_INTERVAL_MS
    later).
    Throughput runs from the first poll to the last settle; each event's latency from its
    batch's poll to its settle (p50/p99); `handle_share`, when the time inside handle() is
    given, is that time over the whole run. `cpu_us_per_event` is the worker process's CPU
    time from the first settle to the last, per event settled in between: unlike throughput,
    it does not move when the process waits (a fetch stall, a busy core elsewhere), so it
    tells a change in our own Python work apart from the machine's noise."""
    per_event_ms = [(end - start) * 1000 for start, end, n, _ in batch_log for _ in range(n)]
    cuts = statistics.quantiles(per_event_ms, n=100) if len(per_event_ms) > 1 else [0.0] * 99
    handled = sum(n for _, _, n, _ in batch_log)
    first, last = (batch_log[0][0], batch_log[-1][1]) if batch_log else (0.0, 0.0)
    if in_handle_s is not None:
        extra["handle_share"] = round(in_handle_s / max(last - first, 1e-9), 3)
    if len(batch_log) > 1:
        after_first = handled - batch_log[0][2]
        cpu_s = batch_log[-1][3] - batch_log[0][3]
        extra["cpu_us_per_event"] = round(cpu_s / after_first * 1e6, 2)
    return result(
        handled,
        first,
        last,
        p50_ms=round(cuts[49], 2),
        p99_ms=round(cuts[98], 2),
        mean_batch=round(handled / max(len(batch_log), 1), 1),
        **extra,
    )


async def drop_keys(redis: aioredis.Redis, prefix: str) -> None:
    """Unlink a run's Redis keys, a thousand per call (one DEL each took seconds)."""
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            await redis.unlink(*batch)
            batch.clear()
    if batch:
        await redis.unlink(*batch)


async def measure_raw(args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, started = 0, 0.0
    try:
        while seen < args.events:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batches.values():
                if records and not started:
                    started = time.perf_counter()
                seen += len(records)
    finally:
        finished = time.perf_counter()
        await consumer.stop()
    return result(seen, started, finished)


def measure_quix(args: argparse.Namespace) -> dict[str, Any]:
    from quixstreams import Application

    marks: dict[str, float] = {}
    seen = 0

    def on_processed(_topic: str, _partition: int, _offset: int) -> None:
        nonlocal seen
        seen += 1
        if seen == 1:
            marks["start"] = time.perf_counter()
        marks["end"] = time.perf_counter()

    # Quix keeps a state directory, by default `state` in the current one: the repo.
    state_dir = tempfile.mkdtemp(prefix="bench-quix-")
    app = Application(
        broker_address=args.bootstrap,
        state_dir=state_dir,
        consumer_group=f"bench-quix-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        use_changelog_topics=False,
        auto_create_topics=False,
        loglevel="WARNING",
        on_message_processed=on_processed,
        # The embedded broker completes a new group's first join about half a session timeout
        # after it starts: with Quix's 45 s default, every run waited ~23 s for its first
        # record (not timed, but every bench run paid it). The bench's own programs use 6 s.
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 2000},
    )
    topic = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    app.dataframe(topic)
    try:
        app.run(count=args.events, timeout=120, collect=False)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return result(seen, marks.get("start", 0.0), marks.get("end", 0.0))


def measure_faust(args: argparse.Namespace) -> None:
    """faust owns the event loop and exits through os._exit once the count is reached."""
    import faust

    # faust keeps a data directory, by default `<app id>-data` in the current one: the repo.
    datadir = tempfile.mkdtemp(prefix="bench-faust-")
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex}",
        broker=f"kafka://{args.bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        topic_disable_leader=True,
        web_enabled=False,
        producer_acks=1,
        consumer_auto_offset_reset="earliest",
        store="memory://",
        topic_allow_declare=False,
        datadir=datadir,
        # As for Quix above: faust's default (~60 s) made each run wait ~30 s to join.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=2.0,
    )
    topic = app.topic(args.topic, value_type=bytes, key_type=bytes)
    state: dict[str, Any] = {"seen": 0, "start": 0.0}

    @app.agent(topic)
    async def empty(stream: Any) -> None:
        async for _value in stream:
            state["seen"] += 1
            if state["seen"] == 1:
                state["start"] = time.perf_counter()
            if state["seen"] >= args.events:
                line = result(state["seen"], state["start"], time.perf_counter())
                emit(args, line)
                shutil.rmtree(datadir, ignore_errors=True)  # os._exit runs no cleanup
                os._exit(0)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


def emit(args: argparse.Namespace, line: dict[str, Any]) -> None:
    """Write the result where the harness reads it (faust captures stdout into its logs)."""
    with open(args.result_file, "w") as out:
        json.dump(line, out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--result-file", required=True)
    args, rest = parser.parse_known_args()
    args.rest = rest
    logging.basicConfig(level=logging.WARNING)
    if args.kind == "faust_empty":
        measure_faust(args)
        return
    if args.kind == "quix_empty":
        line = measure_quix(args)
    elif args.kind == "raw":
        line = asyncio.run(measure_raw(args))
    else:
        subject = importlib.import_module(f"bench.{args.kind}")
        line = asyncio.run(subject.measure(args))
    emit(args, line)


if __name__ == "__main__":
    main()
