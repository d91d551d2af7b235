"""A leaderboards worker killed between scoring a batch and publishing its outputs loses none.

The kill lands where the outputs used to be lost: MySQL is slowed down, so the worker sits in
before_commit() (the journal copy) with a batch scored in Redis (markers `done`) and its rank
changes and rejections not yet published. The next worker finds those events duplicates and
must publish the same outputs again (tests/fault/leaderboards_outputs.py checks the topic).
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from topics.settings import KafkaSettings

from .conftest import MakeScenario
from .leaderboards_check import LEADERBOARDS, LeaderboardsReader
from .leaderboards_outputs import output_problems
from .proxy import FaultProxy

EVENTS = 2000
pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(150)]


async def test_leaderboard_outputs_survive_a_worker_killed_before_it_published(
    make_scenario: MakeScenario, kafka_settings: KafkaSettings
) -> None:
    with FaultProxy("127.0.0.1", 3306) as mysql_link:
        # Given a leaderboards worker whose MySQL became slow (it is inside before_commit()
        # with a scored batch, its outputs not yet published)
        scenario = await make_scenario(
            kind=LEADERBOARDS, mysql_port=mysql_link.port, session_timeout_ms=6_000
        )
        reader = scenario.reader
        assert isinstance(reader, LeaderboardsReader)
        plan = scenario.build_plan(events=EVENTS, copies=(1, 2))
        half = len(plan.records) // 2
        await scenario.preload(plan.records[:half])
        first = scenario.start_worker("a")
        await scenario.wait_progress(len(plan.expected) // 4)
        mysql_link.delay(300)
        ends = await scenario.preload(plan.records[half:])
        deadline = time.monotonic() + 30
        while not await reader.in_flight():
            assert time.monotonic() < deadline, "no batch in flight to kill"
            await asyncio.sleep(0.05)

        # When it dies with SIGKILL there, and another worker takes over
        first.kill()
        assert await first.wait_exit(10) == -signal.SIGKILL
        mysql_link.delay(0)
        assert await reader.in_flight() > 0, "the dead worker left nothing in flight"
        scenario.start_worker("b")
        await scenario.settle(plan, ends, timeout_s=100)

        # Then every rank change and rejection the run implies is on the ranks topic, each id
        # with one content however many times it was published
        assert await scenario.dead_letters(expected=0) == []
        problems = await output_problems(reader, kafka_settings, plan)
        assert problems == [], "\n".join(problems)
