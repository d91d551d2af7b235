"""Prometheus metrics of the stream jobs, in a registry the job creates (never global).

Labelled by `stream` (the job's name), so several jobs could share one process and one
/metrics page. Not `job`: Prometheus sets its own `job` on every scraped series and would move
ours to `exported_job`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class StreamMetrics:
    """Counters and gauges of one stream job process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_counted = Counter(
            "liveops_stream_events_counted_total",
            "Records counted into a window.",
            ["stream", "topic"],
            registry=registry,
        )
        self.records_rejected = Counter(
            "liveops_stream_records_rejected_total",
            "Records skipped because they are not a valid envelope (undecodable, no ids).",
            ["stream", "topic", "reason_class"],
            registry=registry,
        )
        self.redeliveries_skipped = Counter(
            "liveops_stream_redeliveries_skipped_total",
            "Records seen again after a restart and not counted twice.",
            ["stream", "topic"],
            registry=registry,
        )
        self.flags_published = Counter(
            "liveops_stream_flags_published_total",
            "PlayerFlagged events published (one per player and window).",
            ["stream"],
            registry=registry,
        )
        self.flag_publish_failures = Counter(
            "liveops_stream_flag_publish_failures_total",
            "Flags the broker did not take; retried on the player's next event in the window.",
            ["stream"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "liveops_stream_consumer_lag",
            "Records between the group's committed offset and the end of an input partition; "
            "only the process holding the partition reports it.",
            ["stream", "topic", "partition"],
            registry=registry,
        )
        self.lag_reads_failed = Counter(
            "liveops_stream_lag_reads_failed_total",
            "Lag measurements that failed (the gauge keeps its previous values).",
            ["stream"],
            registry=registry,
        )
