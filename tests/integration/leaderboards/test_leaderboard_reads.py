"""Reads: top N with pages, one player, around a player, friends; over HTTP as well."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.routes import leaderboard_routes

from .lb_helpers import NOW, Clock, ProcessorFactory, seconds_after, submission

pytestmark = pytest.mark.integration
PLAYERS = 12  # p00 scores 1200, p01 1100, ... p11 100: rank = index + 1


@pytest.fixture
async def http(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
    clock: Clock,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    arena = f"{board_prefix}-arena"
    batch = [
        submission(arena, f"p{i:02d}", (PLAYERS - i) * 100, seconds_after(NOW, i))
        for i in range(PLAYERS)
    ]
    await make_processor().handle(batch)
    app = web.Application()
    app.add_routes(
        leaderboard_routes(redis_client, definitions, key_prefix=unique_name, clock=clock)
    )
    async with TestClient(TestServer(app)) as client:
        yield client


async def get_json(
    client: TestClient[web.Request, web.Application], path: str
) -> dict[str, object]:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    body: dict[str, object] = await response.json()
    return body


def ranks(body: dict[str, object]) -> list[tuple[int, str, int]]:
    entries = body["entries"]
    assert isinstance(entries, list)
    return [(e["rank"], e["player_id"], e["score"]) for e in entries]


async def test_top_pages_carry_period_and_reset_time(
    http: TestClient[web.Request, web.Application], board_prefix: str
) -> None:
    base = f"/v1/leaderboards/{board_prefix}-arena"
    first = await get_json(http, f"{base}/top?limit=5")
    second = await get_json(http, f"{base}/top?offset=5&limit=5")
    assert ranks(first) == [(i + 1, f"p{i:02d}", (PLAYERS - i) * 100) for i in range(5)]
    assert [r for r, _, _ in ranks(second)] == [6, 7, 8, 9, 10]
    assert first["period"] == "2026-W48"
    assert first["resets_at"] == "2026-11-30T00:00:00+00:00"
    assert first["total_players"] == PLAYERS


async def test_player_around_and_friends(
    http: TestClient[web.Request, web.Application], board_prefix: str
) -> None:
    base = f"/v1/leaderboards/{board_prefix}-arena"
    assert ranks(await get_json(http, f"{base}/players/p03")) == [(4, "p03", 900)]
    assert ranks(await get_json(http, f"{base}/players/nobody")) == []
    around = await get_json(http, f"{base}/around/p01?radius=2")
    assert [p for _, p, _ in ranks(around)] == ["p00", "p01", "p02", "p03"]
    friends = await get_json(http, f"{base}/friends?ids=p09,nobody,p02,p09")
    assert ranks(friends) == [(3, "p02", 1000), (10, "p09", 300)]


async def test_bad_requests_are_refused_plainly(
    http: TestClient[web.Request, web.Application], board_prefix: str
) -> None:
    base = f"/v1/leaderboards/{board_prefix}-arena"
    assert (await http.get("/v1/leaderboards/nope/top")).status == 404
    assert (await http.get(f"{base}/top?limit=1000")).status == 400
    assert (await http.get(f"{base}/top?period=2026-13")).status == 400
    past = await get_json(http, f"{base}/top?period=2026-W47")
    assert past["entries"] == [] and past["period"] == "2026-W47"
