"""`liveops gateway` as operators run it: serves, mounts the leaderboard reads, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from schemas.codec import decode
from topics.catalog import PLAYER_ACTIONS, Topic
from topics.devbroker import free_port
from topics.settings import KafkaSettings
from workers.processors.leaderboards.definitions import load_definitions

from .harness import JWT_SECRET, TopicProbe, bearer, level_completed

pytestmark = pytest.mark.integration

LIVEOPS = Path(sys.executable).parent / "liveops"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


def gateway_env(kafka_settings: KafkaSettings, port: int, key_prefix: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LIVEOPS_")}
    env.update(
        LIVEOPS_KAFKA__BOOTSTRAP_SERVERS=kafka_settings.bootstrap_servers,
        LIVEOPS_GATEWAY__PORT=str(port),
        LIVEOPS_GATEWAY__JWT_SECRET=JWT_SECRET,
        LIVEOPS_REDIS__KEY_PREFIX=key_prefix,
        LIVEOPS_LOG_LEVEL="warning",
    )
    return env


async def wait_until_healthy(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_the_command_serves_until_sigterm(
    kafka_settings: KafkaSettings,
    input_topics: tuple[Topic, ...],
    probe: TopicProbe,
    redis_client: aioredis.Redis,
    unique_name: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    since = await probe.end_offsets()
    with (tmp_path / "gateway.log").open("wb") as log:  # read it when this test fails
        process = await asyncio.create_subprocess_exec(
            str(LIVEOPS), "gateway", env=gateway_env(kafka_settings, port, unique_name), stderr=log
        )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_healthy(session, base)
            async with session.get(f"{base}/readyz") as ready:
                assert ready.status == 200

            async with session.post(
                f"{base}/v1/events", json=level_completed(), headers=bearer(unique_name)
            ) as accepted:
                assert accepted.status == 202
                event_id = (await accepted.json())["event_id"]

            board = next(iter(load_definitions()))
            async with session.get(
                f"{base}/v1/leaderboards/{board.id}/top", headers=bearer(unique_name)
            ) as top:
                assert top.status == 200
                assert (await top.json())["leaderboard_id"] == board.id
            async with session.get(f"{base}/v1/leaderboards/{board.id}/top") as anonymous:
                assert anonymous.status == 401

        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert exit_code == 0
    (record,) = await probe.records_of(PLAYER_ACTIONS, unique_name, since)
    assert decode(record.value).event_id == event_id


async def test_a_missing_jwt_secret_stops_the_command_with_one_line(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    env = gateway_env(kafka_settings, free_port(), unique_name)
    del env["LIVEOPS_GATEWAY__JWT_SECRET"]
    process = await asyncio.create_subprocess_exec(
        str(LIVEOPS), "gateway", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), STOP_TIMEOUT_S)

    assert process.returncode == 1
    assert stderr.decode().strip() == (
        "liveops gateway: HS256 tokens need LIVEOPS_GATEWAY__JWT_SECRET"
    )
