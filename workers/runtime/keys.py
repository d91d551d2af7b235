"""Every Redis key the runtime (and the processors on it) write, built in one place.

Dedup markers live at `{prefix}:dedup:{processor}:{idempotency_key}` and hold either
`lease:<worker-id>` (someone is applying the event right now, expires after a short PX) or
`done` (applied, kept for the dedup TTL).

Rule for processors whose effects live in Redis (leaderboards): their Lua script must take the
dedup key built here, skip the effect when it already holds `done`, and set it to `done` with
the dedup TTL in the same script as the effect, so effect and marker are atomic. The runtime's
later "mark done" then finds `done` already there, which is harmless. A processor that does
this for every final event (rejections too) may declare DedupMode.PROCESSOR (processor.py):
the runtime then writes no lease and no marker for it, and its script is the only guard.
"""

from __future__ import annotations

#: Value of a dedup key once the event's effects are durable.
DONE = "done"
#: Prefix of the value of a dedup key while a worker holds the lease.
LEASE_PREFIX = "lease:"


def dedup_key(prefix: str, processor: str, idempotency_key: str) -> str:
    """The dedup marker of one event for one processor."""
    return f"{prefix}:dedup:{processor}:{idempotency_key}"


def lease_value(worker_id: str) -> str:
    return f"{LEASE_PREFIX}{worker_id}"


def probe_counts_key(prefix: str, processor: str) -> str:
    """Hash of applied-event counts per player, written by the probe processor."""
    return f"{prefix}:probe:{processor}:counts"


def probe_attempts_key(prefix: str, processor: str) -> str:
    """Hash of failed attempts per idempotency key, for the probe's `flaky-<n>-` players."""
    return f"{prefix}:probe:{processor}:attempts"
