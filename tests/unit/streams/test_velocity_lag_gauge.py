"""The stream job's lag gauge (workers/streams/lag.py) on plain fakes of faust and the offsets:
which partitions it reports, what it reports for them, and what a failed round leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from faust.types import TP
from faust_fakes import FakeConsumer
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from topics.devbroker import free_port
from topics.offsets import EndOffsetsUnconfirmedError
from topics.settings import KafkaSettings
from workers.streams.lag import GroupOffsets, LagService, assigned_inputs
from workers.streams.metrics import StreamMetrics

JOB = "velocity"
ACTIONS, SCORES = "player.actions.v1", "leaderboard.scores.v1"
INPUTS = (ACTIONS, SCORES)
CHANGELOG = "liveops.velocity-player_windows-changelog"
LAG = "liveops_stream_consumer_lag"
FAILED = "liveops_stream_lag_reads_failed_total"


@dataclass
class FakeApp:
    consumer: FakeConsumer = field(default_factory=FakeConsumer)


@dataclass
class FakeOffsets:
    """The group's commits and the partitions' ends; `error` makes the next read raise it,
    `during_read` runs inside a read (a rebalance landing meanwhile)."""

    committed_at: dict[TopicPartition, int] = field(default_factory=dict)
    end_at: dict[TopicPartition, int] = field(default_factory=dict)
    error: BaseException | None = None
    hang: bool = False
    during_read: list[Callable[[], None]] = field(default_factory=list)
    closes: int = 0

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        if self.error is not None:
            raise self.error
        if self.hang:
            await asyncio.Event().wait()
        return {tp: self.committed_at.get(tp) for tp in partitions}

    async def ends(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        for action in self.during_read:
            action()
        return {tp: self.end_at[tp] for tp in partitions}

    async def close(self) -> None:
        self.closes += 1


@dataclass
class Measured:
    app: FakeApp
    offsets: FakeOffsets
    metrics: StreamMetrics
    service: LagService

    def lag(self, topic: str, partition: int) -> float | None:
        labels = {"stream": JOB, "topic": topic, "partition": str(partition)}
        return self.metrics.registry.get_sample_value(LAG, labels)

    def lags(self) -> dict[tuple[str, int], float]:
        """Every series of the gauge: (topic, partition) -> value."""
        (family,) = [f for f in self.metrics.registry.collect() if f.name == LAG]
        return {(s.labels["topic"], int(s.labels["partition"])): s.value for s in family.samples}

    def failures(self) -> float | None:
        return self.metrics.registry.get_sample_value(FAILED, {"stream": JOB})


def measured(timeout_s: float = 5.0) -> Measured:
    app, offsets = FakeApp(), FakeOffsets()
    metrics = StreamMetrics(CollectorRegistry())
    service = LagService(
        app,
        offsets,
        job=JOB,
        input_topics=INPUTS,
        metrics=metrics,
        interval_s=3600.0,
        timeout_s=timeout_s,
    )
    return Measured(app, offsets, metrics, service)


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def test_only_input_partitions_count_and_none_before_the_consumer_starts() -> None:
    app = FakeApp(FakeConsumer({TP(ACTIONS, 0), TP(SCORES, 3), TP(CHANGELOG, 0)}))
    assert assigned_inputs(app, INPUTS) == {tp(ACTIONS, 0), tp(SCORES, 3)}
    assert assigned_inputs(FakeApp(FakeConsumer(None)), INPUTS) == set()


async def test_each_assigned_input_lags_by_end_minus_committed_or_by_its_end() -> None:
    # Given two input partitions and a changelog one, committed on the first only
    m = measured()
    m.app.consumer.assigned = {TP(ACTIONS, 0), TP(SCORES, 0), TP(CHANGELOG, 0)}
    m.offsets.committed_at = {tp(ACTIONS, 0): 7}
    m.offsets.end_at = {tp(ACTIONS, 0): 10, tp(SCORES, 0): 4}
    # When measured
    await m.service.measure()
    # Then the committed one lags by the difference, the other by its whole end; no changelog
    assert m.lags() == {(ACTIONS, 0): 3.0, (SCORES, 0): 4.0}
    assert m.failures() == 0.0


async def test_a_commit_past_the_end_is_no_lag() -> None:
    # (a topic recreated under the group: as topics.lag.lag_of)
    m = measured()
    m.app.consumer.assigned = {TP(ACTIONS, 1)}
    m.offsets.committed_at = {tp(ACTIONS, 1): 50}
    m.offsets.end_at = {tp(ACTIONS, 1): 5}
    await m.service.measure()
    assert m.lags() == {(ACTIONS, 1): 0.0}


async def test_partitions_no_longer_assigned_lose_their_series() -> None:
    # Given a round on two partitions
    m = measured()
    m.app.consumer.assigned = {TP(ACTIONS, 0), TP(ACTIONS, 1)}
    m.offsets.end_at = {tp(ACTIONS, 0): 2, tp(ACTIONS, 1): 3}
    await m.service.measure()
    assert m.lags() == {(ACTIONS, 0): 2.0, (ACTIONS, 1): 3.0}
    # When a rebalance moves one away, and the next round runs
    m.app.consumer.assigned = {TP(ACTIONS, 1)}
    await m.service.measure()
    # Then only the one still held is reported
    assert m.lags() == {(ACTIONS, 1): 3.0}
    # And when the consumer loses everything, nothing is, even without any read
    m.app.consumer.assigned = set()
    m.offsets.error = KafkaConnectionError("would fail")
    await m.service.measure()
    assert m.lags() == {}
    assert m.failures() == 0.0


async def test_a_partition_moved_away_during_the_reads_is_not_reported() -> None:
    m = measured()
    m.app.consumer.assigned = {TP(ACTIONS, 0), TP(ACTIONS, 1)}
    m.offsets.end_at = {tp(ACTIONS, 0): 2, tp(ACTIONS, 1): 3}
    await m.service.measure()

    def revoke() -> None:
        m.app.consumer.assigned = {TP(ACTIONS, 1)}

    m.offsets.during_read = [revoke]
    m.offsets.end_at = {tp(ACTIONS, 0): 9, tp(ACTIONS, 1): 4}
    await m.service.measure()
    assert m.lags() == {(ACTIONS, 1): 4.0}


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]"),
        EndOffsetsUnconfirmedError("no fetch answer for player.actions.v1/0 within 30.0s"),
        OSError("Connect call failed"),
    ],
)
async def test_a_failed_round_keeps_the_values_counts_logs_and_reconnects(
    error: Exception,
) -> None:
    # Given a measured partition
    m = measured()
    m.app.consumer.assigned = {TP(ACTIONS, 0)}
    m.offsets.end_at = {tp(ACTIONS, 0): 5}
    await m.service.measure()
    # When the next round fails
    m.offsets.end_at = {tp(ACTIONS, 0): 8}
    m.offsets.error = error
    with capture_logs() as logs:
        await m.service.measure()
    # Then the previous value stays, the failure is counted and logged once, as a warning
    assert m.lags() == {(ACTIONS, 0): 5.0}
    assert m.failures() == 1.0
    assert [(e["event"], e["log_level"], e["error_class"]) for e in logs] == [
        ("stream.lag_read_failed", "warning", type(error).__name__)
    ]
    # And the readers are dropped, so the next round connects anew, and succeeds
    assert m.offsets.closes == 1
    m.offsets.error = None
    await m.service.measure()
    assert m.lags() == {(ACTIONS, 0): 8.0}
    assert m.failures() == 1.0


async def test_a_round_without_an_answer_gives_up_at_the_timeout() -> None:
    m = measured(timeout_s=0.05)
    m.app.consumer.assigned = {TP(SCORES, 2)}
    m.offsets.hang = True
    await m.service.measure()
    assert m.lags() == {}
    assert (m.failures(), m.offsets.closes) == (1.0, 1)


async def test_an_unexpected_error_is_counted_and_logged_with_its_traceback() -> None:
    m = measured()
    m.app.consumer.assigned = {TP(SCORES, 2)}
    m.offsets.error = AssertionError("aiokafka internals")
    with capture_logs() as logs:
        await m.service.measure()
    assert m.failures() == 1.0
    assert [(e["event"], e["log_level"], e["exc_info"]) for e in logs] == [
        ("stream.lag_read_failed_unexpectedly", "error", True)
    ]


async def test_the_service_measures_while_running_and_cleans_up_when_stopped() -> None:
    # Given a running service with one partition assigned
    m = measured()
    m.app.consumer.assigned = {TP(ACTIONS, 4)}
    m.offsets.end_at = {tp(ACTIONS, 4): 6}
    await m.service.start()
    try:
        # Then its first round runs at once
        for _ in range(100):
            if m.lags():
                break
            await asyncio.sleep(0.01)
        assert m.lags() == {(ACTIONS, 4): 6.0}
    finally:
        await m.service.stop()
    # And once stopped, its readers are closed and it reports nothing
    assert m.offsets.closes == 1
    assert m.lags() == {}


async def test_a_broker_nobody_listens_for_fails_each_round_without_raising() -> None:
    # Given the real readers, on a loopback port where no broker listens
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    metrics = StreamMetrics(CollectorRegistry())
    app = FakeApp(FakeConsumer({TP(ACTIONS, 0)}))
    service = LagService(
        app,
        GroupOffsets(kafka, "liveops.velocity.unit"),
        job=JOB,
        input_topics=INPUTS,
        metrics=metrics,
        interval_s=3600.0,
        timeout_s=5.0,
    )
    # When two rounds run
    with capture_logs() as logs:
        await service.measure()
        await service.measure()
    # Then each failed, was counted and logged, and nothing was reported
    assert metrics.registry.get_sample_value(FAILED, {"stream": JOB}) == 2.0
    assert [e["event"] for e in logs] == ["stream.lag_read_failed"] * 2
    assert service.gauge.reported == set()
