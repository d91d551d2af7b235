"""The velocity job against the real embedded broker (the session's), in its own process.

A bursty player goes over the threshold in one window, a calm one stays at it, garbage bytes sit
among the events; then the job stops, the bursty player goes on in the same window, and the job
starts again. Other tests may publish to the same catalog topics in the same session, so every
check is about this test's players and records. Waits poll the job's committed offsets.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from schemas.liveops.v1.abuse_pb2 import FLAG_REASON_VELOCITY
from topics.admin import apply_plan
from topics.catalog import PLAYER_ACTIONS, PLAYER_FLAGS, Topic
from topics.settings import KafkaSettings
from workers.streams.settings import VelocitySettings
from workers.streams.velocity import flag_event_id, window_for
from workers.streams.velocity_job import INPUTS, JOB, changelog_topic_name

from .velocity_cases import (
    DRAIN_TIMEOUT_S,
    EXIT_TIMEOUT_S,
    THRESHOLD,
    action,
    stop_gracefully,
    velocity_settings,
)
from .velocity_process import (
    VelocityProcess,
    end_offsets,
    last_tallies,
    publish,
    read_envelopes,
    wait_tallies,
)

pytestmark = pytest.mark.integration

GARBAGE = b"\xff\x00not an envelope"


def changelog_of(settings: VelocitySettings) -> Topic:
    """The table's changelog (faust names it after the app id), as a Topic to read."""
    name = changelog_topic_name(settings.app_id)
    return replace(PLAYER_ACTIONS, name=name, payloads=frozenset())


@pytest.mark.timeout(200)
async def test_burst_is_flagged_once_across_a_restart_and_a_trickle_never(
    kafka_settings: KafkaSettings,
    unique_name: str,
    tmp_path: Path,
    processes: list[VelocityProcess],
) -> None:
    # Given the catalog topics, one window, a bursty and a calm player, and garbage among them
    await apply_plan(kafka_settings, (*INPUTS, PLAYER_FLAGS))
    settings = velocity_settings(unique_name, tmp_path)
    window = window_for(int(time.time() * 1000), settings.window_s)
    bursty, calm = f"{unique_name}-bursty", f"{unique_name}-calm"
    burst = [action(bursty, window, i) for i in range(THRESHOLD + 10)]
    trickle = [action(calm, window, i) for i in range(THRESHOLD)]
    await publish(kafka_settings, burst)
    # (the calm player's events carry a header with a null value, which Kafka allows)
    await publish(kafka_settings, trickle, headers=[("x-null", None)])
    garbage = await publish(
        kafka_settings, [(PLAYER_ACTIONS, bursty.encode(), GARBAGE), (PLAYER_ACTIONS, b"", None)]
    )

    # When the job runs until it has committed everything published
    first = VelocityProcess(kafka_settings, settings, tmp_path, "first").start()
    processes.append(first)
    await first.wait_drained(await end_offsets(kafka_settings, INPUTS), DRAIN_TIMEOUT_S)

    # Then exactly one flag, for the bursty player, naming the window, the count and the types
    flags = await read_envelopes(kafka_settings, PLAYER_FLAGS, {bursty, calm})
    assert [flag.player_id for flag in flags] == [bursty], first.log_tail()
    flag = flags[0]
    assert flag.event_id == flag.idempotency_key == flag_event_id(bursty, window)
    body = flag.player_flagged
    assert body.reason == FLAG_REASON_VELOCITY
    assert (body.event_count, body.threshold) == (THRESHOLD + 1, THRESHOLD)
    assert body.window_start.ToMilliseconds() == window.start_ms
    assert body.window_end.ToMilliseconds() == window.end_ms
    assert list(body.event_types) == ["level_completed", "match_result", "score_submitted"]
    # and the garbage and the tombstone were rejected (logged by offset, counted), not fatal
    rejected = {
        (entry["topic"], entry["partition"], entry["offset"])
        for entry in first.logged("velocity.record_rejected")
    }
    assert {(meta.topic, meta.partition, meta.offset) for meta in garbage} <= rejected
    rejected_total = await first.metric("liveops_stream_records_rejected_total", stream=JOB)
    assert rejected_total is not None and rejected_total >= len(garbage)

    # Given a graceful stop, after which the changelog holds every event of the first run
    # (checked here so that a count lost later is told apart from one lost before the restart)
    await stop_gracefully(first)
    await wait_tallies(
        kafka_settings,
        changelog_of(settings),
        {bursty: len(burst), calm: len(trickle)},
        DRAIN_TIMEOUT_S,
    )
    # and the bursty player going on in the same window
    more = [action(bursty, window, i) for i in range(len(burst), len(burst) + THRESHOLD + 5)]
    await publish(kafka_settings, more)

    # When the job starts again on the same app id
    second = VelocityProcess(kafka_settings, settings, tmp_path, "second").start()
    processes.append(second)
    await second.wait_drained(await end_offsets(kafka_settings, INPUTS), DRAIN_TIMEOUT_S)
    await stop_gracefully(second)

    # Then the table came back from its changelog: nothing lost, nothing counted twice
    tallies = await last_tallies(kafka_settings, changelog_of(settings))
    assert (tallies[calm].count, tallies[calm].flagged) == (len(trickle), False)
    # and every event of the bursty player counted once: the first run's from the changelog,
    # the new ones from the committed offsets, none dropped (workers/streams/recovery.py)
    expected = (len(burst) + len(more), True)
    assert (tallies[bursty].count, tallies[bursty].flagged) == expected, second.log_tail()
    # and the new events alone, more than the threshold, raised no second flag
    flags = await read_envelopes(kafka_settings, PLAYER_FLAGS, {bursty, calm})
    assert [flag.event_id for flag in flags] == [flag_event_id(bursty, window)], second.log_tail()


