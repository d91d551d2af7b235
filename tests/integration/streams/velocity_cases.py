"""What the live velocity tests share: the test's job settings, its players' events, a group
with known commits, a graceful stop, and the deadlines of the waits."""

from __future__ import annotations

import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import new_event_id
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import LEADERBOARD_SCORES, PLAYER_ACTIONS
from topics.offsets import end_offsets
from topics.settings import KafkaSettings
from workers.streams.settings import VelocitySettings
from workers.streams.velocity import Window, window_for
from workers.streams.velocity_job import INPUTS

from .velocity_process import Record, VelocityProcess, envelope_record, publish

THRESHOLD = 20
#: Records prepare_group leaves unread on the player's actions partition.
ACTIONS_LEFT = 2
DRAIN_TIMEOUT_S = 75.0  # generous: faust on a loaded 2-core machine can take long to rejoin
EXIT_TIMEOUT_S = 20.0


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


async def commit(
    settings: KafkaSettings, group_id: str, offsets: dict[TopicPartition, int]
) -> None:
    """Commit `offsets` for `group_id` as the job would, from a plain assigned consumer."""
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def prepare_group(
    settings: KafkaSettings, velocity: VelocitySettings, player_id: str
) -> tuple[TopicPartition, TopicPartition, dict[TopicPartition, int]]:
    """Given: one player's events (4 actions, 1 score: one partition of each input, the same
    number), the group committed ACTIONS_LEFT short of the actions partition's end and nowhere
    else (not on the scores partition). Returns both partitions and every input's ends."""
    window = window_for(int(time.time() * 1000), velocity.window_s)
    landed = await publish(settings, [action(player_id, window, i) for i in range(5)])
    [partition] = {meta.partition for meta in landed}
    actions = TopicPartition(PLAYER_ACTIONS.name, partition)
    scores = TopicPartition(LEADERBOARD_SCORES.name, partition)
    inputs = [TopicPartition(t.name, p) for t in INPUTS for p in range(t.partitions)]
    ends = await end_offsets(settings, inputs)
    await commit(settings, velocity.app_id, {actions: ends[actions] - ACTIONS_LEFT})
    return actions, scores, ends


async def stop_gracefully(process: VelocityProcess) -> None:
    """SIGTERM and wait: faust drains its producer buffer on the way out, so the changelog and
    the flags topic are final (at a commit, its buffer flush may still be in flight)."""
    process.terminate()
    assert await process.wait_exit(EXIT_TIMEOUT_S) == 0, process.log_tail()
