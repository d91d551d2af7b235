"""`liveops worker all`: the real command runs every production processor in one process.

`all` is every processor of workers/processors/registry.py except the test-only probe, so today
rewards and leaderboards (iap and notifications are not built, hence not registered). The test
starts the installed `liveops` console script in a subprocess, its settings in LIVEOPS_*
variables as tests/fault/worker.py passes them to every fault worker (the test's Redis prefix,
the session's MySQL database and broker, the fault tests' rules and board files), on the
catalog's own groups and topics. Both processors must apply what the test sends exactly
(tests/fault/rewards_check.py, leaderboards_check.py), and SIGTERM must end the process with
exit code 0 within its configured shutdown deadline.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from topics.catalog import LEADERBOARDS_GROUP, REWARDS_GROUP

from .conftest import MakeScenario
from .leaderboards_check import LEADERBOARDS
from .rewards_check import REWARDS
from .scenario import Scenario
from .worker import WorkerProcess

#: The console script `pip install` put next to this interpreter (`make` installs it).
LIVEOPS = Path(sys.executable).with_name("liveops")
EVENTS = 200
READY_TIMEOUT_S = 45.0
#: LIVEOPS_RUNTIME__SHUTDOWN_DEADLINE_S of the worker: SIGTERM to exit, at most.
SHUTDOWN_DEADLINE_S = 10.0

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(150)]


async def test_worker_all_applies_rewards_and_leaderboards_then_stops_on_sigterm(
    make_scenario: MakeScenario,
) -> None:
    assert LIVEOPS.is_file(), f"no {LIVEOPS}: install the package into this environment"
    # Given events for rewards and for leaderboards on their catalog topics, some twice (both
    # plans use the same ids: each processor deduplicates in its own scope, so both apply each),
    rewards = await make_scenario(kind=REWARDS, group=REWARDS_GROUP)
    leaderboards = await make_scenario(kind=LEADERBOARDS, group=LEADERBOARDS_GROUP)
    rewards_plan = rewards.build_plan(events=EVENTS, copies=(1, 2))
    leaderboards_plan = leaderboards.build_plan(events=EVENTS, copies=(1, 2))
    rewards_ends = await rewards.preload(rewards_plan.records)
    leaderboards_ends = await leaderboards.preload(leaderboards_plan.records)

    # When one `liveops worker all` process runs with both processors' settings,
    settings = {
        **rewards.config.env,
        **leaderboards.config.env,
        "LIVEOPS_RUNTIME__SHUTDOWN_DEADLINE_S": str(SHUTDOWN_DEADLINE_S),
        # The embedded broker completes a group's first join about half of this after it began.
        "LIVEOPS_RUNTIME__SESSION_TIMEOUT_MS": "6000",
        "LIVEOPS_RUNTIME__HEARTBEAT_INTERVAL_MS": "2000",
    }
    worker = WorkerProcess(
        replace(rewards.config, env=settings), "all", command=(str(LIVEOPS), "worker", "all")
    ).start()
    for scenario in (rewards, leaderboards):
        scenario.workers.append(worker)  # killed at teardown if still running, log on failure
    assert await worker.wait_for_status("/readyz", 200, timeout_s=READY_TIMEOUT_S), (
        worker.log_tail()
    )

    # Then rewards' ledger and wallets and leaderboards' journal and boards are exact, every
    # record committed by its catalog group, and none of ours dead-lettered;
    await rewards.settle(rewards_plan, rewards_ends)
    await leaderboards.settle(leaderboards_plan, leaderboards_ends)
    for scenario in (rewards, leaderboards):
        assert await dead_letters_of_this_test(scenario) == [], worker.log_tail()

    # and on SIGTERM it stops both and exits 0 within the shutdown deadline.
    stopping = time.monotonic()
    worker.terminate()
    try:
        code = await worker.wait_exit(SHUTDOWN_DEADLINE_S)
    except TimeoutError:
        pytest.fail(f"still running {SHUTDOWN_DEADLINE_S} s after SIGTERM\n{worker.log_tail()}")
    assert code == 0, worker.log_tail()
    assert time.monotonic() - stopping <= SHUTDOWN_DEADLINE_S


async def dead_letters_of_this_test(scenario: Scenario) -> list[bytes | None]:
    """Keys of the catalog group's dead letters that came from this test's events (player ids
    under its prefix): the catalog topics may hold other tests' records."""
    prefix = scenario.config.key_prefix.encode()
    letters = await scenario.dead_letters(expected=0, timeout_s=5.0)
    return [letter.key for letter in letters if (letter.key or b"").startswith(prefix)]
