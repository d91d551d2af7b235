"""Every Redis key the runtime (and the processors on it) write, built in one place.

Dedup markers live at `{prefix}:dedup:{processor}:{idempotency_key}` and hold either `done`
(applied, kept for the dedup TTL; what a processor's own script writes) or the marker of the
batch that claimed the event, `b:<worker-id>:<n>` (also kept for the dedup TTL). A batch's
state is one key, `{prefix}:dedup-batch:{processor}:<worker-id>:<n>`: `lease` while the batch
is in flight (expires after a short PX), then `done` for the dedup TTL once its effects are
durable. So an event is done when its marker says so or its batch does; marking a batch done is
one write, whatever its size. `lease:<worker-id>` is the in-flight marker of the format before
batch markers; the claim script still honours it.

Rule for processors whose effects live in Redis (leaderboards): their Lua script must take the
dedup key built here, skip the effect when it already holds `done`, and set it to `done` with
the dedup TTL in the same script as the effect, so effect and marker are atomic. A processor
that does this for every final event (rejections too) may declare DedupMode.PROCESSOR
(processor.py): the runtime then writes no marker for it, and its script is the only guard.
"""

from __future__ import annotations

#: Value of a dedup key once the event's effects are durable.
DONE = "done"
#: Value of a dedup batch key while its batch is in flight.
LEASED = "lease"
#: Prefix of a dedup key's value that names the batch which claimed it.
BATCH_MARKER_PREFIX = "b:"
#: Prefix of the value of a dedup key claimed in the format before batch markers.
LEASE_PREFIX = "lease:"


def dedup_key(prefix: str, processor: str, idempotency_key: str) -> str:
    """The dedup marker of one event for one processor."""
    return f"{dedup_key_prefix(prefix, processor)}{idempotency_key}"


def dedup_key_prefix(prefix: str, processor: str) -> str:
    """What every dedup marker of one processor starts with (the idempotency key follows)."""
    return f"{prefix}:dedup:{processor}:"


def lease_value(worker_id: str) -> str:
    return f"{LEASE_PREFIX}{worker_id}"


def worker_markers(worker_id: str) -> str:
    """What the markers of every batch of one worker start with."""
    return f"{BATCH_MARKER_PREFIX}{worker_id}:"


def batch_marker(worker_id: str, number: int) -> str:
    """The value a batch writes into the dedup keys it claims."""
    return f"{worker_markers(worker_id)}{number}"


def dedup_batch_prefix(prefix: str, processor: str) -> str:
    """What the batch key of a marker starts with (the claim script appends the rest)."""
    return f"{prefix}:dedup-batch:{processor}:"


def dedup_batch_key(prefix: str, processor: str, marker: str) -> str:
    """The state key (`lease`, then `done`) of the batch whose marker is `marker`."""
    return dedup_batch_prefix(prefix, processor) + marker.removeprefix(BATCH_MARKER_PREFIX)


def probe_counts_key(prefix: str, processor: str) -> str:
    """Hash of applied-event counts per player, written by the probe processor."""
    return f"{prefix}:probe:{processor}:counts"


def probe_attempts_key(prefix: str, processor: str) -> str:
    """Hash of failed attempts per idempotency key, for the probe's `flaky-<n>-` players."""
    return f"{prefix}:probe:{processor}:attempts"
