"""liveops_stream_consumer_lag of the running velocity job against the real embedded broker:
the exact lag of each input partition, reported by the one process that holds it.

The group is the test's own and committed by the test (prepare_group); the first job commits
nothing during the test (its commit interval is far beyond it), so until a rebalance the lag is
exactly what the test left. After it (a second job joins, then the first leaves), the expected
values are the group's committed offsets as the broker has them, polled until the gauges agree.
Nothing publishes to the inputs meanwhile, so the end offsets stay those read at the start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from topics.admin import apply_plan
from topics.catalog import PLAYER_FLAGS
from topics.lag import lag_of
from topics.offsets import CommittedOffsetReader
from topics.settings import KafkaSettings
from workers.streams.velocity_job import INPUTS, JOB

from .velocity_cases import (
    ACTIONS_LEFT,
    DRAIN_TIMEOUT_S,
    prepare_group,
    stop_gracefully,
    velocity_settings,
)
from .velocity_process import POLL_S, VelocityProcess

pytestmark = pytest.mark.integration

LAG = "liveops_stream_consumer_lag"
FAILED = "liveops_stream_lag_reads_failed_total"
#: Far beyond the test: faust commits only when partitions move and when it stops.
NO_COMMIT_S = 900.0
LAG_INTERVAL_S = 0.5

Lags = dict[TopicPartition, float]


async def lags_of(job: VelocityProcess) -> Lags:
    """The job's gauge, every series of it (none while /metrics does not answer)."""
    samples = await job.samples(LAG) or []
    assert all(labels["stream"] == JOB for labels, _ in samples), samples
    return {TopicPartition(ls["topic"], int(ls["partition"])): v for ls, v in samples}


async def broker_lags(group: CommittedOffsetReader, ends: dict[TopicPartition, int]) -> Lags:
    """The lag of each partition from the group's committed offsets as the broker has them."""
    committed = await group.read(sorted(ends))
    return {tp: float(lag_of(committed[tp], end)) for tp, end in ends.items()}


def differences(got: Lags, expected: Lags) -> str | None:
    """None when equal, else the partitions that differ (got, expected)."""
    if got == expected:
        return None
    differ = {tp: (got.get(tp), expected.get(tp)) for tp in got.keys() | expected.keys()}
    return f"(got, expected): { {tp: v for tp, v in differ.items() if v[0] != v[1]} }"


async def until(
    check: Callable[[], Awaitable[str | None]], timeout_s: float, *jobs: VelocityProcess
) -> None:
    """Poll `check` (None: satisfied, else what differs) until it passes; raise at the deadline,
    with what differed and the jobs' logs."""
    deadline = time.monotonic() + timeout_s
    while (differs := await check()) is not None:
        for job in jobs:
            if job.returncode is not None:
                raise RuntimeError(f"{job.name} exited ({job.returncode})\n{job.log_tail()}")
        if time.monotonic() > deadline:
            tails = "\n".join(job.log_tail() for job in jobs)
            raise TimeoutError(f"{differs}\n{tails}")
        await asyncio.sleep(POLL_S)


@pytest.mark.timeout(300)
async def test_each_process_reports_the_exact_lag_of_the_input_partitions_it_holds(
    kafka_settings: KafkaSettings,
    unique_name: str,
    tmp_path: Path,
    processes: list[VelocityProcess],
) -> None:
    # Given the prepared group: ACTIONS_LEFT short of the end on one actions partition, never
    # committed elsewhere (so on the player's scores partition, which holds a record)
    await apply_plan(kafka_settings, (*INPUTS, PLAYER_FLAGS))
    settings = velocity_settings(
        unique_name, tmp_path, commit_interval_s=NO_COMMIT_S, lag_interval_s=LAG_INTERVAL_S
    )
    actions, scores, ends = await prepare_group(kafka_settings, settings, unique_name)
    left = {tp: float(end) for tp, end in ends.items()} | {actions: float(ACTIONS_LEFT)}

    # When a job that commits nothing runs alone in the group
    first = VelocityProcess(kafka_settings, settings, tmp_path, "first").start()
    processes.append(first)

    # Then it reports every input partition, and no other, each with the lag the test left
    async def first_reports_what_the_test_left() -> str | None:
        lags = await lags_of(first)
        return differences(lags, left)

    await until(first_reports_what_the_test_left, DRAIN_TIMEOUT_S, first)
    assert left[actions] == ACTIONS_LEFT and left[scores] == ends[scores] >= 1
    assert await first.metric(FAILED, stream=JOB) == 0

    # When a second job, committing often, joins the group and the partitions are shared out
    often = settings.model_copy(update={"commit_interval_s": 0.5})
    second = VelocityProcess(kafka_settings, often, tmp_path, "second").start()
    processes.append(second)

    # Then each partition is reported by one process only, with its exact lag: the group's
    # committed offsets as the broker has them now (the first job commits what it processed
    # when partitions move, the second what it processes)
    async with CommittedOffsetReader(kafka_settings, settings.app_id) as group:

        async def shared_out_exactly() -> str | None:
            a, b = await lags_of(first), await lags_of(second)
            if not a or not b or a.keys() & b.keys() or a.keys() | b.keys() != ends.keys():
                return f"not shared out: first {sorted(a)}, second {sorted(b)}"
            exact = await broker_lags(group, ends)
            return differences({**a, **b}, exact)

        await until(shared_out_exactly, DRAIN_TIMEOUT_S, first, second)

        # When the first job stops, and the second takes every partition
        await stop_gracefully(first)

        # Then the second reports every input partition, each with its exact lag
        async def second_holds_all_exactly() -> str | None:
            lags = await lags_of(second)
            return differences(lags, await broker_lags(group, ends))

        await until(second_holds_all_exactly, DRAIN_TIMEOUT_S, second)
    assert await second.metric(FAILED, stream=JOB) == 0
    await stop_gracefully(second)
