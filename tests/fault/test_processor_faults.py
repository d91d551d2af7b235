"""Issues 4 and 5: the runtime's fault scenarios with the real rewards and leaderboards processors.

Each test runs one processor in real worker processes (tests/fault/launch.py) on a group of its
own, drives 2,000 distinct events (more deliveries, with duplicates) through it while something
goes wrong, and then requires the exact final state computed from the plan:
- rewards: every ledger row, wallet and inventory total of the test's players
  (tests/fault/rewards_check.py), then `find_mismatches` (what `liveops rewards verify` runs)
  finds nothing wrong with them;
- leaderboards: one journal row in MySQL per accepted submission, the exact sum (increment
  board) and best (best board) per player in Redis (tests/fault/leaderboards_check.py), then the
  boards rebuilt from MySQL with `rebuild_board` (what `liveops leaderboards rebuild` runs) hold
  the same scores.
The six scenarios of issue 3 (tests/fault/test_faults.py runs four of them with the probe):
duplicates, a worker killed, a second worker joining and leaving, Redis flushed, MySQL cut, and
garbage (where the dead-letter topic must hold exactly the bad records, each with its reason).
The rebalance and garbage scenarios run here for the probe too, one test for all three.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from .checker import StateReader
from .conftest import MakeScenario
from .events import EventPlan
from .kinds import PROBE, REAL_PROCESSORS, KindName
from .leaderboards_check import LEADERBOARDS, LeaderboardsReader, score_discrepancies
from .proxy import FaultProxy
from .redis_server import PrivateRedis
from .rewards_check import REWARDS, RewardsReader
from .scenario import Scenario

EVENTS = 2000
READY_TIMEOUT_S = 45.0
#: How long MySQL stays unreachable once the worker has noticed: the fault, not a wait.
OUTAGE_S = 3.0
STOP_TIMEOUT_S = 30.0
#: Shorter than the runtime's default (10 s): the embedded broker completes a group's first
#: join, and each rebalance, only about half a session timeout after it began.
SESSION_TIMEOUT_MS = 6_000

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(150)]
each_processor = pytest.mark.parametrize("kind", REAL_PROCESSORS)
#: The scenarios whose probe version is the same test (the probe has no audit to run).
each_kind = pytest.mark.parametrize("kind", (PROBE, *REAL_PROCESSORS))


class RebuildMismatchError(AssertionError):
    """Boards rebuilt from MySQL differ from the scores the plan implies."""


@each_processor
async def test_every_event_delivered_two_or_three_times_is_applied_once(
    make_scenario: MakeScenario, kind: KindName
) -> None:
    # Given every event on the topic two or three times (producer and client retries),
    scenario = await make_scenario(kind=kind)
    plan = scenario.build_plan(events=EVENTS, copies=(2, 3))
    ends = await scenario.preload(plan.records)

    # When one worker consumes them all,
    worker = scenario.start_worker("a")
    await scenario.settle(plan, ends)

    # Then each effect exists once and every extra copy was counted as a duplicate.
    assert await worker.metric("liveops_duplicates_total", processor=kind) == (
        plan.deliveries - len(plan.expected)
    )
    assert await scenario.dead_letters(expected=0) == []
    await audit(scenario, plan)


@pytest.mark.parametrize(
    ("kind", "dedup"), [(REWARDS, "processor"), (REWARDS, "runtime"), (LEADERBOARDS, "processor")]
)
async def test_worker_killed_mid_run_then_restarted_loses_and_doubles_nothing(
    make_scenario: MakeScenario, kind: KindName, dedup: str
) -> None:
    with FaultProxy("127.0.0.1", 3306) as mysql_link:
        # The dead worker's leases (12 s) outlive its session (6 s). rewards under `dedup =
        # runtime`: the restarted worker finds events of the killed batch still leased and
        # sends them through the retry tiers (2 + 4 + 8 s, longer than the leases) until it
        # may grant them; under `processor` (its default) the killed batch's transaction,
        # claims included, is rolled back with the dead connection. leaderboards: the killed
        # batch was already scored in Redis (its markers `done`) but not yet journaled in
        # MySQL: the restarted worker sees duplicates, and must copy the journal the dead one
        # left in Redis.
        scenario = await make_scenario(
            kind=kind,
            env={"LIVEOPS_REWARDS__DEDUP": dedup} if kind == REWARDS else None,
            mysql_port=mysql_link.port,
            lease_ms=12_000,
            retry_delays_s=(2, 4, 8),
            session_timeout_ms=6_000,
        )
        plan = scenario.build_plan(events=EVENTS, copies=(1, 2))
        half = len(plan.records) // 2
        await scenario.preload(plan.records[:half])
        first = scenario.start_worker("a")
        await scenario.wait_progress(len(plan.expected) // 4)

        # MySQL slows down and more events arrive, so the worker is surely inside a batch
        # (rewards: its transaction open, and claimed in Redis under `dedup = runtime`;
        # leaderboards: applied in Redis, being copied to MySQL) when the node dies with
        # SIGKILL.
        mysql_link.delay(300)
        ends = await scenario.preload(plan.records[half:])
        await _wait_until(scenario.reader.in_flight, "no batch in flight to kill")
        first.kill()
        assert await first.wait_exit(10) == -signal.SIGKILL
        mysql_link.delay(0)
        assert await scenario.reader.applied_count() < len(plan.expected), "killed after the run"
        if not (kind == REWARDS and dedup == "processor"):  # a rolled-back transaction leaves none
            assert await scenario.reader.in_flight() > 0, "the dead worker left nothing in flight"

        scenario.start_worker("b")
        await scenario.settle(plan, ends, timeout_s=100)
        assert await scenario.dead_letters(expected=0) == []
        await audit(scenario, plan)


@pytest.mark.parametrize("kind", [REWARDS, LEADERBOARDS])
async def test_redis_flushed_mid_run_mysql_stays_exact(
    make_scenario: MakeScenario, kind: KindName
) -> None:
    with PrivateRedis() as redis_server:
        scenario = await make_scenario(kind=kind, redis_url=redis_server.url)
        plan = scenario.build_plan(events=EVENTS, copies=(1, 2))
        half = len(plan.records) // 2
        await scenario.preload(plan.records[:half])
        scenario.start_worker("a")
        await scenario.wait_progress(len(plan.expected) // 4)

        # Every dedup marker (and, for leaderboards, the boards themselves) is gone, mid-run,
        redis_server.flush_all()
        flushed_at = await scenario.reader.applied_count()
        # the rest arrives, and everything sent before the flush is delivered once more.
        await scenario.preload(plan.records[half:])
        ends = await scenario.preload(plan.records[:half])

        # Then MySQL is exact: rewards' ledger and wallets, leaderboards' journal.
        await scenario.settle(plan, ends, redis_lost=True)
        assert flushed_at < len(plan.expected), "the flush came after the run: not mid-run"
        assert await scenario.dead_letters(expected=0) == []
        # And the stores derived from MySQL are right again: `liveops rewards verify` finds
        # the wallets consistent; `liveops leaderboards rebuild` restores the exact boards.
        await audit(scenario, plan)


@each_processor
async def test_mysql_cut_then_restored_worker_recovers_without_restart(
    make_scenario: MakeScenario, kind: KindName
) -> None:
    with FaultProxy("127.0.0.1", 3306) as link:
        scenario = await make_scenario(kind=kind, mysql_port=link.port)
        plan = scenario.build_plan(events=EVENTS, copies=(1, 2))
        half = len(plan.records) // 2
        ends = await scenario.preload(plan.records[:half])
        worker = scenario.start_worker("a")
        assert await worker.wait_for_status("/readyz", 200, timeout_s=READY_TIMEOUT_S), (
            worker.log_tail()
        )
        await scenario.wait_progress(len(plan.expected) // 5)

        # MySQL goes away: open connections reset, new ones refused.
        link.cut()
        assert await worker.wait_for_status("/readyz", 503, timeout_s=30), worker.log_tail()
        ends = await scenario.preload(plan.records[half:])
        # The outage lasts a while (this sleep is the fault's length, not a wait for a result).
        await asyncio.sleep(OUTAGE_S)
        assert worker.returncode is None, "the worker died while MySQL was away"
        assert await worker.probe("/healthz") == 200, "the loop stopped during the outage"
        assert await scenario.reader.applied_count() < len(plan.expected)

        link.restore()
        assert await worker.wait_for_status("/readyz", 200, timeout_s=30), worker.log_tail()
        await scenario.settle(plan, ends)
        assert worker.returncode is None
        assert len(scenario.workers) == 1
        assert await scenario.dead_letters(expected=0) == []
        await audit(scenario, plan)


@each_kind
async def test_second_worker_joining_and_leaving_loses_and_doubles_nothing(
    make_scenario: MakeScenario, kind: KindName
) -> None:
    # Given a worker applying the first third of the events,
    scenario = await make_scenario(kind=kind, session_timeout_ms=SESSION_TIMEOUT_MS)
    plan = scenario.build_plan(events=EVENTS, copies=(1, 2))
    third = len(plan.records) // 3
    waves = [plan.records[:third], plan.records[third : 2 * third], plan.records[2 * third :]]
    ends = await scenario.preload(waves[0])
    first = scenario.start_worker("a")
    await scenario.wait_progress(len(plan.expected) // 10)

    # When a second worker joins (the group rebalances, it takes part of the partitions) and
    # applies events of the second third,
    second = scenario.start_worker("b")
    assert await second.wait_for_status("/readyz", 200, timeout_s=READY_TIMEOUT_S), (
        second.log_tail()
    )
    ends = await scenario.preload(waves[1])
    assert await second.wait_for_metric(
        "liveops_events_consumed_total", processor=kind, timeout_s=30
    ), f"b consumed nothing\n{second.log_tail()}"
    # then leaves gracefully in the middle of the run (finishes its batch, commits, goes),
    second.terminate()
    assert await second.wait_exit(STOP_TIMEOUT_S) == 0, second.log_tail()
    assert await scenario.reader.applied_count() < len(plan.expected)
    ends = await scenario.preload(waves[2])

    # Then every effect exists once, though partitions moved twice in the middle of the run.
    await scenario.settle(plan, ends)
    rebalances = await first.metric("liveops_rebalances_total", processor=kind)
    assert rebalances is not None and rebalances >= 2, "the first worker saw no rebalance"
    assert await scenario.dead_letters(expected=0) == []
    await audit(scenario, plan)


@each_kind
async def test_garbage_and_schema_violations_are_dead_lettered_and_the_stream_goes_on(
    make_scenario: MakeScenario, kind: KindName
) -> None:
    # Given one record in a hundred that is garbage bytes or an envelope the schema refuses,
    scenario = await make_scenario(kind=kind, session_timeout_ms=SESSION_TIMEOUT_MS)
    plan = scenario.build_plan(events=EVENTS, garbage_every=100)
    ends = await scenario.preload(plan.records)
    # When one worker consumes them all,
    worker = scenario.start_worker("a")

    # Then every event is applied once, and the dead-letter topic holds exactly the garbage,
    # each record once with its reason (error class and message), origin and processor,
    await scenario.settle(plan, ends)
    await scenario.expect_dead_letters(plan)
    assert await worker.metric("liveops_dead_letters_total", processor=kind) == len(plan.garbage)
    # while the worker kept going.
    assert worker.returncode is None
    assert await worker.probe("/readyz") == 200
    await audit(scenario, plan)


async def audit(scenario: Scenario, plan: EventPlan) -> None:
    """The operators' checks, once the run is exact (settle) and the workers are stopped."""
    running = [worker for worker in scenario.workers if worker.returncode is None]
    for worker in running:
        worker.terminate()
    for worker in running:
        assert await worker.wait_exit(STOP_TIMEOUT_S) == 0, worker.log_tail()
    reader = scenario.reader
    if isinstance(reader, RewardsReader):
        report = await reader.verify()
        # The session's database is shared with tests that plant mismatches on purpose
        # (tests/integration/rewards/test_rewards_verify.py): judge this test's players.
        prefix = scenario.config.key_prefix
        ours = [m.describe() for m in report.mismatches if m.player_id.startswith(prefix)]
        assert ours == [], f"liveops rewards verify: {len(ours)} mismatches, e.g. {ours[:5]}"
        assert report.ledger_rows > 0
    elif isinstance(reader, LeaderboardsReader):
        expected = reader.boards.expected_scores(plan)
        problems = score_discrepancies(expected, await reader.rebuild(), "rebuilt board")
        if problems:
            raise RebuildMismatchError("\n".join(problems))
    elif not isinstance(reader, StateReader):  # the probe: settle()'s exact check is all
        raise TypeError(f"no audit for {type(reader).__name__}")


async def _wait_until(
    value: Callable[[], Awaitable[float]], message: str, *, timeout_s: float = 30.0
) -> None:
    """Poll `value` until it is non-zero; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await value():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.05)
