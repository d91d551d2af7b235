"""`liveops leaderboards ...` against the real Redis, MySQL and the embedded broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr
from typer.testing import CliRunner

from schemas.codec import decode
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool
from workers.processors.leaderboards.cli import leaderboards_app
from workers.processors.leaderboards.definitions import parse_definitions
from workers.processors.leaderboards.events import PRIZE_TOPIC, season_id
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.settings import FleetSettings, MySQLSettings, RedisSettings

from .lb_helpers import NOW, boards_toml, seconds_after, settled, submission

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


async def seed(prefix: str, target: MySQLTarget, toml: str, board_id: str) -> None:
    """Three scores in week 48 on `board_id`, through the processor."""
    client = aioredis.Redis.from_url(REDIS_URL)
    pool = await create_pool(target, maxsize=2)
    try:
        processor = LeaderboardsProcessor(
            redis=client, mysql=pool, definitions=parse_definitions(toml), key_prefix=prefix
        )
        scores = [("ann", 30), ("bob", 10), ("cid", 20)]
        await settled(
            processor,
            [submission(board_id, p, s, seconds_after(NOW, i)) for i, (p, s) in enumerate(scores)],
        )
    finally:
        pool.close()
        await pool.wait_closed()
        await client.aclose()


async def drop_keys(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


async def prizes_of(kafka: KafkaSettings, season: str, want: int) -> list[tuple[str, int]]:
    """Read the prize topic from the start until `want` prizes of `season` are seen (or 20 s)."""
    consumer = AIOKafkaConsumer(
        PRIZE_TOPIC.name,
        **kafka.client_kwargs(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[str, int]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < want and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = decode(record.value)
                    prize = envelope.season_prize_awarded
                    if envelope.HasField("season_prize_awarded") and prize.season_id == season:
                        found.append((envelope.player_id, prize.rank))
    finally:
        await consumer.stop()
    return found


def test_list_rebuild_top_and_close(
    tmp_path: Path,
    mysql_target: MySQLTarget,
    kafka_settings: KafkaSettings,
    unique_name: str,
    board_prefix: str,
) -> None:
    toml = boards_toml(board_prefix)
    path = tmp_path / "boards.toml"
    path.write_text(toml)
    arena = f"{board_prefix}-arena"
    dsn = f"mysql://root@{mysql_target.host}:{mysql_target.port}/{mysql_target.database}"
    settings = FleetSettings(
        kafka=kafka_settings,
        redis=RedisSettings(key_prefix=unique_name),
        mysql=MySQLSettings(dsn=SecretStr(dsn)),
    )
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(leaderboards_app, [*args, "--definitions", str(path)], obj=settings)
        assert result.exit_code == 0, result.output
        return result.output

    try:
        asyncio.run(seed(unique_name, mysql_target, toml, arena))
        listed = run("list")
        assert "definitions version test-1: 5 leaderboards" in listed
        assert arena in listed

        # Redis loses the week; the rebuild brings it back from MySQL.
        asyncio.run(drop_keys(unique_name))
        assert "rebuilt" in run("rebuild", arena, "--period", "2026-W48")
        top = run("top", arena, "--period", "2026-W48")
        assert [line.split()[:3] for line in top.splitlines()[1:]] == [
            ["1", "ann", "30"],
            ["2", "cid", "20"],
            ["3", "bob", "10"],
        ]

        closed = run("close", arena, "--period", "2026-W48", "--force")
        assert "closed; 3 entries archived" in closed
        assert "published 3 prize events" in closed
        published = asyncio.run(prizes_of(kafka_settings, season_id(arena, "2026-W48"), 3))
        assert sorted(published, key=lambda p: p[1]) == [("ann", 1), ("cid", 2), ("bob", 3)]
        assert "was already closed" in run("close", arena, "--period", "2026-W48", "--no-announce")
        refused = runner.invoke(
            leaderboards_app,
            ["close", arena, "--period", "2099-W01", "--definitions", str(path)],
            obj=settings,
        )
        assert refused.exit_code == 1 and "still open" in refused.output
    finally:
        asyncio.run(drop_keys(unique_name))
