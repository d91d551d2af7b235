"""`liveops leaderboards ...` against the real Redis, MySQL and the embedded broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from typer.testing import CliRunner

from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.cli import leaderboards_app
from workers.processors.leaderboards.definitions import parse_definitions
from workers.processors.leaderboards.events import season_id
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.settings import FleetSettings, MySQLSettings, RedisSettings

from .lb_helpers import NOW, boards_toml, prizes_of, ranked, seconds_after, settled, submission

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


async def seed(prefix: str, target: MySQLTarget, toml: str, board_id: str) -> None:
    """Three scores in week 48 on `board_id`, through the processor."""
    client = aioredis.Redis.from_url(REDIS_URL)
    pool = await create_pool(target, maxsize=2)
    try:
        processor = LeaderboardsProcessor(
            redis=client,
            mysql=pool,
            definitions=parse_definitions(toml),
            key_prefix=prefix,
            settings=LeaderboardSettings(close_lazily=False),
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


async def announced(prefix: str, board_id: str, period: str) -> bool:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return bool(await client.exists(keys.announced_key(prefix, board_id, period)))
    finally:
        await client.aclose()


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
        assert ranked(published) == [("ann", 1), ("cid", 2), ("bob", 3)]
        # Acknowledged: the workers' lazy closer will not announce the week again.
        assert asyncio.run(announced(unique_name, arena, "2026-W48"))
        assert "was already closed" in run("close", arena, "--period", "2026-W48", "--no-announce")
        refused = runner.invoke(
            leaderboards_app,
            ["close", arena, "--period", "2099-W01", "--definitions", str(path)],
            obj=settings,
        )
        assert refused.exit_code == 1 and "still open" in refused.output
    finally:
        asyncio.run(drop_keys(unique_name))
