"""Knobs of the worker runtime: dedup TTLs, in-process retries, back-off and shutdown.

FleetSettings carries them as its `runtime` section (LIVEOPS_RUNTIME__*); tests and benchmarks
pass their own. Frozen, so one value holds for the life of a worker.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

WEEK_S = 7 * 24 * 3600


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: How long a `done` dedup marker is kept: a duplicate later than this is applied again
    #: unless the processor's durable guard (processed_events) catches it.
    dedup_ttl_s: int = Field(default=WEEK_S, gt=0)
    #: How long a worker's claim on an event lasts if it dies before finishing the batch.
    lease_ms: int = Field(default=60_000, gt=0)
    #: How long a TransientError is retried in process before the batch goes to retry topics.
    transient_retry_budget_s: float = Field(default=2.0, ge=0)
    #: Back-off while a dependency (Redis, MySQL, the broker) is down: capped, with jitter.
    backoff_initial_s: float = Field(default=0.2, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    #: SIGTERM: stop fetching, finish the batch in flight, commit, leave; within this deadline.
    shutdown_deadline_s: float = Field(default=25.0, gt=0)
    #: /healthz fails when the loop has not iterated for this long.
    liveness_stale_s: float = Field(default=30.0, gt=0)
    #: How often consumer lag is measured (one committed() + end_offsets() round trip).
    lag_refresh_s: float = Field(default=15.0, gt=0)
    #: Consumer group liveness. A restarted worker's partitions come back after the old
    #: member's session expires (the embedded broker does not act on LeaveGroup at once).
    session_timeout_ms: int = Field(default=10_000, gt=0)
    heartbeat_interval_ms: int = Field(default=3_000, gt=0)
    #: How long the group waits for members to rejoin: covers finishing the batch in flight.
    rebalance_timeout_ms: int = Field(default=30_000, gt=0)
    #: Settle a batch (publish, mark done, commit) while the next one is polled and handled:
    #: hides those round trips; off = one batch at a time (the retry loop always is).
    pipeline: bool = True
    #: With `pipeline`, claim a batch's dedup keys in Redis as soon as it is decoded, while
    #: the batch before it is handled (DedupMode.RUNTIME input loops; loop.py).
    claim_ahead: bool = True
    #: Longest a settled batch's offsets wait to be committed with later batches' (0: commit
    #: every batch). A crash replays at most this much work, as duplicates (loop.py, step 8).
    commit_interval_ms: int = Field(default=100, ge=0)
    #: Allocations between two runs of the garbage collector (Python's default: 700); at
    #: start the worker also freezes what it built (gctuning.py). 0 leaves Python's settings.
    gc_gen0_threshold: int = Field(default=50_000, ge=0)
    #: Longest the retry consumer waits in one poll while its partitions are paused.
    retry_poll_ms: int = Field(default=200, gt=0)
