"""/readyz, /healthz and /metrics of the velocity job, served by the live process.

The first test joins the session's broker; the second stops a broker of its own under a ready
job, to show that an outage makes the job no less alive, but not ready.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from topics.admin import apply_plan
from topics.catalog import PLAYER_FLAGS
from topics.devbroker import EmbeddedBroker, free_port
from topics.settings import KafkaSettings
from workers.streams.velocity import window_for
from workers.streams.velocity_job import INPUTS, JOB

from .velocity_cases import DRAIN_TIMEOUT_S, action, stop_gracefully, velocity_settings
from .velocity_process import POLL_S, Answer, VelocityProcess, end_offsets, publish

pytestmark = pytest.mark.integration

#: A short stale limit, so that an outage outlasting it a few times is quick to reach.
SHORT_STALE_S = 2.0
#: What the job logs (asyncio's wording) each time it cannot reach the broker.
CONNECT_FAILED = "Connect call failed"


@pytest.fixture
def private_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, which the test stops."""
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.timeout(200)
async def test_probes_answer_while_joining_and_pass_once_partitions_are_assigned(
    kafka_settings: KafkaSettings,
    unique_name: str,
    tmp_path: Path,
    processes: list[VelocityProcess],
) -> None:
    # Given a few events of one calm player
    await apply_plan(kafka_settings, (*INPUTS, PLAYER_FLAGS))
    settings = velocity_settings(unique_name, tmp_path)
    window = window_for(int(time.time() * 1000), settings.window_s)
    events = [action(f"{unique_name}-calm", window, i) for i in range(6)]
    await publish(kafka_settings, events)

    # When the job starts and /readyz is polled until it passes
    job = VelocityProcess(kafka_settings, settings, tmp_path, "probed").start()
    processes.append(job)
    not_ready = await job.wait_ready(DRAIN_TIMEOUT_S)

    # Then every earlier answer was a 503 naming its problems, with the loop alive meanwhile
    for (status, body), health in not_ready:
        assert status == 503 and body["ready"] is False and body["problems"], body
        assert health is not None and health[0] == 200, (body, health)
    # and once ready, /healthz says the loop is alive
    health = await job.probe("/healthz")
    assert health is not None and health[0] == 200 and health[1]["alive"] is True, health
    # and every line it logged so far, faust's own included, is a JSON object
    assert job.plain_lines() == [], job.log_tail()
    assert any(str(entry.get("logger", "")).startswith("faust") for entry in job.log_entries())

    # When everything published is counted and committed
    await job.wait_drained(await end_offsets(kafka_settings, INPUTS), DRAIN_TIMEOUT_S)

    # Then /metrics carries the job's counters (other tests' records may be counted too)
    counted = await job.metric("liveops_stream_events_counted_total", stream=JOB)
    assert counted is not None and counted >= len(events), job.log_tail()
    await stop_gracefully(job)


@pytest.mark.timeout(200)
async def test_a_broker_outage_fails_readiness_not_liveness(
    private_broker: EmbeddedBroker,
    unique_name: str,
    tmp_path: Path,
    processes: list[VelocityProcess],
) -> None:
    # Given a ready job on a broker of its own, stale after SHORT_STALE_S without a heartbeat
    kafka = KafkaSettings(bootstrap_servers=private_broker.bootstrap_servers)
    await apply_plan(kafka, (*INPUTS, PLAYER_FLAGS))
    settings = velocity_settings(unique_name, tmp_path)
    job = VelocityProcess(
        kafka, settings, tmp_path, "outage", liveness_stale_s=SHORT_STALE_S
    ).start()
    processes.append(job)
    await job.wait_ready(DRAIN_TIMEOUT_S)

    # When the broker goes away, and /healthz is polled until the job's own log shows it failing
    # to connect over a span of several stale limits
    await asyncio.to_thread(private_broker.stop)
    answers: list[Answer | None] = []
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while job.lines_span_s(CONNECT_FAILED) < 3 * SHORT_STALE_S:
        if job.returncode is not None:
            raise RuntimeError(f"job exited ({job.returncode})\n{job.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no sustained outage in the job's log\n{job.log_tail()}")
        answers.append(await job.probe("/healthz"))
        await asyncio.sleep(POLL_S)

    # Then the loop stayed alive all along: every answer was 200 (the job, which cannot stop
    # gracefully without its broker, is killed at teardown)
    answers.append(await job.probe("/healthz"))
    assert answers and all(a is not None and a[0] == 200 for a in answers), answers
    # while /readyz takes the job out of service, naming the broker (faust itself still
    # holds its partitions)
    ready = await job.probe("/readyz")
    assert ready is not None and ready[0] == 503, ready
    problems = ready[1]["problems"]
    assert isinstance(problems, list), ready
    assert "broker: no cluster metadata within the ping timeout" in problems, ready
