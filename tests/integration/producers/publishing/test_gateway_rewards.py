"""From the gateway to the rewards ledger: a client-chosen Idempotency-Key dedups one player's
retries, never another player's event; a shop offer a client buys is spent once.

The events the gateway published are read back from the real broker and handed to a real
rewards processor on the real MySQL, in one batch, as the runtime hands them over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiomysql
import pytest
from aiokafka import TopicPartition

from producers.gateway.idempotency import KEY_NAMESPACE
from schemas.codec import decode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import PLAYER_ACTIONS
from workers.db import MySQLTarget, create_pool
from workers.processors.rewards.processor import RewardsProcessor
from workers.processors.rewards.settings import RewardsSettings
from workers.runtime.processor import Outcome, OutcomeKind

from .harness import GatewayHarness, TopicProbe, bearer, level_completed

pytestmark = pytest.mark.integration

RULES = """
[[rules]]
id = "level"
version = 1
action = "level_completed"
grants = [{ asset = "coins", amount = 10 }]
"""
#: Predictable, as real clients' keys often are: the level the player just finished.
CLIENT_KEY = "level-w1-l3"


@pytest.fixture
async def pool(mysql_target: MySQLTarget) -> AsyncIterator[aiomysql.Pool]:
    created = await create_pool(mysql_target, maxsize=2)
    yield created
    created.close()
    await created.wait_closed()


@pytest.fixture
async def rewards(pool: aiomysql.Pool, tmp_path: Path) -> AsyncIterator[RewardsProcessor]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    processor = RewardsProcessor(pool, RewardsSettings(rules_path=rules, reload_interval_s=0))
    await processor.start()
    yield processor
    await processor.stop()


async def post_level(gateway: GatewayHarness, player_id: str) -> str:
    """The event id of the player's level_completed, sent with CLIENT_KEY."""
    response = await gateway.client.post(
        "/v1/events",
        json=level_completed(),
        headers={**bearer(player_id), "Idempotency-Key": CLIENT_KEY},
    )
    assert response.status == 202
    event_id: str = (await response.json())["event_id"]
    return event_id


async def published(
    probe: TopicProbe, since: dict[TopicPartition, int], player_id: str, event_id: str
) -> Envelope:
    """The event the gateway answered with `event_id`, read back from the topic."""
    records = await probe.records_of(PLAYER_ACTIONS, player_id, since)
    (found,) = [e for e in (decode(r.value) for r in records if r.value) if e.event_id == event_id]
    return found


async def handled(processor: RewardsProcessor, batch: Sequence[Envelope]) -> list[Outcome]:
    """handle(), then before_commit(), as the runtime calls them: durable once it returns."""
    outcomes = list(await processor.handle(batch))
    await processor.before_commit()
    return outcomes


async def coins_of(pool: aiomysql.Pool, player_id: str) -> int:
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT balance FROM wallet_balances WHERE player_id = %s AND currency = 'coins'",
            (player_id,),
        )
        rows = await cursor.fetchall()
        await conn.rollback()
    return sum(int(row[0]) for row in rows)


async def test_two_players_sending_the_same_key_both_get_their_reward(
    gateway: GatewayHarness, probe: TopicProbe, rewards: RewardsProcessor, pool: aiomysql.Pool
) -> None:
    # Given two players whose clients send the same Idempotency-Key
    players = (gateway.player_id, gateway.player_id + "-b")
    since = await probe.end_offsets()

    # When both finish the level and the rewards processor gets both events in one batch
    event_ids = [await post_level(gateway, player) for player in players]
    batch = [
        await published(probe, since, player, event_id)
        for player, event_id in zip(players, event_ids, strict=True)
    ]
    outcomes = await handled(rewards, batch)

    # Then each is applied, each player is paid, and each RewardGranted names its own player
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    assert [await coins_of(pool, player) for player in players] == [10, 10]
    granted = [o.outputs[0].envelope for o in outcomes]
    assert [g.player_id for g in granted] == list(players)
    assert granted[0].event_id != granted[1].event_id


async def test_a_retry_after_the_gateway_forgot_the_key_is_still_granted_once(
    gateway: GatewayHarness, probe: TopicProbe, rewards: RewardsProcessor, pool: aiomysql.Pool
) -> None:
    # Given a level already rewarded
    player = gateway.player_id
    since = await probe.end_offsets()
    first = await published(probe, since, player, await post_level(gateway, player))
    assert [o.kind for o in await handled(rewards, [first])] == [OutcomeKind.APPLIED]

    # When the gateway's idempotency record has expired and the client retries
    async for key in gateway.redis.scan_iter(match=f"{gateway.player_id}:{KEY_NAMESPACE}:*"):
        await gateway.redis.delete(key)
    retry = await published(probe, since, player, await post_level(gateway, player))

    # Then the gateway publishes it again, as a new event, but the ledger knows its key
    assert retry.event_id != first.event_id
    assert retry.idempotency_key == first.idempotency_key
    assert [o.kind for o in await handled(rewards, [retry])] == [OutcomeKind.DUPLICATE]
    assert await coins_of(pool, player) == 10


SHOP_RULES = """
[[rules]]
id = "offer-sword"
version = 1
action = "offer_bought"
when = { offer_id = "iron-sword" }
costs = [{ asset = "coins", amount = 10 }]
grants = [{ asset = "iron-sword", kind = "item", amount = 1 }]
"""


async def test_a_shop_offer_bought_through_the_gateway_spends_once(
    gateway: GatewayHarness,
    probe: TopicProbe,
    rewards: RewardsProcessor,
    pool: aiomysql.Pool,
    tmp_path: Path,
) -> None:
    # Given a player with 10 coins, and the offer's price in the rules file
    player = gateway.player_id
    since = await probe.end_offsets()
    earned = await published(probe, since, player, await post_level(gateway, player))
    (tmp_path / "rules.toml").write_text(RULES + SHOP_RULES, encoding="utf-8")
    await rewards.reload_rules(force=True)

    # When the client posts offer_bought (naming the offer only), retries it, and Kafka
    # redelivers it
    offer = {**level_completed(), "type": "offer_bought", "payload": {"offer_id": "iron-sword"}}
    headers = {**bearer(player), "Idempotency-Key": "buy-iron-sword-1"}
    answers = []
    for _ in range(2):
        response = await gateway.client.post("/v1/events", json=offer, headers=headers)
        assert response.status == 202
        answers.append(await response.json())
    bought = await published(probe, since, player, answers[0]["event_id"])
    outcomes = await handled(rewards, [earned, bought])
    redelivered = await handled(rewards, [bought])

    # Then the gateway published it once, to the player's actions, and the price is debited
    # and the sword granted once
    assert answers[0] == answers[1]
    assert answers[0]["topic"] == PLAYER_ACTIONS.name
    assert bought.offer_bought.offer_id == "iron-sword"
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    spent = outcomes[1].outputs[0].envelope.reward_granted
    assert [(g.asset_id, g.amount) for g in spent.grants] == [("coins", -10), ("iron-sword", 1)]
    assert [o.kind for o in redelivered] == [OutcomeKind.DUPLICATE]
    assert await coins_of(pool, player) == 0
