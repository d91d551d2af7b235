"""observe_all must leave a histogram exactly as one observe() per value would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.samples import Sample

from workers.runtime.metrics import observe_all

BUCKETS = (0.005, 0.01, 0.1, 1, 10)


def samples(histogram: Histogram) -> list[Sample]:
    return [s for metric in histogram.collect() for s in metric.samples if s.name != "h_created"]


def test_observe_all_matches_one_observe_per_value() -> None:
    # Given values on, below, between and above the bucket bounds (and a repeat batch)
    values = [0.0, 0.005, 0.0051, 0.01, 0.05, 0.1, 0.99, 1.0, 9.5, 10.0, 10.01, 300.0, 0.05]
    one_by_one = Histogram("h", "", buckets=BUCKETS, registry=CollectorRegistry())
    batched = Histogram("h", "", buckets=BUCKETS, registry=CollectorRegistry())

    # When one gets observe() per value and the other observe_all() twice, in two halves
    for value in values:
        one_by_one.observe(value)
    observe_all(batched, values[:5])
    observe_all(batched, values[5:])
    observe_all(batched, [])

    # Then their buckets, count and sum are the same
    assert samples(batched) == samples(one_by_one)
    assert [s.value for s in samples(batched) if s.name == "h_count"] == [len(values)]


def test_observe_all_on_a_labelled_child() -> None:
    parent = Histogram("h", "", ["processor"], buckets=BUCKETS, registry=CollectorRegistry())
    observe_all(parent.labels("p"), [0.001, 0.5, 50.0])
    buckets = {
        s.labels["le"]: s.value
        for metric in parent.collect()
        for s in metric.samples
        if s.name == "h_bucket"
    }
    assert buckets == {"0.005": 1, "0.01": 1, "0.1": 1, "1.0": 2, "10.0": 2, "+Inf": 3}
