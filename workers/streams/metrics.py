"""Prometheus metrics of the stream jobs, in a registry the job creates (never global).

Labelled by job, so several jobs could share one process and one /metrics page.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class StreamMetrics:
    """Counters of one stream job process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_counted = Counter(
            "liveops_stream_events_counted_total",
            "Records counted into a window.",
            ["job", "topic"],
            registry=registry,
        )
        self.records_rejected = Counter(
            "liveops_stream_records_rejected_total",
            "Records skipped because they are not a valid envelope (undecodable, no ids).",
            ["job", "topic", "reason_class"],
            registry=registry,
        )
        self.redeliveries_skipped = Counter(
            "liveops_stream_redeliveries_skipped_total",
            "Records seen again after a restart and not counted twice.",
            ["job", "topic"],
            registry=registry,
        )
        self.flags_published = Counter(
            "liveops_stream_flags_published_total",
            "PlayerFlagged events published (one per player and window).",
            ["job"],
            registry=registry,
        )
        self.flag_publish_failures = Counter(
            "liveops_stream_flag_publish_failures_total",
            "Flags the broker did not take; retried on the player's next event in the window.",
            ["job"],
            registry=registry,
        )
