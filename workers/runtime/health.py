"""/metrics, /healthz and /readyz of a worker process (aiohttp, on settings.metrics_port).

- /healthz: the loops are alive (some loop iterated within `liveness_stale_s`). A stuck event
  loop fails it; a dependency outage does not (restarting would not help).
- /readyz: partitions assigned to every input consumer, no dependency known down, Redis and
  MySQL answer, and every processor says ready(). Fails during an outage, so traffic and
  alerts see it, and passes again by itself when the dependency returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workers.runtime.context import WorkerContext
from workers.runtime.loop import ConsumerLoop, Progress
from workers.runtime.processor import Processor
from workers.runtime.settings import RuntimeSettings

_CHECK_TIMEOUT_S = 2.0


class HealthServer:
    def __init__(
        self,
        context: WorkerContext,
        *,
        progress: Progress,
        processors: Sequence[Processor],
        input_loops: Sequence[ConsumerLoop],
        settings: RuntimeSettings,
    ) -> None:
        self._context = context
        self._progress = progress
        self._processors = processors
        self._input_loops = input_loops
        self._settings = settings
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int, host: str = "0.0.0.0") -> int:  # noqa: S104 - probes come from outside the pod
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._context.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        age_s = time.monotonic() - self._progress.last_iteration_at
        if age_s > self._settings.liveness_stale_s:
            return web.json_response({"alive": False, "last_iteration_s": age_s}, status=503)
        return web.json_response({"alive": True, "last_iteration_s": round(age_s, 3)})

    async def _readyz(self, _request: web.Request) -> web.Response:
        problems = await self.readiness_problems()
        return web.json_response(
            {"ready": not problems, "problems": problems}, status=503 if problems else 200
        )

    async def readiness_problems(self) -> list[str]:
        problems: list[str] = []
        for loop in self._input_loops:
            if not loop.consumer.assignment():
                problems.append(f"{loop.pipeline.processor.name}: no partitions assigned")
        problems += [f"{name}: unavailable" for name in sorted(self._progress.down)]
        checks: dict[str, Any] = {
            "redis": self._context.redis.ping(),
            "mysql": self._ping_mysql(),
        }
        for processor in self._processors:
            checks[f"{processor.name}.ready"] = processor.ready()
        for name, check in checks.items():
            try:
                ok = await asyncio.wait_for(check, timeout=_CHECK_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - any failure of a probe means not ready
                problems.append(f"{name}: {type(exc).__name__}")
                continue
            if not ok:
                problems.append(f"{name}: not ready")
        return problems

    async def _ping_mysql(self) -> bool:
        async with self._context.mysql.acquire() as conn, conn.cursor() as cursor:
            await cursor.execute("SELECT 1")
            row = await cursor.fetchone()
        return bool(row and row[0] == 1)
