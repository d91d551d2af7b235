"""The gateway's HTTP surface with a fake publisher: problems, probes, metrics, extra routes.

Only requests without an Idempotency-Key are sent here, so Redis is never reached; the
integration tests cover the idempotency store and the real broker.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from producers.errors import PublishError
from producers.gateway import create_app, player_id_of
from producers.gateway.problems import PROBLEM_CONTENT_TYPE
from producers.publisher import Delivery
from producers.settings import GatewaySettings
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import Topic

SECRET = "unit-test-secret-of-at-least-32-bytes"
SETTINGS = GatewaySettings(jwt_secret=SecretStr(SECRET), publish_retry_after_s=7)
EVENT = {
    "type": "daily_login",
    "occurred_at": "2026-11-25T08:00:00Z",
    "client": {"platform": "android"},
    "payload": {"streak_days": 3, "local_date": "2026-11-25"},
}


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[tuple[Topic, Envelope]] = []
        self.error: Exception | None = None
        self.ready = True

    async def publish(self, topic: Topic, envelope: Envelope) -> Delivery:
        if self.error is not None:
            raise self.error
        self.published.append((topic, envelope))
        return Delivery(0, len(self.published) - 1)

    async def ping(self) -> bool:
        return self.ready


def auth(player: str = "player-1") -> dict[str, str]:
    claims = {"sub": player, "exp": int(time.time()) + 60}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"}


MakeClient = Callable[..., Any]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[web.Request, web.Application]] = []
    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")

    async def make(
        publisher: FakePublisher, extra_routes: Sequence[web.RouteDef] = ()
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(SETTINGS, publisher, redis, CollectorRegistry(), extra_routes=extra_routes)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    await redis.aclose()


async def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    problem: dict[str, Any] = await response.json(content_type=PROBLEM_CONTENT_TYPE)
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == status
    return problem


async def test_an_accepted_event_is_published_and_answered_202(make_client: MakeClient) -> None:
    publisher = FakePublisher()
    client = await make_client(publisher)

    response = await client.post("/v1/events", json=EVENT, headers=auth())

    assert response.status == 202
    answer = await response.json()
    topic, envelope = publisher.published[0]
    assert answer == {
        "event_id": envelope.event_id,
        "idempotency_key": envelope.event_id,
        "topic": topic.name,
    }
    assert envelope.player_id == "player-1"


async def test_no_token_is_a_401_problem_and_nothing_is_published(make_client: MakeClient) -> None:
    publisher = FakePublisher()
    client = await make_client(publisher)

    response = await client.post("/v1/events", json=EVENT)

    problem = await problem_of(response, 401)
    assert problem["detail"] == "the Authorization header is missing"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert publisher.published == []


async def test_unknown_path_and_wrong_method_are_problems(make_client: MakeClient) -> None:
    client = await make_client(FakePublisher())

    assert (await problem_of(await client.get("/v1/nowhere", headers=auth()), 404))["title"]
    wrong_method = await client.get("/v1/events", headers=auth())
    await problem_of(wrong_method, 405)
    assert "POST" in wrong_method.headers["Allow"]


async def test_a_publish_failure_is_503_with_retry_after(make_client: MakeClient) -> None:
    publisher = FakePublisher()
    publisher.error = PublishError("player.actions.v1: no acknowledgement")
    client = await make_client(publisher)

    response = await client.post("/v1/events", json=EVENT, headers=auth())

    problem = await problem_of(response, 503)
    assert response.headers["Retry-After"] == "7"
    assert "player.actions.v1" in problem["detail"]


async def test_probes_need_no_token_and_readyz_follows_the_broker(make_client: MakeClient) -> None:
    publisher = FakePublisher()
    client = await make_client(publisher)
    assert (await client.get("/healthz")).status == 200

    publisher.ready = False
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["kafka"] is False


async def test_metrics_count_requests_by_route_and_status(make_client: MakeClient) -> None:
    client = await make_client(FakePublisher())
    await client.post("/v1/events", json=EVENT, headers=auth())
    await client.post("/v1/events", json=EVENT)
    await client.get("/made/up/path")

    text = await (await client.get("/metrics")).text()

    assert 'route="/v1/events",status="202"' in text
    assert 'route="/v1/events",status="401"' in text
    assert 'route="unmatched",status="401"' in text
    assert "liveops_gateway_publish_seconds_count" in text


async def test_extra_routes_sit_behind_the_token_check(make_client: MakeClient) -> None:
    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"player": player_id_of(request)})

    client = await make_client(FakePublisher(), [web.get("/v1/leaderboards/me", whoami)])

    assert (await client.get("/v1/leaderboards/me")).status == 401
    response = await client.get("/v1/leaderboards/me", headers=auth("player-9"))
    assert await response.json() == {"player": "player-9"}


async def test_extra_routes_must_be_read_only() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    with pytest.raises(ValueError, match="not read-only"):
        create_app(
            SETTINGS,
            FakePublisher(),
            redis,
            CollectorRegistry(),
            extra_routes=[web.post("/x", handler)],
        )
    await redis.aclose()


async def test_a_bug_in_a_handler_still_answers_a_problem(make_client: MakeClient) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    client = await make_client(FakePublisher(), [web.get("/v1/broken", broken)])

    problem = await problem_of(await client.get("/v1/broken", headers=auth()), 500)
    assert "boom" not in problem["detail"]


async def test_json_errors_of_added_routes_become_problems(make_client: MakeClient) -> None:
    async def unknown_board(request: web.Request) -> web.Response:
        raise web.HTTPNotFound(
            text='{"error": "unknown leaderboard"}', content_type="application/json"
        )

    client = await make_client(FakePublisher(), [web.get("/v1/leaderboards/{id}", unknown_board)])

    problem = await problem_of(await client.get("/v1/leaderboards/x", headers=auth()), 404)
    assert problem["detail"] == "unknown leaderboard"


async def test_a_chunked_body_over_the_limit_is_413_without_publishing(
    make_client: MakeClient,
) -> None:
    publisher = FakePublisher()
    client = await make_client(publisher)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(SETTINGS.max_body_bytes // 1024 + 2):
            yield b" " * 1024

    response = await client.post(
        "/v1/events", data=chunks(), headers={**auth(), "Content-Type": "application/json"}
    )

    problem = await problem_of(response, 413)
    assert str(SETTINGS.max_body_bytes) in problem["detail"]
    assert publisher.published == []
