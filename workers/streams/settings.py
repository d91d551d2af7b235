"""Knobs of the velocity job (`liveops stream velocity`).

FleetSettings carries them as its `velocity` section (LIVEOPS_VELOCITY__*); tests pass their
own. Frozen, so one value holds for the life of the job: changing `window_s` on a running app id
would mix windows of two sizes in one table, so a new window size wants a new `app_id`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class VelocitySettings(BaseModel):
    """Window, threshold and faust plumbing of the per-player velocity counter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Size of the tumbling window, aligned to the epoch (0-60 s, 60-120 s, ...).
    window_s: int = Field(default=60, gt=0)
    #: A player with more events than this in one window is flagged (once per window).
    max_events_per_window: int = Field(default=120, gt=0)
    #: How long a closed window stays in the table (and so how late an event may arrive and
    #: still be counted in its window). At least one window.
    expires_s: int = Field(default=600, gt=0)
    #: faust app id: the consumer group and the prefix of the table's changelog topic.
    app_id: str = Field(default="liveops.velocity", min_length=1)
    #: Where a group without committed offsets starts. "latest" on first deployment: counting
    #: days of retained history would flag windows long closed.
    auto_offset_reset: Literal["earliest", "latest"] = "latest"
    #: Consumer group liveness (heartbeats every third of it). On the embedded broker a faust
    #: member waits about half of it before its first assignment, so tests keep it short.
    session_timeout_s: float = Field(default=10.0, ge=3.0)
    #: How long the group waits for members to rejoin during a rebalance.
    rebalance_timeout_s: float = Field(default=30.0, gt=0)
    #: How often faust commits consumed offsets (after flushing the changelog and the flags).
    commit_interval_s: float = Field(default=2.8, gt=0)
    #: Send every record in its own batch. The embedded Tansu broker answers "latest offset"
    #: with the start of a partition's last batch, so faust, which restores a table by reading
    #: its changelog up to that offset, would stop early after a restart and forget counts
    #: (and flags). Costs producer throughput; turn off against Apache Kafka.
    one_record_per_batch: bool = True
    #: How often the job measures its consumer lag (liveops_stream_consumer_lag): one read of
    #: the group's committed offsets and one of the end offsets of its assigned inputs.
    lag_interval_s: float = Field(default=15.0, gt=0)
    #: faust's working directory (it creates one even for in-memory tables).
    data_dir: Path = Path(".liveops/streams")

    @model_validator(mode="after")
    def _check_expiry(self) -> Self:
        if self.expires_s < self.window_s:
            raise ValueError("expires_s must be at least window_s, or windows vanish while open")
        return self
