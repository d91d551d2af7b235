"""A real worker in a real process: started, probed over HTTP, killed or stopped, restarted.

Each WorkerProcess runs `python -m tests.fault.launch` (the probe, rewards or leaderboards
processor, as its options say, on the test's group), or another command given to it (the real
`liveops worker all`), with its settings in LIVEOPS_* variables, exactly as a deployment would
pass them, and its own /metrics, /healthz and /readyz port. Its stderr (JSON logs) goes to a
file shown when a test fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from topics.devbroker import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of one test shares: where the services are and the test's group."""

    group: str
    bootstrap_servers: str
    redis_url: str
    mysql_dsn: str
    key_prefix: str
    log_dir: Path
    #: Launcher options (see tests/fault/launch.py), for example ("--lease-ms", "3000").
    options: tuple[str, ...] = ()
    #: Extra LIVEOPS_* variables.
    env: dict[str, str] = field(default_factory=dict)


class WorkerProcess:
    """One worker process; `name` only labels its log file. `command` replaces the launcher
    (tests/fault/launch.py and config.options); the LIVEOPS_* variables stay the same."""

    def __init__(
        self, config: WorkerConfig, name: str, *, command: Sequence[str] | None = None
    ) -> None:
        self.config = config
        self.name = name
        self.metrics_port = free_port()
        self.log_path = config.log_dir / f"{name}.log"
        launcher = [sys.executable, "-m", "tests.fault.launch", "--group", config.group]
        self.command = list(command) if command is not None else [*launcher, *config.options]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LIVEOPS_")}
        env.update(
            {
                "LIVEOPS_KAFKA__BOOTSTRAP_SERVERS": self.config.bootstrap_servers,
                "LIVEOPS_KAFKA__CLIENT_ID": f"{self.config.group}-{self.name}",
                "LIVEOPS_REDIS__URL": self.config.redis_url,
                "LIVEOPS_REDIS__KEY_PREFIX": self.config.key_prefix,
                "LIVEOPS_MYSQL__DSN": self.config.mysql_dsn,
                "LIVEOPS_METRICS_PORT": str(self.metrics_port),
                "LIVEOPS_LOG_LEVEL": "info",
                **self.config.env,
            }
        )
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter, launcher or CLI
                self.command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a node dies."""
        self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: the worker finishes its batch, commits and leaves the group."""
        self._signal(signal.SIGTERM)

    async def wait_exit(self, timeout_s: float) -> int:
        """The exit code; raises TimeoutError if the process outlives the deadline."""
        deadline = time.monotonic() + timeout_s
        while (code := self.returncode) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {self.name} still running after {timeout_s} s")
            await asyncio.sleep(0.05)
        return code

    async def probe(self, path: str) -> int | None:
        """HTTP status of GET `path` on the worker's metrics port, None when nobody answers."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.get(url) as response,
            ):
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_for_status(self, path: str, status: int, *, timeout_s: float) -> bool:
        """Poll `path` until it answers `status`; False at the deadline or if the worker died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.returncode is not None:
                return False
            if await self.probe(path) == status:
                return True
            await asyncio.sleep(0.1)
        return False

    async def wait_for_metric(self, name: str, *, timeout_s: float, **labels: str) -> bool:
        """Poll metric() until it is above zero; False at the deadline or if the worker died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.returncode is not None:
                return False
            if (await self.metric(name, **labels) or 0.0) > 0:
                return True
            await asyncio.sleep(0.1)
        return False

    async def metric(self, name: str, **labels: str) -> float | None:
        """Sum of the samples of `name` whose labels include `labels`; None if unreachable."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.get(url) as response,
            ):
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"[{self.name}: no log]"
        return f"[{self.name} log, last {LOG_TAIL_CHARS} chars]\n{text[-LOG_TAIL_CHARS:]}"

    def stop(self) -> None:
        """Make sure the process is gone (test teardown): SIGKILL if it still runs."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._process is not None:
            self._process.wait(timeout=10)

    def _signal(self, signum: signal.Signals) -> None:
        assert self._process is not None, "start() first"
        if self._process.poll() is None:
            self._process.send_signal(signum)
