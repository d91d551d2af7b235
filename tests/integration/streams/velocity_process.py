"""The velocity job as a real process, and the broker reads the live tests wait on.

VelocityProcess runs velocity_child with the test's settings and its own /metrics port; its
logs go to a file shown when a test fails. The waits poll real state (the committed offsets of
the job's group, /metrics, /readyz) against a deadline; none sleeps for a fixed time as the signal.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Iterable
from datetime import datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import RecordMetadata
from prometheus_client.parser import text_string_to_metric_families

from schemas.codec import decode, encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import Topic
from topics.devbroker import free_port
from topics.settings import KafkaSettings
from workers.runtime.settings import RuntimeSettings
from workers.streams.settings import VelocitySettings
from workers.streams.velocity import WindowTally

REPO_ROOT = Path(__file__).resolve().parents[3]
POLL_S = 0.1
#: (topic, key, value) as the tests publish them.
Record = tuple[Topic, bytes, bytes | None]
#: A probe's answer: HTTP status and JSON body.
Answer = tuple[int, dict[str, object]]


class VelocityProcess:
    """One `velocity_child` process; `name` labels its log file."""

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: VelocitySettings,
        log_dir: Path,
        name: str,
        *,
        liveness_stale_s: float = RuntimeSettings().liveness_stale_s,
    ) -> None:
        self.kafka = kafka
        self.settings = settings
        self.name = name
        self.liveness_stale_s = liveness_stale_s
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> VelocityProcess:
        command = [
            sys.executable,
            "-m",
            "tests.integration.streams.velocity_child",
            self.kafka.model_dump_json(),
            self.settings.model_dump_json(),
            str(self.metrics_port),
            str(self.liveness_stale_s),
        ]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and launcher
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def terminate(self) -> None:
        """SIGTERM: faust finishes the record in flight, commits and leaves the group."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or committed, as when a node dies."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)

    async def wait_exit(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while (code := self.returncode) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout_s} s")
            await asyncio.sleep(POLL_S)
        return code

    async def wait_drained(self, targets: dict[TopicPartition, int], timeout_s: float) -> None:
        """Poll the job's committed offsets until each reaches its target: everything published
        before is counted, flushed and committed. Raises, with the log, at the deadline."""
        consumer = AIOKafkaConsumer(
            **self.kafka.client_kwargs(), group_id=self.settings.app_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                behind = [
                    str(tp)
                    for tp, target in targets.items()
                    if target and ((await consumer.committed(tp)) or 0) < target
                ]
                if not behind:
                    return
                if self.returncode is not None:
                    raise RuntimeError(f"{self.name} exited ({self.returncode})\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"still behind on {behind}\n{self.log_tail()}")
                await asyncio.sleep(POLL_S)
        finally:
            await consumer.stop()

    async def metric(self, name: str, **labels: str) -> float | None:
        """Sum of the samples of `name` whose labels include `labels`; None if unreachable."""
        samples = await self.samples(name)
        if samples is None:
            return None
        return sum(value for found, value in samples if labels.items() <= found.items())

    async def samples(self, name: str) -> list[tuple[dict[str, str], float]] | None:
        """(labels, value) of every sample of `name` on /metrics; None if unreachable."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.get(url) as response,
            ):
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        return [
            (sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        ]

    async def probe(self, path: str) -> Answer | None:
        """GET a probe (/healthz, /readyz): its status and JSON body; None if unreachable."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.get(url) as response,
            ):
                body: dict[str, object] = await response.json()
                return response.status, body
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_ready(self, timeout_s: float) -> list[tuple[Answer, Answer | None]]:
        """Poll /readyz until it answers 200. Returns each earlier answer of /readyz paired
        with /healthz asked right after it (None: unreachable). Raises, with the log, at the
        deadline or if the job exits."""
        not_ready: list[tuple[Answer, Answer | None]] = []
        deadline = time.monotonic() + timeout_s
        while (ready := await self.probe("/readyz")) is None or ready[0] != 200:
            if ready is not None:
                not_ready.append((ready, await self.probe("/healthz")))
            if self.returncode is not None:
                raise RuntimeError(f"{self.name} exited ({self.returncode})\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"/readyz still {ready}\n{self.log_tail()}")
            await asyncio.sleep(POLL_S)
        return not_ready

    def logged(self, event: str) -> list[dict[str, object]]:
        """The job's log lines whose event is `event`."""
        return [entry for entry in self.log_entries() if entry.get("event") == event]

    def log_entries(self) -> list[dict[str, object]]:
        """The job's log lines, each a JSON object (its own, faust's and aiokafka's alike)."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def plain_lines(self) -> list[str]:
        """Lines of the job's log that are not JSON objects (a log pipeline could not parse)."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if line.strip() and not line.startswith("{")]

    def lines_span_s(self, text: str) -> float:
        """Seconds between the first and the last of the job's log lines whose event contains
        `text`; 0 for fewer than two."""
        stamps = [
            datetime.fromisoformat(str(entry["timestamp"]))
            for entry in self.log_entries()
            if text in str(entry.get("event", ""))
        ]
        return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"[{self.name}: no log]"
        return f"[{self.name} log, last {chars} chars]\n{text[-chars:]}"

    def stop(self) -> None:
        """Teardown: make sure the process is gone (SIGKILL if it still runs)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._process is not None:
            self._process.wait(timeout=10)


def envelope_record(topic: Topic, envelope: Envelope) -> Record:
    return topic, envelope.player_id.encode(), encode(envelope)


async def publish(
    kafka: KafkaSettings,
    records: Iterable[Record],
    headers: list[tuple[str, bytes | None]] | None = None,
) -> list[RecordMetadata]:
    """Send records in order (each with `headers`, if given) and wait for every ack; where
    each one landed."""
    producer = AIOKafkaProducer(**kafka.client_kwargs(), enable_idempotence=False)
    await producer.start()
    try:
        return [
            await producer.send_and_wait(topic.name, value, key=key, headers=headers)
            for topic, key, value in records
        ]
    finally:
        await producer.stop()


async def end_offsets(kafka: KafkaSettings, topics: Iterable[Topic]) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(t.name, p) for t in topics for p in range(t.partitions)]
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return offsets
    finally:
        await consumer.stop()


async def read_all(kafka: KafkaSettings, topic: Topic) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic`, from the start to its end at the time of the call; none while
    the topic does not exist yet (a changelog before the job's first write)."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        if topic.name not in await consumer.topics():
            return found
        ends = await end_offsets(kafka, (topic,))
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for records in batches.values():
                found.extend(records)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found


async def read_envelopes(
    kafka: KafkaSettings, topic: Topic, player_ids: Collection[str]
) -> list[Envelope]:
    """Every envelope on `topic` whose player is one of `player_ids`."""
    envelopes = [decode(record.value) for record in await read_all(kafka, topic)]
    return [envelope for envelope in envelopes if envelope.player_id in player_ids]


async def last_tallies(kafka: KafkaSettings, changelog: Topic) -> dict[str, WindowTally]:
    """The table as its changelog says: the last tally written for each player."""
    tallies: dict[str, WindowTally] = {}
    for record in await read_all(kafka, changelog):
        player_id, _window_range = json.loads(record.key)
        tallies[player_id] = WindowTally.from_json(json.loads(record.value))
    return tallies


async def wait_tallies(
    kafka: KafkaSettings, changelog: Topic, expected: dict[str, int], timeout_s: float
) -> dict[str, WindowTally]:
    """Poll the changelog until each player's last tally has the expected count."""
    deadline = time.monotonic() + timeout_s
    while True:
        tallies = await last_tallies(kafka, changelog)
        counts = {player: tallies[player].count for player in expected if player in tallies}
        if counts == expected:
            return tallies
        if time.monotonic() > deadline:
            raise TimeoutError(f"changelog counts {counts}, expected {expected}")
        await asyncio.sleep(POLL_S)
