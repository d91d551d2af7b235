"""`python -m tests.fault.launch --group NAME [--processor KIND]`: one worker on a test's group.

What `liveops worker KIND` does (probe, rewards or leaderboards, built from the same settings
sections), except that the processor consumes the test-only ConsumerGroup named NAME
(tests/fault/broker.py builds the same one) and the runtime knobs that decide how fast a fault
is noticed and recovered from are tighter than in production:
- a short dedup lease, so events leased by a SIGKILLed worker can be claimed again well
  before the (short) retry tiers are exhausted;
- a short back-off cap, so the worker notices a restored MySQL within a second or two;
- optionally a shorter session timeout, so a killed worker's partitions come back sooner.
Settings come from LIVEOPS_* variables, as for any worker; SIGTERM stops it gracefully.

rewards and leaderboards declare their catalog group as a class attribute; the launcher runs
a subclass that only replaces it (`on_group`), so every line of their code runs unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from topics.catalog import ConsumerGroup
from workers.logs import configure_logging
from workers.processors.leaderboards.definitions import load_definitions
from workers.processors.leaderboards.factory import leaderboard_settings
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.probe import ProbeProcessor
from workers.processors.rewards.processor import RewardsProcessor
from workers.runtime.context import WorkerContext, open_context
from workers.runtime.processor import Processor
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import Worker
from workers.settings import FleetSettings, SettingsError, load_settings

from .broker import fault_group
from .kinds import PAYLOADS, PROBE
from .leaderboards_check import LEADERBOARDS
from .rewards_check import REWARDS

DEFAULT_LEASE_MS = 3_000
DEFAULT_BACKOFF_MAX_S = 1.0
DEFAULT_SHUTDOWN_DEADLINE_S = 20.0
P = TypeVar("P")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fault.launch", description=__doc__)
    parser.add_argument("--group", required=True, help="the test's unique name")
    parser.add_argument("--processor", choices=sorted(PAYLOADS), default=PROBE)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--retry-delays-s", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--lease-ms", type=int, default=DEFAULT_LEASE_MS)
    parser.add_argument("--backoff-max-s", type=float, default=DEFAULT_BACKOFF_MAX_S)
    parser.add_argument("--shutdown-deadline-s", type=float, default=DEFAULT_SHUTDOWN_DEADLINE_S)
    parser.add_argument("--session-timeout-ms", type=int, default=None)
    return parser.parse_args(argv)


def on_group(cls: type[P], group: ConsumerGroup) -> type[P]:
    """A subclass of `cls` whose only difference is its consumer group."""
    return cast(type[P], type(f"{cls.__name__}OnTestGroup", (cls,), {"group": group}))


def build_processor(kind: str, context: WorkerContext, group: ConsumerGroup) -> Processor:
    """The processor `liveops worker KIND` builds (see workers/processors/registry.py), on
    `group`: the same constructor arguments from the same settings sections."""
    if kind == REWARDS:
        rewards = on_group(RewardsProcessor, group)
        return rewards(context.mysql, context.settings.rewards, metrics=context.metrics)
    if kind == LEADERBOARDS:
        settings = leaderboard_settings(context.settings)
        leaderboards = on_group(LeaderboardsProcessor, group)
        return leaderboards(
            redis=context.redis,
            mysql=context.mysql,
            definitions=load_definitions(settings.definitions_path),
            key_prefix=context.key_prefix,
            settings=settings,
            kafka=context.settings.kafka,
            dedup_ttl_s=context.settings.runtime.dedup_ttl_s,
            metrics=context.metrics,
        )
    return ProbeProcessor(context, group)


async def run(settings: FleetSettings, args: argparse.Namespace) -> int:
    group = fault_group(
        args.group,
        partitions=args.partitions,
        retry_delays_s=tuple(args.retry_delays_s),
        payloads=PAYLOADS[args.processor],
    )
    liveness: dict[str, Any] = {}  # RuntimeSettings fields
    if args.session_timeout_ms is not None:
        liveness = {
            "session_timeout_ms": args.session_timeout_ms,
            "heartbeat_interval_ms": max(args.session_timeout_ms // 3, 100),
        }
    runtime = RuntimeSettings(
        lease_ms=args.lease_ms,
        backoff_initial_s=min(0.1, args.backoff_max_s),
        backoff_max_s=args.backoff_max_s,
        shutdown_deadline_s=args.shutdown_deadline_s,
        **liveness,
    )
    async with open_context(settings) as context:
        worker = Worker(
            context,
            [build_processor(args.processor, context, group)],
            runtime=runtime,
            metrics_port=settings.metrics_port,
        )
        await worker.run(handle_signals=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"launch: bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    return asyncio.run(run(settings, args))


if __name__ == "__main__":
    sys.exit(main())
