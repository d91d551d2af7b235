"""/metrics, /healthz and /readyz of a stream job, served from faust's own event loop.

The same probes as a batch worker (workers/runtime/health.py), so Kubernetes and Prometheus
treat the job like one:
- /healthz: the event loop is alive. A heartbeat task in faust's loop stamps a monotonic time
  every HEARTBEAT_S; older than `liveness_stale_s` means the loop is stuck (an agent blocking
  it), and only a restart helps. A broker outage does not fail it: the loop keeps turning.
- /readyz: the app is running, its consumer holds partitions of the job's inputs, faust is
  neither rebalancing nor restoring tables from their changelogs, and the broker answers a
  metadata request within PING_TIMEOUT_S (asked on each probe, on a client of the probe's
  own: faust keeps its partitions through a broker outage, so the other checks stay green);
  else 503 with the problems.

HealthService is handed to faust.Worker as one of its services, so it starts before the app:
the probes answer while the first assignment and the table recovery are still under way
(app.task, app.service and app.web_server would all start only after recovery, leaving
/healthz unreachable for as long as the broker is). faust's own web server stays off.
The decisions are plain functions over the few public attributes of a faust App they read
(FaustStatus), so they are unit-tested with fakes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Set
from typing import Protocol

import structlog
from aiohttp import web
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from faust.exceptions import NotReady
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from topics.ping import cluster_answers
from topics.settings import KafkaSettings

#: How often the heartbeat task stamps the loop as alive.
HEARTBEAT_S = 1.0
#: Longest /readyz waits for the broker's metadata: below a readiness probe's usual timeout.
PING_TIMEOUT_S = 2.0

Clock = Callable[[], float]

log = structlog.get_logger(__name__)


class AssignedPartition(Protocol):
    """What readiness needs of a faust TP."""

    @property
    def topic(self) -> str: ...


class AssignmentSource(Protocol):
    """A faust consumer, as far as readiness reads it."""

    def assignment(self) -> Set[AssignedPartition]: ...


class FaustStatus(Protocol):
    """The public attributes of a faust App that readiness reads (faust.types.app.AppT)."""

    @property
    def started(self) -> bool: ...

    @property
    def should_stop(self) -> bool: ...

    @property
    def rebalancing(self) -> bool: ...

    @property
    def in_recovery(self) -> bool: ...

    @property
    def consumer(self) -> AssignmentSource: ...


class Heartbeat:
    """The last time faust's loop ran the heartbeat task (monotonic seconds)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.last_beat_at = clock()

    def beat(self) -> None:
        self.last_beat_at = self._clock()

    def age_s(self) -> float:
        return self._clock() - self.last_beat_at


def is_alive(heartbeat: Heartbeat, stale_s: float) -> tuple[bool, float]:
    """(alive, age of the last beat): alive while the beat is at most `stale_s` old."""
    age_s = heartbeat.age_s()
    return age_s <= stale_s, age_s


def readiness_problems(
    app: FaustStatus, input_topics: Collection[str], *, broker_answers: bool | None = None
) -> list[str]:
    """Why the job cannot process its inputs now; empty when it can.

    Partitions are those of the inputs only: faust also assigns changelog partitions, which
    alone process nothing. Rebalancing (app.rebalancing) lasts from the revocation to the end
    of table recovery; in_recovery is the changelog restore itself. Both pass by themselves.
    `broker_answers` is the answer of a metadata request (None: not asked).
    """
    if not app.started:
        return ["faust: not started"]
    if app.should_stop:
        return ["faust: stopping"]
    problems: list[str] = []
    try:
        assigned = app.consumer.assignment()
    except NotReady:
        assigned = set()
    inputs = {tp.topic for tp in assigned if tp.topic in input_topics}
    if not inputs:
        problems.append("consumer: no input partitions assigned")
    if app.rebalancing:
        problems.append("faust: rebalancing")
    if app.in_recovery:
        problems.append("tables: recovering from changelog")
    if broker_answers is False:
        problems.append("broker: no cluster metadata within the ping timeout")
    return problems


class HealthService(Service):
    """The aiohttp server of /metrics, /healthz and /readyz, and the loop's heartbeat."""

    def __init__(
        self,
        app: FaustStatus,
        *,
        registry: CollectorRegistry,
        input_topics: Collection[str],
        port: int,
        liveness_stale_s: float,
        host: str = "0.0.0.0",  # noqa: S104 - probes come from outside the pod
        clock: Clock = time.monotonic,
        heartbeat_s: float = HEARTBEAT_S,
        kafka: KafkaSettings | None = None,
        ping_timeout_s: float = PING_TIMEOUT_S,
    ) -> None:
        """`kafka`: the cluster /readyz pings (None: readiness does not ask the broker)."""
        super().__init__()
        self._app = app
        self._registry = registry
        self._input_topics = frozenset(input_topics)
        self._requested_port = port
        self._host = host
        self._liveness_stale_s = liveness_stale_s
        self._heartbeat_s = heartbeat_s
        self.heartbeat = Heartbeat(clock)
        self._runner: web.AppRunner | None = None
        self._kafka = kafka
        self._ping_timeout_s = ping_timeout_s
        self._client: AIOKafkaClient | None = None
        #: The bound port once started (the requested one, or the one picked for port 0).
        self.port = 0

    async def on_start(self) -> None:
        web_app = web.Application()
        web_app.router.add_get("/metrics", self._metrics)
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._requested_port).start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._requested_port
        self.heartbeat.beat()
        log.info("stream.health_serving", host=self._host, port=self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    @Service.task
    async def _beat(self) -> None:
        """Stamp the heartbeat every heartbeat_s for as long as the loop runs tasks."""
        while not self.should_stop:
            self.heartbeat.beat()
            await self.sleep(self._heartbeat_s)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        alive, age_s = is_alive(self.heartbeat, self._liveness_stale_s)
        return web.json_response(
            {"alive": alive, "last_beat_s": round(age_s, 3)}, status=200 if alive else 503
        )

    async def _readyz(self, _request: web.Request) -> web.Response:
        broker_answers = await self.broker_answers()
        problems = readiness_problems(self._app, self._input_topics, broker_answers=broker_answers)
        return web.json_response(
            {"ready": not problems, "problems": problems}, status=503 if problems else 200
        )

    async def broker_answers(self) -> bool | None:
        """Whether the cluster's metadata came back within the ping timeout (None: no
        cluster to ask). The client is made at the first ask that reaches the broker, then
        kept (aiokafka reconnects it by itself)."""
        if self._kafka is None:
            return None
        if self._client is None:
            try:
                async with asyncio.timeout(self._ping_timeout_s):
                    self._client = await _connected_client(self._kafka)
            except (KafkaError, TimeoutError, OSError) as exc:
                log.info("stream.broker_unanswered", error=str(exc) or type(exc).__name__)
                return False
        return await cluster_answers(self._client, self._ping_timeout_s)


async def _connected_client(kafka: KafkaSettings) -> AIOKafkaClient:
    client = AIOKafkaClient(**kafka.client_kwargs())
    try:
        await client.bootstrap()
    except BaseException:
        await client.close()
        raise
    return client
