"""`liveops bench` is the one way performance is measured: it must keep running and keep the
JSON keys scripts read. Nothing here times anything."""

from __future__ import annotations

import asyncio

import pytest

from bench import runtime
from topics.devbroker import EmbeddedBroker

REQUIRED = {"bench", "events", "throughput_eps", "p50_ms", "p99_ms", "peak_rss_mb"}


@pytest.mark.integration
@pytest.mark.timeout(240)
async def test_the_runtime_bench_prints_its_line_with_every_reference(
    kafka_broker: EmbeddedBroker,
) -> None:
    # Given the session's broker, When a tiny runtime bench runs (children, real stores),
    line = await asyncio.to_thread(runtime.run, 600, 1, bootstrap=kafka_broker.bootstrap_servers)

    # Then the line has the keys the issues name, every reference measured something,
    assert line.keys() >= REQUIRED
    assert line["bench"] == "runtime" and line["events"] == 600
    assert set(line["references"]) == {"raw", "quix_empty", "faust_empty", "naive"}
    assert all(ref["throughput_eps"] > 0 for ref in line["references"].values())
    assert set(line["ratios"]) == {"vs_raw", "vs_quix_empty", "vs_faust_empty", "vs_naive"}
    # and both dedup modes (and loop variants) are reported side by side.
    assert set(line["by_dedup_mode"]) == {"runtime", "processor"}
    assert set(line["by_pipeline"]) == {"pipelined", "sequential"}
    assert set(line["by_claim_ahead"]) == {"on", "off"}
    assert line["by_claim_ahead"]["off"]["throughput_eps"] > 0
