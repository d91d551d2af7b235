"""A private redis-server on a free loopback port, for tests that flush or stop Redis.

The shared Redis on 6379 serves every other test; a FLUSHALL there would break them. This one
keeps nothing on disk and dies with the test.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from topics.devbroker import free_port, port_open

START_TIMEOUT_S = 10.0


class PrivateRedisError(RuntimeError):
    """redis-server is missing or did not start."""


class PrivateRedis:
    """`with PrivateRedis() as server:` gives `server.url`; flush_all() empties it."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.port = 0
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise PrivateRedisError("redis-server is not on PATH")
        self.port = free_port()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below, after Popen has its copy
        try:
            self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, binary from PATH
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]  # the file we opened above
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrivateRedisError(f"redis-server exited with {self._process.returncode}")
            if port_open("127.0.0.1", self.port) and self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise PrivateRedisError(f"redis-server did not answer on {self.port} in time")

    def flush_all(self) -> None:
        """Forget every key, as a failover to an empty replica would."""
        with redis.Redis(port=self.port) as client:
            client.flushall()

    def key_count(self) -> int:
        with redis.Redis(port=self.port) as client:
            return int(client.dbsize())

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
