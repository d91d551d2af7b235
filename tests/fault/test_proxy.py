"""The fault proxy forwards faithfully, cuts for real, restores its port, delays in order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from .proxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo_port) as running:
        yield running


async def _round_trip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_forwards_both_ways_byte_for_byte(proxy: FaultProxy) -> None:
    # Given a proxy in front of an echo server, When a megabyte goes through and back,
    payload = bytes(range(256)) * 4096
    echoed = await _round_trip(proxy.port, payload)
    # Then every byte comes back in order, through one proxied connection.
    assert echoed == payload
    assert proxy.accepted_total == 1


async def test_cut_resets_open_links_and_refuses_new_ones(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"

    proxy.cut()

    # The open link is gone: reading ends (EOF or reset), never more data.
    try:
        rest = await asyncio.wait_for(reader.read(10), 10)
    except ConnectionResetError:
        rest = b""
    assert rest == b""
    writer.close()
    with pytest.raises(ConnectionError):
        await writer.wait_closed()
    # A new connection is refused, as by a stopped server.
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", proxy.port)
    assert proxy.is_cut
    assert proxy.open_connections == 0


async def test_restore_listens_again_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    proxy.cut()
    proxy.restore()
    assert proxy.port == port
    assert await _round_trip(port, b"back again") == b"back again"


async def test_delay_holds_each_chunk_and_keeps_order(proxy: FaultProxy) -> None:
    proxy.delay(150)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    started = time.monotonic()
    for index in range(5):
        writer.write(f"{index};".encode())
        await writer.drain()
    echoed = await asyncio.wait_for(reader.readexactly(10), 10)
    elapsed_s = time.monotonic() - started
    writer.close()
    await writer.wait_closed()
    # Both directions are delayed: the answer cannot come back before two delays.
    assert echoed == b"0;1;2;3;4;"
    assert elapsed_s >= 0.3
    proxy.delay(0)
    assert await _round_trip(proxy.port, b"fast") == b"fast"


async def test_unreachable_target_closes_the_client() -> None:
    with FaultProxy("127.0.0.1", _closed_port()) as proxy:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        except ConnectionResetError:
            return  # the proxy reset the client before its connect call returned: closed too
        try:
            data = await asyncio.wait_for(reader.read(10), 10)
        except ConnectionResetError:
            data = b""
        assert data == b""  # the proxy closed (or reset) the client's connection
        writer.close()
        # Whether closing our side then reports the reset depends on timing: both are fine.
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.integration
async def test_real_redis_through_the_proxy_fails_while_cut_and_recovers() -> None:
    with FaultProxy("127.0.0.1", 6379) as proxy:
        # No client-side retries: the test wants to see the cut, not ride it out.
        client = aioredis.Redis(
            host="127.0.0.1", port=proxy.port, socket_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        try:
            assert await client.ping()
            proxy.cut()
            with pytest.raises(RedisConnectionError):
                await client.ping()
            proxy.restore()
            assert await client.ping()
        finally:
            await client.aclose()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
