"""The rewards processor against the real MySQL, through handle() and before_commit() directly.

Calling handle() again with the same events is exactly what a redelivery looks like once the
runtime's Redis dedup keys are gone: only the MySQL guard stands between it and a double grant.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomysql
import pytest
from prometheus_client import CollectorRegistry
from rewards_harness import (
    RULES,
    apply,
    execute,
    ledger_count,
    level_completed,
    match_won,
    mismatches_of,
    purchase,
    query,
    refund,
    started_processor,
    wallet,
)

from topics.catalog import REWARDS_GRANTED
from workers.db import MySQLTarget, create_pool
from workers.processors.rewards.grants import grant_id_for
from workers.runtime.processor import OutcomeKind

pytestmark = pytest.mark.integration


async def test_a_batch_writes_ledger_wallet_and_reward_granted_events(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    events = [match_won(unique_name), level_completed(unique_name)]

    outcomes = await apply(processor, events)

    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    assert await wallet(pool, unique_name) == {"coins": (110, 0), "key": (1, 0)}
    assert await ledger_count(pool, unique_name) == 3
    output = outcomes[0].outputs[0]
    granted = output.envelope.reward_granted
    assert output.topic is REWARDS_GRANTED
    assert output.envelope.event_id == grant_id_for(events[0].idempotency_key)
    assert output.envelope.received_at == events[0].received_at
    assert (granted.rule_id, granted.rule_version, granted.reason) == ("win", "1", "match_won")
    assert [(g.asset_id, g.amount) for g in granted.grants] == [("coins", 100)]
    assert granted.source_event_id == events[0].event_id
    assert await mismatches_of(pool, unique_name) == []


async def test_duplicates_within_and_across_batches_apply_once(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    first = level_completed(unique_name)
    again = level_completed(unique_name, key=first.idempotency_key)  # a client retry
    other = level_completed(unique_name)

    outcomes = await apply(processor, [first, again, other])
    redelivered = await apply(processor, [other, first])

    assert [o.kind for o in outcomes] == [
        OutcomeKind.APPLIED,
        OutcomeKind.DUPLICATE,
        OutcomeKind.APPLIED,
    ]
    assert [o.kind for o in redelivered] == [OutcomeKind.DUPLICATE, OutcomeKind.DUPLICATE]
    # The redelivery publishes the same RewardGranted again (same id), in case the first
    # delivery died before the broker acknowledged it; consumers dedup on the id.
    assert [o.outputs[0].envelope for o in redelivered] == [
        outcomes[2].outputs[0].envelope,
        outcomes[0].outputs[0].envelope,
    ]
    assert await wallet(pool, unique_name) == {"coins": (20, 0), "key": (2, 0)}
    assert await ledger_count(pool, unique_name) == 4


async def test_daily_caps_record_the_event_as_capped_and_persist(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    registry = CollectorRegistry()
    processor = await started_processor(pool, tmp_path, metrics=registry)

    outcomes = await apply(processor, [match_won(unique_name) for _ in range(3)])
    later = await apply(processor, [match_won(unique_name)])

    kinds = [o.kind for o in (*outcomes, *later)]
    assert kinds == [OutcomeKind.APPLIED] * 2 + [OutcomeKind.REJECTED] * 2
    assert later[0].reason == "capped: match_won cap of 2/day reached on 2026-11-25"
    assert await wallet(pool, unique_name) == {"coins": (200, 0)}
    refusals = await query(
        pool, "SELECT reason, rule_id FROM reward_refusals WHERE player_id = %s", unique_name
    )
    assert refusals == [("capped", "win"), ("capped", "win")]
    refused = registry.get_sample_value("liveops_rewards_refusals_total", {"reason": "capped"})
    granted = registry.get_sample_value("liveops_rewards_grants_total", {"reason": "match_won"})
    assert (refused, granted) == (2, 2)


async def test_a_refund_claws_back_exactly_the_purchase_grants(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    bought = purchase(unique_name, f"{unique_name}-t1")
    await apply(processor, [bought, match_won(unique_name)])

    outcomes = await apply(processor, [refund(unique_name, f"{unique_name}-t1")])
    twice = await apply(processor, [refund(unique_name, f"{unique_name}-t1")])

    assert outcomes[0].kind is OutcomeKind.APPLIED
    clawed = outcomes[0].outputs[0].envelope.reward_granted
    assert clawed.reverses_grant_id == grant_id_for(bought.idempotency_key)
    assert [(g.asset_id, g.amount) for g in clawed.grants] == [("gems", -500), ("sword", -1)]
    assert await wallet(pool, unique_name) == {"coins": (100, 0), "gems": (0, 0), "sword": (0, 0)}
    assert twice[0].kind is OutcomeKind.REJECTED
    assert twice[0].reason.startswith("already_clawed_back")
    assert await mismatches_of(pool, unique_name) == []


async def test_a_claw_back_of_spent_gems_is_debt_or_refused_per_policy(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    debt_player, strict_player = f"{unique_name}-d", f"{unique_name}-s"
    for player, policy in ((debt_player, "debt"), (strict_player, "reject")):
        processor = await started_processor(pool, tmp_path, policy=policy)  # type: ignore[arg-type]  # literal per loop
        await apply(processor, [purchase(player, f"{player}-t")])
        # The player spends 400 gems elsewhere: a correcting ledger row keeps verify happy.
        await execute(
            pool,
            "INSERT INTO reward_ledger (grant_id, player_id, asset_kind, asset_id, amount, reason,"
            " source, idempotency_key, source_event_id) VALUES (%s, %s, 'currency', 'gems',"
            " -400, 'spend', 'shop', %s, %s)",
            "spend",
            player,
            f"{player}-spend",
            "e",
        )
        await execute(pool, "UPDATE wallet_balances SET net = 100 WHERE player_id = %s", player)
        outcomes = await apply(processor, [refund(player, f"{player}-t")])
        assert outcomes[0].kind is (
            OutcomeKind.APPLIED if policy == "debt" else OutcomeKind.REJECTED
        )

    assert await wallet(pool, debt_player) == {"gems": (0, 400), "sword": (0, 0)}
    # Later grants pay the debt back first.
    debt_processor = await started_processor(pool, tmp_path)
    await apply(debt_processor, [purchase(debt_player, f"{debt_player}-t2")])
    assert await wallet(pool, debt_player) == {"gems": (100, 0), "sword": (1, 0)}
    assert await wallet(pool, strict_player) == {"gems": (100, 0), "sword": (1, 0)}
    reasons = await query(
        pool, "SELECT reason FROM reward_refusals WHERE player_id = %s", strict_player
    )
    assert reasons == [("insufficient_balance",)]
    assert await mismatches_of(pool, debt_player) == []
    assert await mismatches_of(pool, strict_player) == []


async def test_reject_policy_sees_the_balance_when_a_purchase_is_refunded_in_its_batch(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path, policy="reject")
    await apply(processor, [purchase(unique_name, f"{unique_name}-old")])

    outcomes = await apply(
        processor,
        [purchase(unique_name, f"{unique_name}-new"), refund(unique_name, f"{unique_name}-new")],
    )

    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    assert await wallet(pool, unique_name) == {"gems": (500, 0), "sword": (1, 0)}


async def test_a_refund_before_its_purchase_is_retried_then_applied(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    early = refund(unique_name, f"{unique_name}-t")
    copy = refund(unique_name, f"{unique_name}-t", key=early.idempotency_key)

    first = await apply(processor, [early, copy])
    await apply(processor, [purchase(unique_name, f"{unique_name}-t")])
    retried = await apply(processor, [early])  # back from the retry topic, same key

    # The copy shares the original's fate: marked done, it would hide the retried original.
    assert [o.kind for o in first] == [OutcomeKind.RETRY, OutcomeKind.RETRY]
    assert retried[0].kind is OutcomeKind.APPLIED
    assert await wallet(pool, unique_name) == {"gems": (0, 0), "sword": (0, 0)}


async def test_a_purchase_without_a_rule_fails_and_is_replayable_after_a_fix(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    event = purchase(unique_name, f"{unique_name}-t", product_id="new-pack")

    failed = await apply(processor, [event])
    fixed = RULES.replace('product_id = "pack"', 'product_id = "new-pack"').replace(
        "version = 3", "version = 4"
    )
    (tmp_path / "rules.toml").write_text(fixed, encoding="utf-8")
    replayed = await apply(processor, [event])  # replayed from the dead letters

    assert failed[0].kind is OutcomeKind.FAILED
    assert "no rule for paid purchase_fulfilled(product_id='new-pack')" in failed[0].reason
    assert replayed[0].kind is OutcomeKind.APPLIED
    assert replayed[0].outputs[0].envelope.reward_granted.rule_version == "4"


async def test_campaigns_use_segments_and_tell_old_clients_why(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    await execute(
        pool, "INSERT INTO player_segments (player_id, segment) VALUES (%s, 'vip')", unique_name
    )
    outsider = f"{unique_name}-x"

    vip, old, other = await apply(
        processor,
        [
            level_completed(unique_name),
            level_completed(unique_name, app_version="2.13.0"),
            level_completed(outsider),
        ],
    )

    boosted = vip.outputs[0].envelope.reward_granted
    assert (boosted.campaign_id, boosted.campaign_version) == ("vip-double", "2")
    assert [(g.asset_id, g.amount) for g in boosted.grants] == [("coins", 20), ("key", 2)]
    assert old.kind is OutcomeKind.APPLIED
    assert (
        old.reason == "campaign skipped: campaign vip-double: needs app >= 2.14, client has 2.13.0"
    )
    assert old.outputs[0].envelope.reward_granted.campaign_missed.startswith("campaign vip-double")
    assert other.outputs[0].envelope.reward_granted.campaign_id == ""
    rows = await query(
        pool,
        "SELECT DISTINCT campaign_id, campaign_version FROM reward_ledger WHERE player_id = %s",
        unique_name,
    )
    assert sorted(rows, key=str) == sorted([("vip-double", 2), (None, None)], key=str)


async def test_a_bad_rules_edit_keeps_the_old_rules(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    (tmp_path / "rules.toml").write_text("[[rules]]\nid = 1", encoding="utf-8")

    outcomes = await apply(processor, [match_won(unique_name)])

    assert outcomes[0].kind is OutcomeKind.APPLIED
    assert outcomes[0].outputs[0].envelope.reward_granted.rule_id == "win"


async def test_many_players_in_one_batch_stay_consistent(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    players = [f"{unique_name}-{i}" for i in range(20)]
    batch = [level_completed(player) for player in players for _ in range(10)]

    outcomes = await apply(processor, batch)

    assert all(o.kind is OutcomeKind.APPLIED for o in outcomes)
    assert await wallet(pool, players[7]) == {"coins": (100, 0), "key": (10, 0)}
    for player in players:
        assert await mismatches_of(pool, player) == []


async def test_concurrent_batches_of_the_same_players_lose_nothing(
    mysql_target: MySQLTarget, tmp_path: Path, unique_name: str
) -> None:
    # Given: four connections, as the input loop, the retry loop and a second worker would use.
    wide = await create_pool(mysql_target, maxsize=4)
    try:
        processor = await started_processor(wide, tmp_path)
        players = [f"{unique_name}-{i}" for i in range(5)]
        batches = [[level_completed(p) for p in players for _ in range(5)] for _ in range(4)]

        # When: they commit at the same time.
        results = await asyncio.gather(*(apply(processor, batch) for batch in batches))

        # Then: every grant counts once; read committed + relative updates lost none.
        assert all(o.kind is OutcomeKind.APPLIED for outcomes in results for o in outcomes)
        for player in players:
            assert await wallet(wide, player) == {"coins": (200, 0), "key": (20, 0)}
            assert await mismatches_of(wide, player) == []
    finally:
        wide.close()
        await wide.wait_closed()


async def test_quotes_backslashes_and_unicode_in_ids_are_stored_verbatim(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor = await started_processor(pool, tmp_path)
    player = f"{unique_name[-8:]}-o'b\\\\x\"; DROP TABLE t; -- 🎮"  # within 64 chars
    event = level_completed(player, key=f"{unique_name}-%s-'\\\\'-ключ")

    outcomes = await apply(processor, [event])
    again = await apply(processor, [event])

    assert [outcomes[0].kind, again[0].kind] == [OutcomeKind.APPLIED, OutcomeKind.DUPLICATE]
    assert await wallet(pool, player) == {"coins": (10, 0), "key": (1, 0)}
    stored = await query(
        pool, "SELECT idempotency_key FROM reward_ledger WHERE player_id = %s", player
    )
    assert {row[0] for row in stored} == {event.idempotency_key}
