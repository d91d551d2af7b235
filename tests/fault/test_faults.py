"""Issue 3's fault tests: real worker processes, real broker, Redis and MySQL, exact final state.

Each test drives 3,000 distinct events (more deliveries, with duplicates) through the probe
processor while something goes wrong, then requires every effect exactly once: a row per event
in MySQL, the per-player counts in Redis (except where Redis is flushed on purpose), and nothing
in the dead letters that should not be there. Faults never touch the shared servers: MySQL is
cut through a FaultProxy, Redis is flushed on a PrivateRedis. The other two scenarios, a second
worker joining and leaving and garbage records, run for the probe in test_processor_faults.py,
in one test with the real processors.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from .conftest import MakeScenario
from .events import build_plan
from .kinds import PROBE
from .proxy import FaultProxy
from .redis_server import PrivateRedis

EVENTS = 3000
READY_TIMEOUT_S = 45.0
#: How long MySQL stays unreachable once the worker has noticed: the fault, not a wait.
OUTAGE_S = 3.0

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(150)]


async def test_every_event_delivered_two_or_three_times_is_applied_once(
    make_scenario: MakeScenario,
) -> None:
    # Given every event on the topic two or three times (producer and client retries),
    scenario = await make_scenario()
    plan = build_plan(scenario.config.group, events=EVENTS, copies=(2, 3))
    ends = await scenario.preload(plan.records)

    # When one worker consumes them all,
    worker = scenario.start_worker("a")
    await scenario.settle(plan, ends)

    # Then each effect exists once, every extra copy was counted as a duplicate, none failed.
    assert await worker.metric("liveops_duplicates_total", processor=PROBE) == (
        plan.deliveries - len(plan.expected)
    )
    assert await scenario.dead_letters(expected=0) == []


async def test_worker_killed_mid_run_then_restarted_loses_and_doubles_nothing(
    make_scenario: MakeScenario,
) -> None:
    with FaultProxy("127.0.0.1", 3306) as mysql_link:
        # The dead worker's leases outlive the restart (the group only hands its partitions
        # over after the session timeout), and the retry tiers (5 + 10 + 20 s) outlive the
        # leases: the restarted worker finds those events leased, sends them through the retry
        # tiers and applies them once the leases have expired.
        scenario = await make_scenario(
            mysql_port=mysql_link.port, lease_ms=25_000, retry_delays_s=(5, 10, 20)
        )
        plan = build_plan(scenario.config.group, events=EVENTS, copies=(1, 2))
        half = len(plan.records) // 2
        await scenario.preload(plan.records[:half])
        first = scenario.start_worker("a")
        await scenario.wait_progress(len(plan.expected) // 4)

        # MySQL slows down and more events arrive, so the worker is surely inside a batch
        # (claimed in Redis, its transaction open) when the node dies with SIGKILL: nothing of
        # that batch finishes or commits.
        mysql_link.delay(300)
        ends = await scenario.preload(plan.records[half:])
        await _wait_until(scenario.reader.in_flight, "no batch in flight to kill")
        first.kill()
        assert await first.wait_exit(10) == -signal.SIGKILL
        mysql_link.delay(0)
        applied_at_kill = await scenario.reader.applied_count()
        assert applied_at_kill < len(plan.expected), "the kill came after the run: not mid-run"
        assert await scenario.reader.in_flight() > 0, "the dead worker left no lease behind"

        scenario.start_worker("b")
        # Longer than the others: the session timeout, then up to two retry tiers.
        await scenario.settle(plan, ends, timeout_s=100)
        assert await scenario.dead_letters(expected=0) == []


async def test_redis_flushed_mid_run_mysql_effects_stay_exactly_once(
    make_scenario: MakeScenario,
) -> None:
    with PrivateRedis() as redis_server:
        scenario = await make_scenario(redis_url=redis_server.url)
        plan = build_plan(scenario.config.group, events=EVENTS, copies=(1, 2))
        half = len(plan.records) // 2
        await scenario.preload(plan.records[:half])
        worker = scenario.start_worker("a")
        await scenario.wait_progress(len(plan.expected) // 4)

        # Every dedup marker is gone (a failover to an empty replica), mid-run,
        redis_server.flush_all()
        flushed_at = await scenario.reader.applied_count()
        # the rest arrives, and everything sent before the flush is delivered once more: only
        # MySQL still knows those events were applied.
        await scenario.preload(plan.records[half:])
        ends = await scenario.preload(plan.records[:half])

        # Then MySQL holds each effect once (settle checks probe_effects and processed_events).
        # Redis counts are not checked: the flush erased them, and replays count again there.
        await scenario.settle(plan, ends, redis_lost=True)
        assert flushed_at < len(plan.expected), "the flush came after the run: not mid-run"
        assert worker.returncode is None
        assert await scenario.dead_letters(expected=0) == []


@pytest.mark.parametrize("dependency", ["mysql", "redis"])
async def test_dependency_cut_then_restored_worker_recovers_without_restart(
    make_scenario: MakeScenario, dependency: str
) -> None:
    # The worker reaches MySQL (or Redis) only through a proxy; the checker reads directly.
    with FaultProxy("127.0.0.1", 3306 if dependency == "mysql" else 6379) as link:
        if dependency == "mysql":
            scenario = await make_scenario(mysql_port=link.port)
        else:
            scenario = await make_scenario(worker_redis_url=f"redis://127.0.0.1:{link.port}/0")
        plan = build_plan(scenario.config.group, events=EVENTS, copies=(1, 2))
        half = len(plan.records) // 2
        ends = await scenario.preload(plan.records[:half])
        worker = scenario.start_worker("a")
        assert await worker.wait_for_status("/readyz", 200, timeout_s=READY_TIMEOUT_S), (
            worker.log_tail()
        )
        await scenario.wait_progress(len(plan.expected) // 5)

        # The dependency goes away: open connections reset, new ones refused.
        link.cut()
        assert await worker.wait_for_status("/readyz", 503, timeout_s=30), worker.log_tail()
        ends = await scenario.preload(plan.records[half:])
        # The outage lasts a while (this sleep is the fault's length, not a wait for a result).
        await asyncio.sleep(OUTAGE_S)
        assert worker.returncode is None, f"the worker died while {dependency} was away"
        assert await worker.probe("/healthz") == 200, "the loop stopped during the outage"
        assert await scenario.reader.applied_count() < len(plan.expected)

        link.restore()
        assert await worker.wait_for_status("/readyz", 200, timeout_s=30), worker.log_tail()
        await scenario.settle(plan, ends)
        assert worker.returncode is None
        assert len(scenario.workers) == 1
        assert await scenario.dead_letters(expected=0) == []


async def _wait_until(
    value: Callable[[], Awaitable[float]], message: str, *, timeout_s: float = 30.0
) -> None:
    """Poll `value` until it is non-zero; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await value():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.05)
