"""Helpers of the rewards integration tests: envelopes, a processor on a rules file of the
test's own, and plain reads of the real MySQL tables.

A plain module rather than a conftest: a second `conftest` module clashes with
tests/conftest.py for mypy.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiomysql
from google.protobuf.message import Message
from prometheus_client import CollectorRegistry

from schemas.liveops.v1 import actions_pb2, purchases_pb2
from schemas.liveops.v1.envelope_pb2 import ClientInfo, Envelope, Platform
from topics.catalog import ConsumerGroup
from workers.processors.rewards.audit import find_mismatches
from workers.processors.rewards.processor import RewardsProcessor
from workers.processors.rewards.settings import NegativeBalancePolicy, RewardsSettings
from workers.runtime.processor import Outcome

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

RULES = """
[caps]
match_won = 2

[[rules]]
id = "win"
version = 1
action = "match_won"
grants = [{ asset = "coins", amount = 100 }]

[[rules]]
id = "level"
version = 1
action = "level_completed"
grants = [{ asset = "coins", amount = 10 }, { asset = "key", kind = "item", amount = 1 }]

[[rules]]
id = "pack"
version = 3
action = "purchase_fulfilled"
when = { product_id = "pack" }
grants = [{ asset = "gems", amount = 500 }, { asset = "sword", kind = "item", amount = 1 }]

[[campaigns]]
id = "vip-double"
version = 2
starts_at = 2026-11-25T00:00:00Z
ends_at = 2026-11-26T00:00:00Z
actions = ["level_completed"]
multiplier = 2
audience = { segments = ["vip"], min_app_version = "2.14" }
"""


def envelope(
    payload: str,
    message: Message,
    player_id: str,
    *,
    key: str | None = None,
    app_version: str = "2.14.0",
) -> Envelope:
    event_id = uuid.uuid4().hex
    built = Envelope(
        event_id=event_id,
        idempotency_key=key or f"{player_id}-{event_id}",
        player_id=player_id,
        client=ClientInfo(platform=Platform.PLATFORM_ANDROID, app_version=app_version),
    )
    built.received_at.FromDatetime(NOW)
    getattr(built, payload).CopyFrom(message)
    return built


def match_won(player_id: str, **options: str) -> Envelope:
    won = actions_pb2.MatchResult(match_id="m", outcome=actions_pb2.MATCH_OUTCOME_WIN)
    return envelope("match_result", won, player_id, **options)


def level_completed(player_id: str, **options: str) -> Envelope:
    level = actions_pb2.LevelCompleted(level_id="1-1", stars=2)
    return envelope("level_completed", level, player_id, **options)


def offer_bought(player_id: str, offer_id: str, *, key: str | None = None) -> Envelope:
    return envelope("offer_bought", actions_pb2.OfferBought(offer_id=offer_id), player_id, key=key)


def purchase(player_id: str, transaction_id: str, product_id: str = "pack") -> Envelope:
    verified = purchases_pb2.PurchaseVerified(
        store=purchases_pb2.STORE_APPLE, product_id=product_id, transaction_id=transaction_id
    )
    return envelope("purchase_verified", verified, player_id)


def refund(player_id: str, transaction_id: str, *, key: str | None = None) -> Envelope:
    refunded = purchases_pb2.PurchaseRefunded(
        store=purchases_pb2.STORE_APPLE, transaction_id=transaction_id
    )
    return envelope("purchase_refunded", refunded, player_id, key=key)


async def started_processor(
    pool: aiomysql.Pool,
    rules_dir: Path,
    *,
    rules: str = RULES,
    policy: NegativeBalancePolicy = "debt",
    spend_policy: NegativeBalancePolicy = "reject",
    group: ConsumerGroup | None = None,
    metrics: CollectorRegistry | None = None,
    dedup: Literal["runtime", "processor"] = "processor",
) -> RewardsProcessor:
    """A started processor on `rules`; with `group`, consuming that group instead (runtime
    tests use a group and topics of their own)."""
    path = rules_dir / "rules.toml"
    path.write_text(rules, encoding="utf-8")
    settings = RewardsSettings(
        rules_path=path,
        reload_interval_s=0,
        negative_balance=policy,
        spend_negative_balance=spend_policy,
        dedup=dedup,
    )
    kind: type[RewardsProcessor] = RewardsProcessor
    if group is not None:
        chosen = group

        class GroupRewards(RewardsProcessor):
            group = chosen

        kind = GroupRewards
    processor = kind(pool, settings, metrics=metrics)
    await processor.start()
    return processor


async def apply(processor: RewardsProcessor, batch: Sequence[Envelope]) -> list[Outcome]:
    """handle(), then before_commit(), as the runtime calls them: the batch's transaction
    commits in the background (processor.py), and is durable once before_commit() returns."""
    outcomes = await processor.handle(batch)
    await processor.before_commit()
    return list(outcomes)


async def query(pool: aiomysql.Pool, sql: str, *params: object) -> list[tuple[object, ...]]:
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(sql, params)
        rows = list(await cursor.fetchall())
        await conn.rollback()
    return rows


async def wallet(pool: aiomysql.Pool, player_id: str) -> dict[str, tuple[int, int]]:
    """asset -> (amount, debt) over currencies and items."""
    rows = await query(
        pool,
        "SELECT currency, balance, debt FROM wallet_balances WHERE player_id = %s "
        "UNION ALL SELECT item_id, quantity, debt FROM inventory_items WHERE player_id = %s",
        player_id,
        player_id,
    )
    return {str(asset): (int(str(have)), int(str(debt))) for asset, have, debt in rows}


async def ledger_count(pool: aiomysql.Pool, player_id: str) -> int:
    rows = await query(pool, "SELECT COUNT(*) FROM reward_ledger WHERE player_id = %s", player_id)
    return int(str(rows[0][0]))


async def execute(pool: aiomysql.Pool, sql: str, *params: object) -> None:
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(sql, params)
        await conn.commit()


async def mismatches_of(pool: aiomysql.Pool, player_id: str) -> list[str]:
    """What `liveops rewards verify` reports for this player (find_mismatches is its heart)."""
    async with pool.acquire() as conn:
        report = await find_mismatches(conn)
    return [m.describe() for m in report.mismatches if m.player_id == player_id]
