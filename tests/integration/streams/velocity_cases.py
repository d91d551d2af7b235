"""What the live velocity tests share: the test's job settings, its players' events, a graceful
stop, and the deadlines of the waits."""

from __future__ import annotations

from pathlib import Path

from schemas.codec import new_event_id
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import LEADERBOARD_SCORES, PLAYER_ACTIONS
from workers.streams.settings import VelocitySettings
from workers.streams.velocity import Window

from .velocity_process import Record, VelocityProcess, envelope_record

THRESHOLD = 20
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


async def stop_gracefully(process: VelocityProcess) -> None:
    """SIGTERM and wait: faust drains its producer buffer on the way out, so the changelog and
    the flags topic are final (at a commit, its buffer flush may still be in flight)."""
    process.terminate()
    assert await process.wait_exit(EXIT_TIMEOUT_S) == 0, process.log_tail()
