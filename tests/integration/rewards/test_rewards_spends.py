"""Shop spends against the real MySQL, through the real processor: the price and the item are
one ledger write, a price above the balance is refused (or becomes debt) per policy, a
redelivered spend is not paid twice, and two workers cannot spend the same coins."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiomysql
import pytest
from rewards_harness import (
    RULES,
    apply,
    ledger_count,
    match_won,
    mismatches_of,
    offer_bought,
    query,
    started_processor,
    wallet,
)

from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.errors import TransientError
from workers.processors.rewards.grants import grant_id_for
from workers.processors.rewards.processor import RewardsProcessor
from workers.runtime.failures import classify
from workers.runtime.processor import Outcome, OutcomeKind

pytestmark = pytest.mark.integration

#: Two match wins earn 200 coins; the sword costs 150 of them.
SHOP_RULES = (
    RULES
    + """
[[rules]]
id = "offer-sword"
version = 2
action = "offer_bought"
when = { offer_id = "sword" }
costs = [{ asset = "coins", amount = 150 }]
grants = [{ asset = "iron-sword", kind = "item", amount = 1 }]
"""
)


async def test_a_spend_debits_the_price_and_grants_the_item_once_and_never_overdraws(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    # Given a player with 200 coins, under the reject policy
    processor = await started_processor(pool, tmp_path, rules=SHOP_RULES, spend_policy="reject")
    await apply(processor, [match_won(unique_name), match_won(unique_name)])
    assert await wallet(pool, unique_name) == {"coins": (200, 0)}

    # When the player buys the sword, then tries again with 50 coins left
    spend = offer_bought(unique_name, "sword")
    outcomes = await apply(processor, [spend])
    over = await apply(processor, [offer_bought(unique_name, "sword")])

    # Then the first is one grant of the price and the item, the second is refused whole
    assert outcomes[0].kind is OutcomeKind.APPLIED
    granted = outcomes[0].outputs[0].envelope
    assert granted.event_id == grant_id_for(spend.idempotency_key)
    message = granted.reward_granted
    assert [(g.asset_id, g.amount) for g in message.grants] == [
        ("coins", -150),
        ("iron-sword", 1),
    ]
    assert (message.reason, message.rule_id, message.rule_version) == (
        "offer_bought",
        "offer-sword",
        "2",
    )
    assert over[0].kind is OutcomeKind.REJECTED
    assert over[0].reason == (
        "insufficient_balance: offer sword (rule offer-sword v2) costs more than the balance "
        "(coins: balance 50, price 150)"
    )
    assert await wallet(pool, unique_name) == {"coins": (50, 0), "iron-sword": (1, 0)}
    refusals = await query(
        pool,
        "SELECT reason, rule_id, rule_version FROM reward_refusals WHERE player_id = %s",
        unique_name,
    )
    assert refusals == [("insufficient_balance", "offer-sword", 2)]
    rows = await query(
        pool,
        "SELECT grant_id, asset_id, amount FROM reward_ledger "
        "WHERE player_id = %s AND reason = 'offer_bought' ORDER BY id",
        unique_name,
    )
    assert rows == [
        (grant_id_for(spend.idempotency_key), "coins", -150),
        (grant_id_for(spend.idempotency_key), "iron-sword", 1),
    ]

    # And a redelivered spend is a duplicate: not paid twice, its RewardGranted published again
    again = await apply(processor, [spend, spend])
    assert [o.kind for o in again] == [OutcomeKind.DUPLICATE, OutcomeKind.DUPLICATE]
    assert again[0].outputs[0].envelope == granted
    assert await wallet(pool, unique_name) == {"coins": (50, 0), "iron-sword": (1, 0)}
    assert await ledger_count(pool, unique_name) == 4
    assert await mismatches_of(pool, unique_name) == []


async def test_an_unknown_offer_costs_nothing(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path, rules=SHOP_RULES, spend_policy="reject")

    outcomes = await apply(processor, [offer_bought(unique_name, "shield")])

    assert outcomes[0].kind is OutcomeKind.REJECTED
    assert outcomes[0].reason == "no_rule: no rule for offer_bought(offer_id='shield')"
    assert await wallet(pool, unique_name) == {}


async def test_under_the_debt_policy_a_spend_above_the_balance_becomes_debt(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path, rules=SHOP_RULES, spend_policy="debt")

    outcomes = await apply(processor, [offer_bought(unique_name, "sword")])

    assert outcomes[0].kind is OutcomeKind.APPLIED
    assert await wallet(pool, unique_name) == {"coins": (0, 150), "iron-sword": (1, 0)}
    assert await mismatches_of(pool, unique_name) == []


async def test_two_workers_cannot_spend_the_same_coins(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    # Given 200 coins, enough for one sword, and two workers (no Redis lease in front)
    first = await started_processor(pool, tmp_path, rules=SHOP_RULES, spend_policy="reject")
    second = await started_processor(pool, tmp_path, rules=SHOP_RULES, spend_policy="reject")
    await apply(first, [match_won(unique_name), match_won(unique_name)])

    # When each handles a spend of the player while a third transaction holds the wallet row,
    # so that both have read the balance before either can write (were the read not locking)
    async with pool.acquire() as blocker, blocker.cursor() as cursor:
        await cursor.execute(
            "SELECT net FROM wallet_balances WHERE player_id = %s FOR UPDATE", (unique_name,)
        )
        spends = [
            asyncio.ensure_future(handle_retrying(worker, [offer_bought(unique_name, "sword")]))
            for worker in (first, second)
        ]
        await asyncio.sleep(0.3)
        await blocker.rollback()
    results = await asyncio.gather(*spends)

    # Then the second to lock the wallet saw the first's debit and refused
    kinds = sorted(outcomes[0].kind for outcomes in results)
    assert kinds == sorted([OutcomeKind.APPLIED, OutcomeKind.REJECTED])
    assert await wallet(pool, unique_name) == {"coins": (50, 0), "iron-sword": (1, 0)}
    assert await mismatches_of(pool, unique_name) == []


async def handle_retrying(processor: RewardsProcessor, batch: Sequence[Envelope]) -> list[Outcome]:
    """apply(), retrying as the runtime does when MySQL reports a race (lock wait, deadlock)."""
    for _ in range(50):
        try:
            return await apply(processor, batch)
        except Exception as exc:  # sorted as the runtime sorts it
            if not isinstance(classify(exc), TransientError):
                raise
            await asyncio.sleep(0.02)
    raise AssertionError("still racing after 50 attempts")
