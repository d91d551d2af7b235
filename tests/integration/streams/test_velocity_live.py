"""The velocity job against the real embedded broker (the session's), in its own process.

A bursty player goes over the threshold in one window, a calm one stays at it, garbage bytes sit
among the events; then the job stops, the bursty player goes on in the same window, and the job
starts again. The probes (/readyz, /healthz, /metrics) are checked on a job joining its group.
Other tests may publish to the same catalog topics in the same session, so every check is about
this test's players and records. Waits poll the job's committed offsets and its /readyz.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from velocity_process import (
    Record,
    VelocityProcess,
    end_offsets,
    envelope_record,
    last_tallies,
    publish,
    read_envelopes,
    wait_tallies,
)

from schemas.codec import new_event_id
from schemas.liveops.v1.abuse_pb2 import FLAG_REASON_VELOCITY
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import LEADERBOARD_SCORES, PLAYER_ACTIONS, PLAYER_FLAGS, Topic
from topics.settings import KafkaSettings
from workers.streams.settings import VelocitySettings
from workers.streams.velocity import Window, flag_event_id, window_for
from workers.streams.velocity_job import INPUTS, JOB, changelog_topic_name

pytestmark = pytest.mark.integration

THRESHOLD = 20
DRAIN_TIMEOUT_S = 75.0  # generous: faust on a loaded 2-core machine can take long to rejoin
EXIT_TIMEOUT_S = 20.0
GARBAGE = b"\xff\x00not an envelope"


def action(player_id: str, window: Window, index: int) -> Record:
    """The index-th event of a player inside `window`: a level, a match or a score, in turn."""
    event_id = new_event_id()
    envelope = Envelope(event_id=event_id, idempotency_key=event_id, player_id=player_id)
    envelope.received_at.FromMilliseconds(window.start_ms + 10 * index)
    kind = index % 3
    if kind == 0:
        envelope.level_completed.level_id = f"level-{index}"
    elif kind == 1:
        envelope.match_result.match_id = f"match-{index}"
    else:
        envelope.score_submitted.leaderboard_id = "weekly"
        envelope.score_submitted.score = index
        return envelope_record(LEADERBOARD_SCORES, envelope)
    return envelope_record(PLAYER_ACTIONS, envelope)


def velocity_settings(unique_name: str, tmp_path: Path, **changes: object) -> VelocitySettings:
    """The test's job: its own app id (group and changelog), reading from the beginning."""
    settings = {
        "window_s": 60,
        "max_events_per_window": THRESHOLD,
        "app_id": f"liveops.velocity.{unique_name}",
        "auto_offset_reset": "earliest",
        "commit_interval_s": 0.5,
        # The embedded broker holds a new faust member about half of this before assigning.
        "session_timeout_s": 6.0,
        "data_dir": tmp_path / "faust",
    }
    return VelocitySettings.model_validate({**settings, **changes})


def changelog_of(settings: VelocitySettings) -> Topic:
    """The table's changelog (faust names it after the app id), as a Topic to read."""
    name = changelog_topic_name(settings.app_id)
    return replace(PLAYER_ACTIONS, name=name, payloads=frozenset())


async def stop_gracefully(process: VelocityProcess) -> None:
    """SIGTERM and wait: faust drains its producer buffer on the way out, so the changelog and
    the flags topic are final (at a commit, its buffer flush may still be in flight)."""
    process.terminate()
    assert await process.wait_exit(EXIT_TIMEOUT_S) == 0, process.log_tail()


@pytest.fixture
def processes() -> Iterator[list[VelocityProcess]]:
    started: list[VelocityProcess] = []
    yield started
    for process in started:
        process.stop()


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
    await publish(kafka_settings, burst + trickle)
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
    rejected_total = await first.metric("liveops_stream_records_rejected_total", job=JOB)
    assert rejected_total is not None and rejected_total >= len(garbage)

    # Given a graceful stop, and the bursty player going on in the same window
    await stop_gracefully(first)
    more = [action(bursty, window, i) for i in range(len(burst), len(burst) + THRESHOLD + 5)]
    await publish(kafka_settings, more)

    # When the job starts again on the same app id
    second = VelocityProcess(kafka_settings, settings, tmp_path, "second").start()
    processes.append(second)
    await second.wait_drained(await end_offsets(kafka_settings, INPUTS), DRAIN_TIMEOUT_S)
    await stop_gracefully(second)

    # Then the table came back from its changelog: nothing lost, nothing counted twice
    tallies = await last_tallies(kafka_settings, changelog_of(settings))
    assert (tallies[bursty].count, tallies[bursty].flagged) == (len(burst) + len(more), True)
    assert (tallies[calm].count, tallies[calm].flagged) == (len(trickle), False)
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
    skipped = await second.metric("liveops_stream_redeliveries_skipped_total", job=JOB)
    await stop_gracefully(second)

    # Then the redelivered burst was recognised and skipped: same count, still one flag
    assert skipped is not None and skipped >= len(burst), second.log_tail()
    tallies = await last_tallies(kafka_settings, changelog_of(settings))
    assert (tallies[bursty].count, tallies[bursty].flagged) == (len(burst), True)
    flags = await read_envelopes(kafka_settings, PLAYER_FLAGS, {bursty})
    assert [flag.event_id for flag in flags] == [flag_event_id(bursty, window)], second.log_tail()


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

    # When everything published is counted and committed
    await job.wait_drained(await end_offsets(kafka_settings, INPUTS), DRAIN_TIMEOUT_S)

    # Then /metrics carries the job's counters (other tests' records may be counted too)
    counted = await job.metric("liveops_stream_events_counted_total", job=JOB)
    assert counted is not None and counted >= len(events), job.log_tail()
    await stop_gracefully(job)
