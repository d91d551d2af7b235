"""The fault harness itself: plans say what they send, the checker sees every loss and double."""

from __future__ import annotations

from collections import Counter

import pytest
import redis

from schemas.codec import decode, decode_valid, validate
from schemas.errors import ContractError
from workers.runtime import headers

from .broker import ConsumedRecord
from .checker import ProbeState, discrepancies
from .events import MARKER_HEADER, EventPlan, GarbageKind, Record, build_plan
from .leaderboards_check import (
    PERIOD,
    FaultBoards,
    journal_discrepancies,
    score_discrepancies,
)
from .redis_server import PrivateRedis
from .rewards_check import Asset, RewardsState, expected_grants, fill_action, ledger_discrepancies
from .scenario import dead_letter_problems


def test_plan_delivers_each_event_two_or_three_times() -> None:
    plan = build_plan("t-plan", events=500, copies=(2, 3))

    delivered = Counter(decode(record.value).idempotency_key for record in plan.records)

    assert set(delivered) == set(plan.expected)
    assert set(delivered.values()) == {2, 3}
    assert plan.deliveries == sum(delivered.values())
    # Some copies are client retries with a new event id, some producer retries with the same.
    assert any(len(ids) > 1 for ids in plan.event_ids.values())
    assert sum(plan.expected_counts.values()) == 500


def test_plan_is_deterministic_in_its_ids_and_order() -> None:
    first = build_plan("t-plan", events=200, copies=(1, 2), seed=3)
    second = build_plan("t-plan", events=200, copies=(1, 2), seed=3)
    assert first.expected == second.expected
    assert [decode(r.value).idempotency_key for r in first.records] == [
        decode(r.value).idempotency_key for r in second.records
    ]


def test_one_record_in_a_hundred_is_garbage_of_every_kind() -> None:
    plan = build_plan("t-plan", events=3000, garbage_every=100)

    garbage = [record for record in plan.records if dict(record.headers).get(MARKER_HEADER)]

    assert len(garbage) == len(plan.garbage) == 3000 // 99
    assert set(plan.garbage.values()) == set(GarbageKind)
    for record in garbage:
        with pytest.raises(ContractError):
            validate(decode(record.value))


def test_checker_reports_losses_doubles_and_strangers() -> None:
    plan = build_plan("t-check", events=30, players=3)
    exact = ProbeState(
        effects={
            key: (player, next(iter(plan.event_ids[key]))) for key, player in plan.expected.items()
        },
        durable_keys=frozenset(plan.expected),
        counts=dict(plan.expected_counts),
    )
    assert discrepancies(plan, exact) == []

    lost_key = sorted(plan.expected)[0]
    doubled_player = sorted(plan.expected_counts)[1]
    broken = ProbeState(
        effects={k: v for k, v in exact.effects.items() if k != lost_key}
        | {"t-check-stranger": ("x", "y")},
        durable_keys=exact.durable_keys,
        counts=exact.counts | {doubled_player: exact.counts[doubled_player] + 1},
    )
    problems = "\n".join(discrepancies(plan, broken))
    assert "1 events lost" in problems
    assert "1 effects nobody sent" in problems
    assert f"redis count of {doubled_player}" in problems and "(doubled)" in problems
    assert "(doubled)" not in "\n".join(discrepancies(plan, broken, check_counts=False))


def test_dead_letter_checker_reports_missing_doubled_strange_and_wrong_letters() -> None:
    plan = build_plan("t-dlq", events=400, garbage_every=100)
    garbage = [r for r in plan.records if dict(r.headers).get(MARKER_HEADER)]
    # The letters the runtime writes, with the reasons the codec really gives.
    exact = [dead_letter(offset, record, "rewards") for offset, record in enumerate(garbage)]
    assert dead_letter_problems(plan, exact, "t-dlq.events", "rewards") == []

    stranger = dead_letter(99, Record(b"x", b"\x07", ((MARKER_HEADER, b"t-dlq-other"),)), "rewards")
    broken = [*exact[1:], exact[1], stranger]
    broken[2] = dead_letter(2, garbage[3], "probe")
    problems = "\n".join(dead_letter_problems(plan, broken, "t-dlq.events", "rewards"))
    assert "1 garbage records not dead-lettered" in problems
    assert "1 garbage records dead-lettered twice" in problems
    assert "1 dead letters that are not our garbage" in problems
    assert f"{headers.PROCESSOR}='probe'" in problems


