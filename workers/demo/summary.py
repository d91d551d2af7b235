"""What the demo prints at the end: one page of what happened, read from the real stores."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from topics.catalog import DATA_TOPICS, Topic
from topics.offsets import EndOffsetReader
from topics.settings import KafkaSettings
from workers.demo.checks import EXPECTED_REFUSALS, Observed, ShopStory, failed_checks
from workers.demo.players import SessionReport
from workers.demo.season import SeasonStory, season_lines
from workers.demo.stack import DemoStack
from workers.processors.leaderboards import reads
from workers.processors.leaderboards.definitions import load_definitions
from workers.processors.leaderboards.periods import period_at
from workers.processors.rewards.audit import find_mismatches, recent_grants


async def end_offsets(kafka: KafkaSettings, topics: list[Topic]) -> dict[str, int]:
    """Records per topic (the sum of its partitions' true ends: nothing is deleted in a demo)."""
    async with EndOffsetReader(kafka) as reader:
        partitions = [TopicPartition(t.name, p) for t in topics for p in range(t.partitions)]
        ends = await reader.read(partitions)
    totals: Counter[str] = Counter()
    for tp, offset in ends.items():
        totals[tp.topic] += offset
    return dict(totals)


async def wait_until_drained(stack: DemoStack, timeout_s: float = 90.0) -> bool:
    """True once every running processor has committed the end of each of its input topics."""
    kafka = stack.settings.kafka
    deadline = time.monotonic() + timeout_s
    async with EndOffsetReader(kafka) as reader:
        while time.monotonic() < deadline:
            if all(
                [
                    await _group_caught_up(kafka, reader, p.group.name, p.group.inputs)
                    for p in stack.worker.processors
                ]
            ):
                return True
            await asyncio.sleep(0.5)
    return False


async def _group_caught_up(
    kafka: KafkaSettings, reader: EndOffsetReader, group: str, inputs: tuple[Topic, ...]
) -> bool:
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(t.name, p) for t in inputs for p in range(t.partitions)]
        # True ends: the embedded broker's ListOffsets falls short and would call it drained early.
        ends = await reader.read(partitions)
        for tp in partitions:
            if ends[tp] and (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


def outcomes(stack: DemoStack) -> dict[str, dict[str, int]]:
    """Outcome and dead-letter counts per processor, from the worker's Prometheus registry."""
    registry = stack.context.metrics
    table: dict[str, dict[str, int]] = {}
    for processor in stack.worker.processors:
        counts = {
            kind: int(
                registry.get_sample_value(
                    "liveops_outcomes_total", {"processor": processor.name, "outcome": kind}
                )
                or 0
            )
            for kind in ("applied", "duplicate", "rejected", "retry", "failed")
        }
        counts["dead letters"] = int(
            sum(
                sample.value
                for metric in registry.collect()
                if metric.name == "liveops_dead_letters"
                for sample in metric.samples
                if sample.name.endswith("_total")
                and sample.labels.get("processor") == processor.name
            )
        )
        table[processor.name] = counts
    return table


async def render(
    stack: DemoStack,
    report: SessionReport,
    drained: bool,
    republished: int,
    story: SeasonStory,
    winners: int,
) -> tuple[str, Observed]:
    out: list[str] = ["", "=" * 78, "liveops demo: what happened", "=" * 78]
    accepted = report.statuses[202]
    out.append(
        f"Gateway: {sum(report.statuses.values())} requests, {accepted} accepted (202), "
        f"{len(report.refusals)} refused"
    )
    out.append(
        f"  retried requests (same Idempotency-Key): {report.retried_same_event_id} of "
        f"{report.retried_total} got the same event id back, published once"
    )
    for (beat, status, detail), times in Counter(report.refusals).items():
        out.append(f"  refused {status} x{times} {beat}: {detail[:80]}")
    counts = await end_offsets(stack.settings.kafka, list(DATA_TOPICS))
    out.append("Topics (records):")
    out += [f"  {name:28} {n}" for name, n in sorted(counts.items()) if n]
    out.append(
        f"Below the gateway: {republished} player.actions.v1 records published again "
        "(a producer retry after a lost ack) and 1 record of garbage bytes"
    )
    table = outcomes(stack)
    out.append("Workers (outcomes)" + ("" if drained else "  [NOT DRAINED within the deadline]"))
    for name, counts in table.items():
        out.append(f"  {name:13} " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    board_lines, board_players = await leaderboard_lines(stack)
    out += board_lines
    out += season_lines(story, winners)
    wallet_text, consistent, shop = await wallet_lines(stack)
    out += wallet_text
    observed = Observed(
        report=report,
        expected_accepted=sum(report.statuses.values()) - sum(EXPECTED_REFUSALS.values()),
        drained=drained,
        republished=republished,
        duplicates={n: c["duplicate"] for n, c in table.items()},
        dead_letters={n: c["dead letters"] for n, c in table.items()},
        applied={n: c["applied"] for n, c in table.items()},
        ledger_consistent=consistent,
        board_players=board_players,
        season=story,
        prize_winners=winners,
        shop=shop,
    )
    failures = failed_checks(observed)
    out.append("Checks: " + ("all passed" if not failures else f"{len(failures)} FAILED"))
    out += [f"  FAILED: {failure}" for failure in failures]
    out.append("=" * 78)
    return "\n".join(out), observed


async def leaderboard_lines(
    stack: DemoStack, board_id: str = "arena-weekly"
) -> tuple[list[str], int]:
    definitions = load_definitions(stack.settings.leaderboards.definitions_path)
    board = definitions.get(board_id)
    if board is None:
        return [f"Leaderboard {board_id}: not defined"], 0
    period = period_at(board, datetime.now(UTC))
    view = await reads.read_top(
        stack.context.redis,
        prefix=stack.settings.redis.key_prefix,
        board=board,
        period=period,
        limit=10,
    )
    resets = period.ends_at.isoformat() if period.ends_at else "never"
    lines = [
        f"Leaderboard {board.id}, period {period.key} (resets {resets}), "
        f"{view.total_players} players, top 10:"
    ]
    lines += [f"  {e.rank:>3}. {e.player_id:14} {e.score:>8}" for e in view.entries]
    return lines, view.total_players


async def wallet_lines(stack: DemoStack) -> tuple[list[str], bool, ShopStory]:
    lines = ["Rewards:"]
    async with stack.context.mysql.acquire() as conn:
        report = await find_mismatches(conn)
        async with conn.cursor() as cursor:
            await cursor.execute(
                "SELECT player_id, currency, balance FROM wallet_balances "
                "WHERE currency = 'coins' ORDER BY balance DESC, player_id LIMIT 5"
            )
            richest = await cursor.fetchall()
            grants = await recent_grants(cursor, limit=5)
            await cursor.execute(
                "SELECT COUNT(DISTINCT grant_id) FROM reward_ledger WHERE reason = 'offer_bought'"
            )
            (bought,) = await cursor.fetchone()
    refusals = {
        sample.labels["reason"]: int(sample.value)
        for metric in stack.context.metrics.collect()
        if metric.name == "liveops_rewards_refusals"
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    lines.append("  richest wallets (coins): " + ", ".join(f"{p} {b}" for p, _c, b in richest))
    lines.append(
        "  events that earned nothing, by reason: "
        + (", ".join(f"{reason} {n}" for reason, n in sorted(refusals.items())) or "none")
    )
    shop = ShopStory(bought=int(bought), refused=refusals.get("insufficient_balance", 0))
    lines.append(
        f"  shop: {shop.bought} offers bought (price debited, item granted), "
        f"{shop.refused} refused for insufficient balance"
    )
    lines.append("  most recent grants:")
    for created_at, row in grants:
        lines.append(
            f"    {created_at:%H:%M:%S} {row.player_id:12} {row.amount:+6} "
            f"{row.asset_id:8} rule {row.rule_id} v{row.rule_version}"
            + (f", campaign {row.campaign_id} v{row.campaign_version}" if row.campaign_id else "")
        )
    verdict = (
        f"consistent ({report.ledger_rows} ledger rows, {report.entries} wallet entries)"
        if report.consistent
        else f"{len(report.mismatches)} MISMATCHES"
    )
    lines.append(f"  ledger vs wallets (liveops rewards verify): {verdict}")
    return lines, report.consistent, shop
