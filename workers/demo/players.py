"""A scripted session of simulated players, driven through the HTTP gateway like real clients.

It plays a fixed, seeded script so every demo run tells the same story: logins, levels, matches
and scores from current clients; shop purchases paid with the coins just earned (one the player
cannot afford); requests retried with the same Idempotency-Key (a client that
timed out); an outdated client that sends fewer fields; a newer client with an event type this
build does not know; and hostile or malformed requests that must be refused with a reason.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

CURRENT_CLIENT = {
    "platform": "ios",
    "app_version": "2.14.0",
    "build": 1400,
    "schema_version": 1,
}
ANDROID_CLIENT = {
    "platform": "android",
    "app_version": "2.14.1",
    "build": 1401,
    "schema_version": 1,
}
#: A client from before ClientInfo.schema_version existed: no build, no schema version.
OUTDATED_CLIENT = {"platform": "android", "app_version": "1.2.0"}


@dataclass
class SessionReport:
    """What the gateway answered, by story beat."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_beat: Counter[str] = field(default_factory=Counter)
    refusals: list[tuple[str, int, str]] = field(default_factory=list)
    retried_same_event_id: int = 0
    retried_total: int = 0
    accepted_event_ids: set[str] = field(default_factory=set)
    players: list[str] = field(default_factory=list)
    #: Shop offers the gateway accepted (each is then bought or refused by rewards).
    shop_requests: int = 0


@dataclass
class PlayerSession:
    base_url: str
    jwt_secret: str
    http: aiohttp.ClientSession
    board_id: str
    players: int = 40
    seed: int = 7
    report: SessionReport = field(default_factory=SessionReport)

    def token(self, player_id: str) -> str:
        now = int(time.time())
        claims = {"sub": player_id, "iat": now, "exp": now + 3600}
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    async def send(
        self,
        beat: str,
        player_id: str,
        path: str,
        body: Any,
        *,
        idempotency_key: str | None = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {token or self.token(player_id)}",
            "Content-Type": "application/json",
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.http.post(self.base_url + path, data=data, headers=headers) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            self.report.statuses[response.status] += 1
            self.report.by_beat[beat] += 1
            if response.status == 202:
                self.report.accepted_event_ids.add(answer["event_id"])
            else:
                self.report.refusals.append((beat, response.status, str(answer.get("detail"))))
            return answer

    @staticmethod
    def event(kind: str, payload: dict[str, Any], client: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": kind,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "client": client,
            "payload": payload,
        }

    async def play(self) -> SessionReport:
        rng = random.Random(self.seed)  # noqa: S311 - a reproducible script, not a secret
        ids = [f"player-{n:03d}" for n in range(1, self.players + 1)]
        self.report.players = ids
        for index, player in enumerate(ids):
            client = CURRENT_CLIENT if index % 2 else ANDROID_CLIENT
            await self.send(
                "daily login",
                player,
                "/v1/events",
                self.event(
                    "daily_login",
                    {"streak_days": 1 + index % 7, "local_date": "2026-11-25"},
                    client,
                ),
            )
            for level in range(1, 4):
                await self.send(
                    "level completed",
                    player,
                    "/v1/events",
                    self.event(
                        "level_completed",
                        {
                            "level_id": f"w1-l{level}",
                            "stars": rng.randint(1, 3),
                            "duration_ms": rng.randint(30_000, 180_000),
                        },
                        client,
                    ),
                )
            outcome = rng.choice(["MATCH_OUTCOME_WIN", "MATCH_OUTCOME_LOSS"])
            await self.send(
                "match result",
                player,
                "/v1/events",
                self.event(
                    "match_result",
                    {
                        "match_id": f"m-{index}",
                        "mode": "arena",
                        "outcome": outcome,
                        "score": rng.randint(100, 5000),
                    },
                    client,
                ),
            )
            await self.send(
                "score submitted",
                player,
                "/v1/events",
                self.event(
                    "score_submitted",
                    {"leaderboard_id": self.board_id, "score": rng.randint(1_000, 90_000)},
                    client,
                ),
            )
        await self.shop(ids)
        await self.retried_requests(ids[:10])
        await self.outdated_and_newer_clients(ids[10:14])
        await self.hostile_requests(ids[0])
        return self.report

    async def shop(self, ids: list[str]) -> None:
        """Players spend the coins they just earned: an iron sword (500 coins) for six of them,
        which player 7 can always afford (a 7-day login streak alone pays 300, three levels at
        least 300 more); and a gem bundle (2,000 coins) that no one in this script can afford,
        so rewards refuses it as insufficient_balance. Each with an Idempotency-Key: a retried
        purchase must not buy twice."""
        orders = [(player, "iron-sword") for player in ids[2:8]] + [(ids[0], "gem-bundle")]
        for player, offer in orders:
            answer = await self.send(
                "shop purchase",
                player,
                "/v1/events",
                self.event("offer_bought", {"offer_id": offer}, CURRENT_CLIENT),
                idempotency_key=f"shop-{offer}-{uuid.uuid4()}",
            )
            if answer.get("event_id"):
                self.report.shop_requests += 1

    async def retried_requests(self, ids: list[str]) -> None:
        """A client timed out and sent the same request again, same Idempotency-Key."""
        for player in ids:
            key = f"retry-{uuid.uuid4()}"
            body = self.event("quest_completed", {"quest_id": "daily-quest"}, CURRENT_CLIENT)
            first = await self.send(
                "retried request", player, "/v1/events", body, idempotency_key=key
            )
            again = await self.send(
                "retried request", player, "/v1/events", body, idempotency_key=key
            )
            self.report.retried_total += 1
            if first.get("event_id") and first.get("event_id") == again.get("event_id"):
                self.report.retried_same_event_id += 1

    async def outdated_and_newer_clients(self, ids: list[str]) -> None:
        for player in ids:
            await self.send(
                "outdated client",
                player,
                "/v1/events",
                self.event("level_completed", {"level_id": "w1-l1"}, OUTDATED_CLIENT),
            )
        await self.send(
            "newer client, unknown event type",
            ids[0],
            "/v1/events",
            self.event(
                "season_pass_claimed",
                {"tier": 3},
                {**CURRENT_CLIENT, "app_version": "3.0.0", "schema_version": 2},
            ),
        )

    async def hostile_requests(self, player: str) -> None:
        body = self.event("level_completed", {"level_id": "w1-l1"}, CURRENT_CLIENT)
        await self.send("malformed JSON", player, "/v1/events", None, raw=b'{"type": "lev')
        await self.send(
            "wrong field type",
            player,
            "/v1/events",
            self.event("level_completed", {"level_id": "w1-l1", "stars": "three"}, CURRENT_CLIENT),
        )
        await self.send(
            "another player's token",
            "player-999",
            "/v1/events",
            {**body, "player_id": player},
            token=self.token("someone-else"),
        )
        await self.send(
            "forged token",
            player,
            "/v1/events",
            body,
            token=jwt.encode(
                {"sub": player, "exp": int(time.time()) + 60},
                "x" * 32 + "not-the-secret",
                algorithm="HS256",
            ),
        )
        await self.send(
            "oversized body",
            player,
            "/v1/events",
            None,
            raw=json.dumps({**body, "padding": "x" * 200_000}).encode(),
        )
