"""The demo's season story on the arena board: reads through the gateway, Redis losing the board
and the rebuild from MySQL, then the season's end: archive with final ranks and prizes that the
rewards worker pays out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from workers.demo.players import PlayerSession
from workers.demo.stack import DemoStack
from workers.processors.leaderboards import keys, reads
from workers.processors.leaderboards.cli import publish
from workers.processors.leaderboards.closing import close_period
from workers.processors.leaderboards.definitions import load_definitions
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.rebuild import rebuild_board


@dataclass(frozen=True)
class SeasonStory:
    board_id: str
    period: str
    reader: str
    player_view: dict[str, Any]
    around: list[dict[str, Any]]
    friends: list[dict[str, Any]]
    http_top_matches_redis: bool
    rebuilt_players: int
    rebuilt_identical: bool
    archived: int
    champion: str
    prizes_published: int


async def play_season(stack: DemoStack, session: PlayerSession, board_id: str) -> SeasonStory:
    definitions = load_definitions(stack.settings.leaderboards.definitions_path)
    board = definitions.get(board_id)
    if board is None:
        raise LookupError(f"the demo board {board_id} is not defined")
    prefix = stack.settings.redis.key_prefix
    redis, pool = stack.context.redis, stack.context.mysql
    period = period_at(board, datetime.now(UTC))
    reader = session.report.players[0]
    friends = ",".join(session.report.players[1:4])

    base = f"/v1/leaderboards/{board.id}"
    http_top = await _get(session, reader, f"{base}/top?limit=10")
    mine = await _get(session, reader, f"{base}/players/{reader}")
    around = await _get(session, reader, f"{base}/around/{reader}?radius=2")
    circle = await _get(session, reader, f"{base}/friends?ids={friends}")
    direct = await reads.read_top(redis, prefix=prefix, board=board, period=period, limit=10)
    matches = http_top["entries"] == direct.to_json()["entries"]

    # Redis loses the board (a flush, a failover): rebuild it from the MySQL journal.
    key = keys.board_key(prefix, board.id, period.key)
    before = await redis.zrange(key, 0, -1, withscores=True)
    await redis.delete(key)
    report = await rebuild_board(redis, pool, prefix=prefix, board=board, period=period)
    after = await redis.zrange(key, 0, -1, withscores=True)

    # The live event ends now: archive the period and announce the prizes.
    closed = await close_period(
        redis,
        pool,
        prefix=prefix,
        board=board,
        period=period,
        definitions_version=definitions.version,
        now=datetime.now(UTC),
        force=True,
    )
    await publish(stack.settings, closed.outputs)
    return SeasonStory(
        board_id=board.id,
        period=period.key,
        reader=reader,
        player_view=(mine["entries"] or [{}])[0],
        around=around["entries"],
        friends=circle["entries"],
        http_top_matches_redis=matches and bool(direct.entries),
        rebuilt_players=report.players,
        rebuilt_identical=bool(before) and before == after,
        archived=len(closed.entries),
        champion=closed.entries[0].player_id if closed.entries else "",
        prizes_published=len(closed.outputs),
    )


async def _get(session: PlayerSession, player: str, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {session.token(player)}"}
    async with session.http.get(session.base_url + path, headers=headers) as response:
        if response.status != 200:
            raise aiohttp.ClientResponseError(
                response.request_info, (), status=response.status, message=await response.text()
            )
        answer: dict[str, Any] = await response.json()
        return answer


async def prize_winners(stack: DemoStack) -> int:
    """Players whose ledger holds a season prize."""
    async with stack.context.mysql.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT COUNT(DISTINCT player_id) FROM reward_ledger WHERE reason = 'season_prize'"
        )
        (count,) = await cursor.fetchone()
        await conn.commit()
    return int(count)


def season_lines(story: SeasonStory, winners: int) -> list[str]:
    view = story.player_view

    def ranks(entries: list[dict[str, Any]]) -> str:
        return ", ".join(f"#{e['rank']} {e['player_id']}" for e in entries)

    return [
        f"Leaderboard reads through the gateway, as {story.reader}:",
        f"  my rank: #{view.get('rank')} with {view.get('score')}; around me: "
        f"{ranks(story.around)}",
        f"  friends: {ranks(story.friends)}; top 10 over HTTP equals Redis: "
        f"{'yes' if story.http_top_matches_redis else 'NO'}",
        f"Redis lost the board: rebuilt {story.rebuilt_players} players from the MySQL journal, "
        f"ranks identical: {'yes' if story.rebuilt_identical else 'NO'}",
        f"Season end: {story.board_id} {story.period} archived ({story.archived} final ranks, "
        f"champion {story.champion}); {story.prizes_published} prize events -> rewards paid "
        f"prizes to {winners} players",
    ]
