"""SeekFirstRecovery: no input record can be fetched or delivered between faust resuming the
input partitions and seeking them to their committed offsets (see workers/streams/recovery.py).

faust's own Recovery runs against a real faust App; only the consumer and the fetcher are plain
fakes that note whether the flow (fetching and delivery to agents) was running at each step.
"""

from __future__ import annotations

from pathlib import Path

import faust
from faust.types import TP

from topics.catalog import PLAYER_ACTIONS
from topics.settings import KafkaSettings
from workers.streams.faust_app import build_faust_app
from workers.streams.recovery import SeekFirstRecovery, SeekFirstTableManager

INPUT = TP(PLAYER_ACTIONS.name, 0)


class FlowNotingConsumer:
    """The parts of faust's consumer that `on_recovery_completed` uses. The flow starts
    running, as it is after faust has read the changelogs."""

    def __init__(self) -> None:
        self.flow_active = True
        self.steps: list[tuple[str, bool]] = []

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    def assignment(self) -> set[TP]:
        return {INPUT}

    def resume_partitions(self, partitions: set[TP]) -> None:
        self.steps.append(("resume_partitions", self.flow_active))

    async def perform_seek(self) -> None:
        self.steps.append(("seek_to_committed", self.flow_active))


class StartedFetcher:
    async def maybe_start(self) -> None:
        return None


def recovering_app(tmp_path: Path) -> tuple[faust.App, FlowNotingConsumer]:
    app = build_faust_app(
        KafkaSettings(),
        app_id="velocity-recovery-unit",
        partitions=PLAYER_ACTIONS.partitions,
        auto_offset_reset="earliest",
        commit_interval_s=1.0,
        session_timeout_s=6.0,
        rebalance_timeout_s=10.0,
        one_record_per_batch=False,
        data_dir=tmp_path,
    )
    consumer = FlowNotingConsumer()
    app._consumer = consumer  # type: ignore[assignment]  # the fake stands in for faust's
    app._fetcher = StartedFetcher()  # type: ignore[assignment]  # already started
    return app, consumer


def recovery_of(app: faust.App) -> SeekFirstRecovery:
    tables = app.tables
    assert isinstance(tables, SeekFirstTableManager)
    recovery = tables.recovery
    assert isinstance(recovery, SeekFirstRecovery)
    return recovery


def test_the_app_recovers_tables_with_seek_first_recovery(tmp_path: Path) -> None:
    app, _ = recovering_app(tmp_path)
    assert isinstance(recovery_of(app), SeekFirstRecovery)


async def test_inputs_are_resumed_and_sought_with_the_flow_stopped(tmp_path: Path) -> None:
    # Given a finished changelog read, with the consumer's flow running
    app, consumer = recovering_app(tmp_path)

    # When recovery completes
    await recovery_of(app).on_recovery_completed(generation_id=0)

    # Then the inputs were resumed and sought back to their committed offsets with the flow
    # stopped (nothing fetched or handed to the agent in between), and the flow runs again
    assert consumer.steps == [("resume_partitions", False), ("seek_to_committed", False)]
    assert consumer.flow_active
