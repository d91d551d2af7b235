"""Knobs of the leaderboards processor and its reads.

The `leaderboards` section of FleetSettings (LIVEOPS_LEADERBOARDS__*); tests pass their own.
The dedup markers' TTL is not here: the scoring script sets the runtime's markers, so it uses
LIVEOPS_RUNTIME__DEDUP_TTL_S. Frozen, so one value holds for the life of a worker.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class LeaderboardSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The definitions file; None loads the boards.toml shipped in this package.
    definitions_path: Path | None = None
    #: Close (archive) a finished period no sooner than this long after its end; 0: at the
    #: first batch after it, when nothing else holds it back.
    close_grace_s: int = Field(default=300, ge=0)
    #: Whether the processor archives finished periods itself and publishes their prizes
    #: (else: `liveops leaderboards close`, from a cron job). See lazyclose.py.
    close_lazily: bool = True
    #: Also wait until the consumer group has consumed past the period's end on every input
    #: partition, so that submissions received before the reset but still queued (a spike, an
    #: outage) are scored first (watermark.py). Needs offsets_for_times (Apache Kafka has it).
    close_wait_for_group: bool = True
    #: With close_wait_for_group, also wait until the group's retry tiers are drained, so a
    #: submission received before the end that failed for a while is scored, not refused.
    close_wait_for_retries: bool = True
    #: Close anyway, with a warning and a metric, once the period has waited this long for
    #: the group (a stuck partition must not hold prizes forever). Counted from when the
    #: first worker found it due (kept in Redis), so restarts do not start the wait again.
    close_max_wait_s: int = Field(default=3 * 3600, ge=0)
    #: How often, at most, the group's offsets are read while a period waits for it.
    close_check_interval_s: float = Field(default=5.0, ge=0)
    #: How often the closer also runs on its own, between batches, so that periods close and
    #: prizes go out when no submission arrives; 0: only after batches.
    close_idle_check_s: float = Field(default=30.0, ge=0)
    #: Finished periods before the latest one that are closed too if they never were (workers
    #: down or without traffic across several resets); 0 looks at the latest only.
    close_lookback_periods: int = Field(default=7, ge=0)
    #: Most journal entries copied to MySQL per INSERT.
    journal_chunk: int = Field(default=1000, gt=0)
    #: The journal is copied after every batch and, in case a copy failed, this often in the
    #: background; 0 turns the background copy off.
    journal_copy_interval_s: float = Field(default=5.0, ge=0)
    #: Largest page of a top-N read and largest friends list.
    read_page_max: int = Field(default=100, gt=0)
    read_friends_max: int = Field(default=200, gt=0)
    #: Players shown on each side of a player in the "around" read, at most.
    read_around_max: int = Field(default=25, gt=0)