@pytest.mark.timeout(200)
async def test_a_crash_before_the_commit_counts_and_flags_nothing_twice(
    kafka_settings: KafkaSettings,
    unique_name: str,
    tmp_path: Path,
    processes: list[VelocityProcess],
) -> None:
    # Given a job that commits offsets rarely, and a burst it has counted and flagged
    await apply_plan(kafka_settings, (*INPUTS, PLAYER_FLAGS))
    settings = velocity_settings(unique_name, tmp_path, commit_interval_s=120.0)
    window = window_for(int(time.time() * 1000), settings.window_s)
    bursty = f"{unique_name}-bursty"
    burst = [action(bursty, window, i) for i in range(THRESHOLD + 10)]
    await publish(kafka_settings, burst)
    first = VelocityProcess(kafka_settings, settings, tmp_path, "first").start()
    processes.append(first)
    await wait_tallies(
        kafka_settings, changelog_of(settings), {bursty: len(burst)}, DRAIN_TIMEOUT_S
    )

    # When it dies before committing (its changelog and flag are on the broker, its offsets not)
    first.kill()
    await first.wait_exit(EXIT_TIMEOUT_S)
    second = VelocityProcess(
        kafka_settings, settings.model_copy(update={"commit_interval_s": 0.5}), tmp_path, "second"
    ).start()
    processes.append(second)
    await second.wait_drained(await end_offsets(kafka_settings, INPUTS), DRAIN_TIMEOUT_S)
    skipped = await second.metric("liveops_stream_redeliveries_skipped_total", stream=JOB)
    await stop_gracefully(second)

    # Then the redelivered burst was recognised and skipped: same count, still one flag
    assert skipped is not None and skipped >= len(burst), second.log_tail()
    tallies = await last_tallies(kafka_settings, changelog_of(settings))
    assert (tallies[bursty].count, tallies[bursty].flagged) == (len(burst), True)
    flags = await read_envelopes(kafka_settings, PLAYER_FLAGS, {bursty})
    assert [flag.event_id for flag in flags] == [flag_event_id(bursty, window)], second.log_tail()
