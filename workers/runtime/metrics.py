"""The runtime's Prometheus metrics, registered in a registry the worker creates (never global).

Every metric is labelled by processor, so `liveops worker all` exposes all processors at once.
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)


class PartitionSeries:
    """One gauge's series for the partitions this process holds (a consumer lag), and which
    those are. forget() removes the series of partitions it no longer holds: their new owner
    reports them, and a stale copy here would be added to its figure (a dashboard's or an
    HPA's sum over pods). Used by the worker loops and the velocity job alike."""

    def __init__(self, gauge: Gauge, labels: Callable[[TopicPartition], Sequence[str]]) -> None:
        self._gauge = gauge
        self._labels = labels
        self.reported: set[TopicPartition] = set()

    def set(self, tp: TopicPartition, value: float) -> None:
        self._gauge.labels(*self._labels(tp)).set(value)
        self.reported.add(tp)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in list(partitions):
            self.reported.discard(tp)
            with contextlib.suppress(KeyError):  # never set here
                self._gauge.remove(*self._labels(tp))


class RuntimeMetrics:
    """All runtime metrics of one worker process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_consumed = Counter(
            "liveops_events_consumed_total",
            "Records polled from input and retry topics.",
            ["topic", "processor"],
            registry=registry,
        )
        self.outcomes = Counter(
            "liveops_outcomes_total",
            "Final word on each event polled: applied, duplicate, rejected, retry, failed.",
            ["processor", "outcome"],
            registry=registry,
        )
        self.duplicates = Counter(
            "liveops_duplicates_total",
            "Events skipped because they were applied before.",
            ["processor"],
            registry=registry,
        )
        self.retries = Counter(
            "liveops_retries_total",
            "Events sent to a retry tier.",
            ["processor", "tier"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "liveops_dead_letters_total",
            "Events sent to the dead-letter topic, by error class.",
            ["processor", "reason_class"],
            registry=registry,
        )
        self.handle_seconds = Histogram(
            "liveops_handle_seconds",
            "Time in processor.handle() per batch, including in-process retries.",
            ["processor"],
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.batch_size = Histogram(
            "liveops_batch_size",
            "Records per polled batch.",
            ["processor"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.end_to_end_seconds = Histogram(
            "liveops_end_to_end_seconds",
            "From the gateway receiving an event to its outcome being final.",
            ["processor"],
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "liveops_consumer_lag",
            "Records between the committed offset and the end of the partition.",
            ["topic", "partition", "processor"],
            registry=registry,
        )
        self.rebalances = Counter(
            "liveops_rebalances_total",
            "Partitions revoked from this worker by a group rebalance.",
            ["processor"],
            registry=registry,
        )
        self.dependency_up = Gauge(
            "liveops_dependency_up",
            "1 when the dependency answered the last time it was used, else 0.",
            ["dependency"],
            registry=registry,
        )


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(v)` for each value, with one increment per bucket touched.

    The end-to-end histogram takes an observation per event, 500 per batch: observe() walks
    the bucket bounds and locks a value each time (~2 µs per event here). This sorts the values
    (in C) and finds how many fall at or below each bound with bisect, so the Python work
    grows with the number of buckets, not of values. It leans on prometheus-client's Histogram
    internals (_upper_bounds, _buckets, _sum; a unit test checks it matches observe());
    without them it falls back to observe().
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    ordered = sorted(values)
    below = 0  # values at or below the previous bound: counted in an earlier bucket
    for bound, bucket in zip(bounds, buckets, strict=True):
        upto = bisect_right(ordered, bound)
        if upto > below:
            bucket.inc(upto - below)
            below = upto
        if below == len(ordered):
            break
    total.inc(math.fsum(ordered))
