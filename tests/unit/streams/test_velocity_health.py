"""Liveness and readiness decisions of the stream jobs' probes, with plain fakes of faust."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from faust.types import TP
from faust_fakes import FakeConsumer
from prometheus_client import CollectorRegistry

from topics.devbroker import free_port
from topics.settings import KafkaSettings
from workers.streams.health import HealthService, Heartbeat, is_alive, readiness_problems
from workers.streams.metrics import StreamMetrics

INPUTS = ("player.actions.v1", "leaderboard.scores.v1")
CHANGELOG = "liveops.velocity-player_windows-changelog"
STALE_S = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeApp:
    """The public faust App attributes readiness reads, in the state of a ready job."""

    started: bool = True
    should_stop: bool = False
    rebalancing: bool = False
    in_recovery: bool = False
    consumer: FakeConsumer = field(
        default_factory=lambda: FakeConsumer({TP(INPUTS[0], 0), TP(CHANGELOG, 0)})
    )


def test_a_running_app_with_input_partitions_is_ready() -> None:
    assert readiness_problems(FakeApp(), INPUTS) == []


def test_an_app_not_started_yet_is_not_ready() -> None:
    assert readiness_problems(FakeApp(started=False), INPUTS) == ["faust: not started"]


def test_a_stopping_app_is_not_ready() -> None:
    assert readiness_problems(FakeApp(should_stop=True), INPUTS) == ["faust: stopping"]


def test_no_consumer_thread_yet_means_no_partitions() -> None:
    app = FakeApp(consumer=FakeConsumer(None))
    assert readiness_problems(app, INPUTS) == ["consumer: no input partitions assigned"]


def test_changelog_partitions_alone_are_not_input_partitions() -> None:
    app = FakeApp(consumer=FakeConsumer({TP(CHANGELOG, 0), TP(CHANGELOG, 1)}))
    assert readiness_problems(app, INPUTS) == ["consumer: no input partitions assigned"]


def test_rebalancing_and_table_recovery_are_each_named() -> None:
    app = FakeApp(rebalancing=True, in_recovery=True)
    assert readiness_problems(app, INPUTS) == [
        "faust: rebalancing",
        "tables: recovering from changelog",
    ]


def test_a_member_left_without_partitions_during_a_rebalance_names_both() -> None:
    app = FakeApp(rebalancing=True, consumer=FakeConsumer(set()))
    assert readiness_problems(app, INPUTS) == [
        "consumer: no input partitions assigned",
        "faust: rebalancing",
    ]


def test_a_broker_that_does_not_answer_is_named_and_not_asked_is_no_problem() -> None:
    assert readiness_problems(FakeApp(), INPUTS, broker_answers=False) == [
        "broker: no cluster metadata within the ping timeout"
    ]
    assert readiness_problems(FakeApp(), INPUTS, broker_answers=True) == []
    assert readiness_problems(FakeApp(), INPUTS, broker_answers=None) == []


async def test_a_cluster_nobody_listens_for_does_not_answer() -> None:
    # Given a service pinging a loopback port where no broker listens
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    service = HealthService(
        FakeApp(),
        registry=CollectorRegistry(),
        input_topics=INPUTS,
        port=0,
        liveness_stale_s=STALE_S,
        kafka=kafka,
        ping_timeout_s=1.0,
    )
    # Then each ask answers False, within the ping timeout
    assert await service.broker_answers() is False
    assert await service.broker_answers() is False


def test_the_loop_is_alive_until_its_beat_is_older_than_the_stale_limit() -> None:
    clock = FakeClock()
    heartbeat = Heartbeat(clock)
    assert is_alive(heartbeat, STALE_S) == (True, 0.0)
    clock.now += STALE_S
    assert is_alive(heartbeat, STALE_S) == (True, STALE_S)
    clock.now += 0.5
    assert is_alive(heartbeat, STALE_S) == (False, STALE_S + 0.5)
    heartbeat.beat()
    assert is_alive(heartbeat, STALE_S) == (True, 0.0)


@dataclass
class Served:
    service: HealthService
    app: FakeApp
    clock: FakeClock
    metrics: StreamMetrics

    async def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.service.port}{path}"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()

    async def get_json(self, path: str) -> tuple[int, object]:
        url = f"http://127.0.0.1:{self.service.port}{path}"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.json()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A HealthService on a free loopback port over a fake app; its heartbeat task beats once
    at start and then not for an hour, so the test's clock alone ages it."""
    app, clock = FakeApp(), FakeClock()
    metrics = StreamMetrics(CollectorRegistry())
    service = HealthService(
        app,
        registry=metrics.registry,
        input_topics=INPUTS,
        port=0,
        liveness_stale_s=STALE_S,
        host="127.0.0.1",
        clock=clock,
        heartbeat_s=3600.0,
    )
    await service.start()
    try:
        yield Served(service, app, clock, metrics)
    finally:
        await service.stop()


async def test_healthz_answers_503_once_the_beat_is_stale(served: Served) -> None:
    assert await served.get_json("/healthz") == (200, {"alive": True, "last_beat_s": 0.0})
    served.clock.now += STALE_S + 1
    assert await served.get_json("/healthz") == (503, {"alive": False, "last_beat_s": 31.0})


async def test_readyz_lists_the_problems_and_passes_when_they_are_gone(served: Served) -> None:
    served.app.in_recovery = True
    status, body = await served.get_json("/readyz")
    assert (status, body) == (
        503,
        {"ready": False, "problems": ["tables: recovering from changelog"]},
    )
    served.app.in_recovery = False
    assert await served.get_json("/readyz") == (200, {"ready": True, "problems": []})


async def test_metrics_serves_the_jobs_registry(served: Served) -> None:
    served.metrics.events_counted.labels("velocity", INPUTS[0]).inc(3)
    status, text = await served.get("/metrics")
    assert status == 200
    assert (
        'liveops_stream_events_counted_total{stream="velocity",topic="player.actions.v1"} 3.0'
        in text
    )
