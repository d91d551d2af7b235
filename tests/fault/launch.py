"""`python -m tests.fault.launch --group NAME`: one probe worker on a fault test's own group.

What `liveops worker probe` does, except that the probe consumes the test-only ConsumerGroup
named NAME (tests/fault/broker.py builds the same one) and the runtime knobs that decide how
fast a fault is noticed and recovered from are tighter than in production:
- a short dedup lease, so events leased by a SIGKILLed worker can be claimed again well
  before the (short) retry tiers are exhausted;
- a short back-off cap, so the worker notices a restored MySQL within a second or two.
Settings come from LIVEOPS_* variables, as for any worker; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from workers.logs import configure_logging
from workers.processors.probe import ProbeProcessor
from workers.runtime.context import open_context
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import Worker
from workers.settings import FleetSettings, SettingsError, load_settings

from .broker import fault_group

DEFAULT_LEASE_MS = 3_000
DEFAULT_BACKOFF_MAX_S = 1.0
DEFAULT_SHUTDOWN_DEADLINE_S = 20.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fault.launch", description=__doc__)
    parser.add_argument("--group", required=True, help="the test's unique name")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--retry-delays-s", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--lease-ms", type=int, default=DEFAULT_LEASE_MS)
    parser.add_argument("--backoff-max-s", type=float, default=DEFAULT_BACKOFF_MAX_S)
    parser.add_argument("--shutdown-deadline-s", type=float, default=DEFAULT_SHUTDOWN_DEADLINE_S)
    return parser.parse_args(argv)


async def run(settings: FleetSettings, args: argparse.Namespace) -> int:
    group = fault_group(
        args.group, partitions=args.partitions, retry_delays_s=tuple(args.retry_delays_s)
    )
    runtime = RuntimeSettings(
        lease_ms=args.lease_ms,
        backoff_initial_s=min(0.1, args.backoff_max_s),
        backoff_max_s=args.backoff_max_s,
        shutdown_deadline_s=args.shutdown_deadline_s,
    )
    async with open_context(settings) as context:
        worker = Worker(
            context,
            [ProbeProcessor(context, group)],
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
