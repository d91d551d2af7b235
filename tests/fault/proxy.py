"""A fault-injecting TCP proxy on loopback: put it between a worker and MySQL (or Redis).

It runs its own event loop in a daemon thread, so a test can cut a link while its own loop is
busy awaiting the worker, and a worker in another process sees a real network fault: the
listening socket closes (new connections are refused) and every open connection is reset.

    with FaultProxy("127.0.0.1", 3306) as proxy:
        dsn = f"mysql://root@127.0.0.1:{proxy.port}/db"
        proxy.cut()        # MySQL "stopped": open links reset, new ones refused
        proxy.restore()    # listening again on the same port
        proxy.delay(200)   # every chunk arrives 200 ms late, in order, both directions

Controls are synchronous and return once the fault is in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

CHUNK_BYTES = 64 * 1024
CONTROL_TIMEOUT_S = 10.0


class FaultProxy:
    """Forwards every connection on `listen_host:port` to `target_host:target_port`."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = 0
        self._delay_s = 0.0
        self._cut = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        #: Connections accepted since start; tests use it to see the worker really went through us.
        self.accepted_total = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Bind a free loopback port and serve from a thread of our own."""
        self.port = _free_port(self.listen_host)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close everything and end the thread; safe to call twice."""
        loop = self._loop
        if loop is None:
            return
        self._call(self._drop_all())
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(CONTROL_TIMEOUT_S)
        loop.close()
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- controls ----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return self.listen_host, self.port

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until restore()."""
        self._cut = True
        self._call(self._drop_all())

    def restore(self) -> None:
        """Listen again on the same port; new connections are forwarded as before."""
        self._cut = False
        self._call(self._listen())

    def delay(self, ms: float) -> None:
        """Hold every forwarded chunk `ms` milliseconds (0 removes the delay); order is kept."""
        self._delay_s = max(ms, 0.0) / 1000.0

    # -- inside the proxy's loop -------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None, "start() the proxy first"
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(CONTROL_TIMEOUT_S)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.listen_host, self.port, reuse_address=True
        )

    async def _drop_all(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            _reset(writer)
        for task in list(self._links):
            task.cancel()
        if self._links:
            await asyncio.wait(list(self._links), timeout=CONTROL_TIMEOUT_S)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._cut:
            _reset(client_w)
            return
        self.accepted_total += 1
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self._writers.add(client_w)
        upstream_w: asyncio.StreamWriter | None = None
        try:
            upstream_r, upstream_w = await asyncio.open_connection(
                self.target_host, self.target_port
            )
            self._writers.add(upstream_w)
            await asyncio.gather(self._pump(client_r, upstream_w), self._pump(upstream_r, client_w))
        except (OSError, asyncio.IncompleteReadError):
            pass  # either side went away: the other one is closed below
        except asyncio.CancelledError:
            # cut() or stop() cancelled this link on purpose. Ending normally keeps asyncio's
            # start_server callback from logging the cancellation as an error.
            pass
        finally:
            self._links.discard(task)
            for writer in (client_w, upstream_w):
                if writer is not None:
                    self._writers.discard(writer)
                    _reset(writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; with a delay, a queue keeps chunks in order without capping rate."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                wait_s = due - time.monotonic()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                chunk = await reader.read(CHUNK_BYTES)
                queue.put_nowait((time.monotonic() + self._delay_s, chunk))
                if not chunk:
                    break
            await sender
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed server or a dropped link would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