def dead_letter(offset: int, record: Record, processor: str) -> ConsumedRecord:
    """The dead letter the runtime writes for a garbage record (workers/runtime/pipeline.py)."""
    with pytest.raises(ContractError) as refused:
        decode_valid(record.value)
    reason = {
        headers.ERROR_CLASS: type(refused.value).__name__.encode(),
        headers.ERROR_MESSAGE: str(refused.value).encode(),
        headers.ORIGINAL_TOPIC: b"t-dlq.events",
        headers.ORIGINAL_OFFSET: str(offset).encode(),
        headers.PROCESSOR: processor.encode(),
    }
    return ConsumedRecord(0, offset, record.key, record.value, {**dict(record.headers), **reason})


@pytest.mark.integration
def test_private_redis_flushes_only_itself() -> None:
    with PrivateRedis() as server, redis.Redis(port=server.port) as client:
        client.set("k", "v")
        assert server.key_count() == 1
        server.flush_all()
        assert server.key_count() == 0
        assert server.port != 6379


def test_rewards_checker_reports_lost_rows_and_doubled_wallets() -> None:
    plan = build_plan("t-rw", events=40, players=3, payload=fill_action)
    exact = _rewards_state(plan)
    assert ledger_discrepancies(plan, exact) == []

    granted = sorted(key for key, source in plan.sources.items() if expected_grants(source))
    lost, doubled = granted[0], granted[1]
    lost_rows = {row: v for row, v in exact.ledger.items() if row[0] != lost}
    wallets = dict(exact.wallets)
    for asset, amount in expected_grants(plan.sources[doubled]).items():
        wallets[(plan.sources[doubled].player_id, asset)] += amount
    broken = RewardsState(lost_rows, exact.durable_keys - {lost}, wallets, refusals=0)

    problems = "\n".join(ledger_discrepancies(plan, broken))
    assert "ledger rows lost" in problems
    assert "processed_events holds" in problems
    assert "(doubled)" in problems


def test_leaderboards_checker_sums_accepted_submissions_only() -> None:
    boards = FaultBoards(tag="ftest")
    plan = build_plan("t-lb", events=400, players=5, payload=boards.filler())
    accepted = boards.accepted(plan)
    refused = set(plan.sources) - set(accepted)
    assert refused, "the plan sends out-of-range scores too"

    expected = boards.expected_scores(plan)
    sums = expected[boards.sum_board]
    assert sum(sums.values()) == sum(
        s.score_submitted.score
        for s in accepted.values()
        if s.score_submitted.leaderboard_id == boards.sum_board
    )
    assert score_discrepancies(expected, expected, "redis board") == []
    player = sorted(sums)[0]
    doubled = {**expected, boards.sum_board: {**sums, player: sums[player] + 1}}
    assert player in "\n".join(score_discrepancies(expected, doubled, "redis board"))

    journal = {
        key: (
            s.score_submitted.leaderboard_id,
            PERIOD,
            s.player_id,
            s.score_submitted.score,
            next(iter(plan.event_ids[key])),
        )
        for key, s in accepted.items()
    }
    assert journal_discrepancies(plan, boards, journal) == []
    extra = {**journal, sorted(refused)[0]: journal[sorted(journal)[0]]}
    assert "not accepted" in "\n".join(journal_discrepancies(plan, boards, extra))


def _rewards_state(plan: EventPlan) -> RewardsState:
    """The state a correct run of the rewards processor leaves, built from the plan."""
    ledger: dict[tuple[str, Asset], tuple[str, int, str]] = {}
    wallets: Counter[tuple[str, Asset]] = Counter()
    for key, source in plan.sources.items():
        for asset, amount in expected_grants(source).items():
            ledger[(key, asset)] = (source.player_id, amount, source.event_id)
            wallets[(source.player_id, asset)] += amount
    return RewardsState(ledger, frozenset(plan.expected), dict(wallets), refusals=0)
