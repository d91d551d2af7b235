"""The leaderboard read API as aiohttp routes, for the gateway to mount (create_app(extra_routes=)).

    GET /v1/leaderboards/{id}/top?offset=0&limit=10
    GET /v1/leaderboards/{id}/players/{player_id}
    GET /v1/leaderboards/{id}/around/{player_id}?radius=5
    GET /v1/leaderboards/{id}/friends?ids=p1,p2,p3
Every route takes `?period=KEY` to read a past period still within retention; the default is
the period running now. Answers are JSON with leaderboard_id, period, resets_at (ISO 8601 UTC,
null when it never resets), total_players and entries [{rank, player_id, score}]. 404 for an
unknown board, 400 for a bad parameter; never 5xx for a player without a score (no entries).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import redis.asyncio as aioredis
from aiohttp import web

from schemas.codec import now_utc
from workers.processors.leaderboards import reads
from workers.processors.leaderboards.definitions import Definitions, LeaderboardDefinition
from workers.processors.leaderboards.errors import PeriodError
from workers.processors.leaderboards.periods import LeaderboardPeriod, period_at, period_named
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.settings import RedisSettings


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=f'{{"error": "{message}"}}', content_type="application/json")


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _bad_request(f"{name} must be within {low}..{high}")
    return value


def leaderboard_routes(
    redis: aioredis.Redis,
    definitions: Definitions,
    *,
    key_prefix: str = RedisSettings().key_prefix,
    settings: LeaderboardSettings | None = None,
    clock: Callable[[], datetime] = now_utc,
) -> list[web.RouteDef]:
    """The four read routes over one Redis client and one version of the definitions."""
    limits = settings or LeaderboardSettings()

    def board_and_period(request: web.Request) -> tuple[LeaderboardDefinition, LeaderboardPeriod]:
        board = definitions.get(request.match_info["id"])
        if board is None:
            raise web.HTTPNotFound(
                text='{"error": "unknown leaderboard"}', content_type="application/json"
            )
        key = request.query.get("period")
        if key is None:
            return board, period_at(board, clock())
        try:
            return board, period_named(board, key)
        except PeriodError as exc:
            raise _bad_request(str(exc).replace('"', "'")) from None

    async def top(request: web.Request) -> web.Response:
        board, period = board_and_period(request)
        view = await reads.read_top(
            redis,
            prefix=key_prefix,
            board=board,
            period=period,
            offset=_int_param(request, "offset", 0, 0, 10_000_000),
            limit=_int_param(request, "limit", 10, 1, limits.read_page_max),
        )
        return web.json_response(view.to_json())

    async def player(request: web.Request) -> web.Response:
        board, period = board_and_period(request)
        view = await reads.read_player(
            redis,
            prefix=key_prefix,
            board=board,
            period=period,
            player_id=request.match_info["player_id"],
        )
        return web.json_response(view.to_json())

    async def around(request: web.Request) -> web.Response:
        board, period = board_and_period(request)
        view = await reads.read_around(
            redis,
            prefix=key_prefix,
            board=board,
            period=period,
            player_id=request.match_info["player_id"],
            radius=_int_param(request, "radius", 5, 0, limits.read_around_max),
        )
        return web.json_response(view.to_json())

    async def friends(request: web.Request) -> web.Response:
        board, period = board_and_period(request)
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if len(ids) > limits.read_friends_max:
            raise _bad_request(f"at most {limits.read_friends_max} ids")
        view = await reads.read_friends(
            redis, prefix=key_prefix, board=board, period=period, player_ids=ids
        )
        return web.json_response(view.to_json())

    base = "/v1/leaderboards/{id}"
    return [
        web.get(f"{base}/top", top),
        web.get(f"{base}/players/{{player_id}}", player),
        web.get(f"{base}/around/{{player_id}}", around),
        web.get(f"{base}/friends", friends),
    ]
