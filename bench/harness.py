"""The benchmark harness behind `liveops bench NAME`.

One run: start (or reuse) the embedded broker, preload a topic with a fixed number of realistic
envelopes, then measure the subject and its references on that same topic, each in its own child
process (so peak RSS is its own), interleaved over several rounds; report medians and ratios as
one JSON line. Never used by tests to time anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.errors import LiveopsError
from topics.catalog import DAY_MS, Topic
from topics.devbroker import EmbeddedBroker, free_port
from topics.settings import KafkaSettings


class BenchError(LiveopsError):
    """A benchmark child failed or printed no result."""


@dataclass(frozen=True)
class ChildSpec:
    """One measured program: `python -m bench.child KIND ...` with extra arguments."""

    label: str
    kind: str
    extra_args: tuple[str, ...] = ()


#: Puts `events` realistic envelopes on a topic (each bench module has its own).
Preload = Callable[[KafkaSettings, Topic, int], Coroutine[Any, Any, None]]


@contextlib.contextmanager
def preloaded_topic(
    bootstrap: str | None, bench: str, events: int, preload: Preload
) -> Iterator[tuple[str, str]]:
    """(bootstrap, topic name) of a fresh topic holding `events` envelopes.

    On the broker named, or on a private embedded broker started for the run and stopped after.
    """
    broker = None
    if bootstrap is None:
        broker = EmbeddedBroker(port=free_port())
        broker.start()
        bootstrap = broker.bootstrap_servers
    try:
        topic = Topic(f"bench.{bench}.{uuid.uuid4().hex[:8]}", 6, DAY_MS, "bench", "Bench input.")
        asyncio.run(preload(KafkaSettings(bootstrap_servers=bootstrap), topic, events))
        yield bootstrap, topic.name
    finally:
        if broker is not None:
            broker.stop()


def run_child(
    spec: ChildSpec, bootstrap: str, topic: str, events: int, timeout_s: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "bench.child",
            spec.kind,
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--events",
            str(events),
            "--result-file",
            str(result_file),
            *spec.extra_args,
        ]
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if done.returncode != 0 or not result_file.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise BenchError(f"{spec.label} exited {done.returncode}: {' | '.join(tail)}")
        result: dict[str, Any] = json.loads(result_file.read_text())
        return result


def median_of(rounds: Sequence[dict[str, Any]], key: str) -> float:
    values = [float(r[key]) for r in rounds if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else 0.0


def measure(
    bench: str,
    subject: ChildSpec,
    references: Sequence[ChildSpec],
    *,
    bootstrap: str,
    topic: str,
    events: int,
    rounds: int,
    timeout_s: float = 600.0,
    variants: Sequence[ChildSpec] = (),
    variants_key: str = "variants",
) -> dict[str, Any]:
    """Interleave subject, variants and references `rounds` times; medians, ratios, one dict.

    `variants` are other configurations of the subject, measured in the same rounds on the same
    topic; each is reported under `line[variants_key][label]` with its own ratios.
    """
    everyone = (subject, *variants, *references)
    results: dict[str, list[dict[str, Any]]] = {s.label: [] for s in everyone}
    for _ in range(rounds):
        for spec in everyone:
            results[spec.label].append(run_child(spec, bootstrap, topic, events, timeout_s))
    mine = results[subject.label]
    line: dict[str, Any] = {
        "bench": bench,
        "events": events,
        "rounds": rounds,
        "throughput_eps": median_of(mine, "throughput_eps"),
        "p50_ms": median_of(mine, "p50_ms"),
        "p99_ms": median_of(mine, "p99_ms"),
        "peak_rss_mb": median_of(mine, "peak_rss_mb"),
        "references": {},
        "ratios": {},
    }
    for spec in references:
        eps = median_of(results[spec.label], "throughput_eps")
        line["references"][spec.label] = {
            "throughput_eps": eps,
            "peak_rss_mb": median_of(results[spec.label], "peak_rss_mb"),
            **_extras(results[spec.label]),
        }
        line["ratios"][f"vs_{spec.label}"] = round(line["throughput_eps"] / eps, 3) if eps else None
    if variants:
        line[variants_key] = {}
    for spec in variants:
        eps = median_of(results[spec.label], "throughput_eps")
        line[variants_key][spec.label] = {
            "throughput_eps": eps,
            "p50_ms": median_of(results[spec.label], "p50_ms"),
            "p99_ms": median_of(results[spec.label], "p99_ms"),
            **(
                {"cpu_us_per_event": median_of(results[spec.label], "cpu_us_per_event")}
                if any("cpu_us_per_event" in r for r in results[spec.label])
                else {}
            ),
            "ratios": {
                f"vs_{ref}": round(eps / ref_eps["throughput_eps"], 3)
                if ref_eps["throughput_eps"]
                else None
                for ref, ref_eps in line["references"].items()
            },
        }
    line.update(_extras(mine))
    return line


def _extras(rounds: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Medians of the numeric figures a child reported beyond the common ones (handle_share,
    cpu_us_per_event, rows_per_event...)."""
    common = {"throughput_eps", "p50_ms", "p99_ms", "peak_rss_mb"}
    keys = {k for r in rounds for k in r} - common
    return {
        key: median_of(rounds, key)
        for key in sorted(keys)
        if all(isinstance(r.get(key), int | float) for r in rounds)
    }
