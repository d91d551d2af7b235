"""Scoring against the real Redis and MySQL: operators, tie-breaks, dedup, rejections, events."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from schemas.liveops.v1.leaderboards_pb2 import RankChangeKind, ScoreRejectionReason
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.reads import read_top
from workers.runtime.keys import DONE, lease_value
from workers.runtime.processor import OutcomeKind

from .lb_helpers import NOW, ProcessorFactory, rank_change, seconds_after, submission

pytestmark = pytest.mark.integration
START = NOW  # inside the current week, day and month of every test board


async def top(
    client: aioredis.Redis, prefix: str, definitions: Definitions, board_id: str
) -> list[tuple[str, int]]:
    board = definitions.get(board_id)
    assert board is not None
    view = await read_top(
        client, prefix=prefix, board=board, period=period_at(board, START), limit=100
    )
    return [(e.player_id, e.score) for e in view.entries]


async def test_best_scores_rank_by_score_then_by_who_reached_it_first(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    # Given ann and bob reach 500 (bob first), then cid scores 900, then ann a lower 100:
    arena = f"{board_prefix}-arena"
    processor = make_processor()
    batch = [
        submission(arena, "bob", 500, seconds_after(START, 1)),
        submission(arena, "ann", 500, seconds_after(START, 2)),
        submission(arena, "cid", 900, seconds_after(START, 3)),
        submission(arena, "ann", 100, seconds_after(START, 4)),
    ]
    # When the batch is handled:
    outcomes = await processor.handle(batch)
    # Then every submission is applied, best kept, and bob outranks ann at equal score.
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED] * 4
    assert await top(redis_client, unique_name, definitions, arena) == [
        ("cid", 900),
        ("bob", 500),
        ("ann", 500),
    ]


async def test_duplicates_in_a_batch_and_across_batches_apply_once(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    points = f"{board_prefix}-points"
    processor = make_processor()
    first = submission(points, "ann", 10, seconds_after(START, 1), key="k-1")
    copy = submission(points, "ann", 10, seconds_after(START, 1), key="k-1")
    # The runtime holds a lease on a key it hands over: a lease is not "done", so it applies.
    await redis_client.set(keys.dedup_key(unique_name, "k-2"), lease_value("worker-a"))
    second = submission(points, "ann", 5, seconds_after(START, 2), key="k-2")

    outcomes = await processor.handle([first, copy, second])
    again = await processor.handle([copy, second])

    assert [o.kind for o in outcomes] == [
        OutcomeKind.APPLIED,
        OutcomeKind.DUPLICATE,
        OutcomeKind.APPLIED,
    ]
    assert [o.kind for o in again] == [OutcomeKind.DUPLICATE, OutcomeKind.DUPLICATE]
    assert await top(redis_client, unique_name, definitions, points) == [("ann", 15)]
    assert await redis_client.get(keys.dedup_key(unique_name, "k-2")) == DONE.encode()
    assert 0 < await redis_client.ttl(keys.dedup_key(unique_name, "k-1")) <= 7 * 86400


async def test_latest_increment_decrement_and_lower_is_better(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    p = board_prefix
    processor = make_processor()
    batch = [
        submission(f"{p}-trophies", "ann", 300, seconds_after(START, 1)),
        submission(f"{p}-trophies", "ann", 120, seconds_after(START, 2)),
        submission(f"{p}-points", "ann", 7, seconds_after(START, 1)),
        submission(f"{p}-points", "ann", 8, seconds_after(START, 2)),
        submission(f"{p}-debt", "ann", 3, seconds_after(START, 1)),
        submission(f"{p}-debt", "ann", 4, seconds_after(START, 2)),
        submission(f"{p}-speed", "ann", 5000, seconds_after(START, 1)),
        submission(f"{p}-speed", "bob", 4000, seconds_after(START, 2)),
        submission(f"{p}-speed", "ann", 4500, seconds_after(START, 3)),
        submission(f"{p}-speed", "cid", 4000, seconds_after(START, 4)),
    ]
    outcomes = await processor.handle(batch)
    assert {o.kind for o in outcomes} == {OutcomeKind.APPLIED}
    assert await top(redis_client, unique_name, definitions, f"{p}-trophies") == [("ann", 120)]
    assert await top(redis_client, unique_name, definitions, f"{p}-points") == [("ann", 15)]
    assert await top(redis_client, unique_name, definitions, f"{p}-debt") == [("ann", -7)]
    # Lower is better: bob and cid tie at 4000, bob got there first.
    assert await top(redis_client, unique_name, definitions, f"{p}-speed") == [
        ("bob", 4000),
        ("cid", 4000),
        ("ann", 4500),
    ]


async def test_refusals_are_rejected_with_a_reason_an_event_and_a_metric(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    processor = make_processor(registry=registry)
    arena = f"{board_prefix}-arena"
    batch = [submission(arena, "ann", 10 + i, seconds_after(START, i)) for i in range(6)]
    batch += [
        submission("no-such-board", "ann", 1, START),
        submission(arena, "bob", 1_000_001, START),
        submission(f"{board_prefix}-speed", "bob", 0, START),
    ]
    outcomes = await processor.handle(batch)

    kinds = [o.kind for o in outcomes]
    assert kinds == [OutcomeKind.APPLIED] * 5 + [OutcomeKind.REJECTED] * 4
    assert [o.reason for o in outcomes[5:]] == [
        "rate_limited",
        "unknown_leaderboard",
        "out_of_range",
        "out_of_range",
    ]
    reasons = [o.outputs[0].envelope.score_rejected.reason for o in outcomes[5:]]
    assert reasons == [
        ScoreRejectionReason.SCORE_REJECTION_REASON_RATE_LIMITED,
        ScoreRejectionReason.SCORE_REJECTION_REASON_UNKNOWN_LEADERBOARD,
        ScoreRejectionReason.SCORE_REJECTION_REASON_OUT_OF_RANGE,
        ScoreRejectionReason.SCORE_REJECTION_REASON_OUT_OF_RANGE,
    ]
    assert outcomes[5].outputs[0].envelope.score_rejected.source_event_id == batch[5].event_id
    assert await top(redis_client, unique_name, definitions, arena) == [("ann", 14)]
    sample = registry.get_sample_value(
        "liveops_leaderboard_rejections_total",
        {"leaderboard": arena, "reason": "out_of_range"},
    )
    assert sample == 1.0


async def test_rank_changes_produce_events_with_ids_stable_across_deliveries(
    make_processor: ProcessorFactory,
    board_prefix: str,
    unique_name: str,
) -> None:
    arena = f"{board_prefix}-arena"
    batch = [
        submission(arena, "ann", 100, seconds_after(START, 1)),
        submission(arena, "bob", 50, seconds_after(START, 2)),
        submission(arena, "cid", 70, seconds_after(START, 3)),
        submission(arena, "dan", 10, seconds_after(START, 4)),
        submission(arena, "bob", 200, seconds_after(START, 5)),
    ]
    outcomes = await make_processor().handle(batch)

    changes = [[rank_change(out.envelope) for out in o.outputs] for o in outcomes]
    # ann: first on an empty board -> entered the top 3, reached first.
    assert [(c.kind, c.new_rank) for c in changes[0]] == [
        (RankChangeKind.RANK_CHANGE_KIND_ENTERED_TOP, 1),
        (RankChangeKind.RANK_CHANGE_KIND_REACHED_FIRST, 1),
    ]
    # dan is 4th: below the top-3 threshold, nothing to say.
    assert changes[3] == []
    # bob climbs from 3rd to 1st: already in the top 3; reached first; ann overtaken to 2nd.
    last = outcomes[4].outputs
    assert [(rank_change(o.envelope).kind, o.envelope.player_id) for o in last] == [
        (RankChangeKind.RANK_CHANGE_KIND_REACHED_FIRST, "bob"),
        (RankChangeKind.RANK_CHANGE_KIND_OVERTAKEN_FROM_FIRST, "ann"),
    ]
    overtaken = rank_change(last[1].envelope)
    assert (overtaken.old_rank, overtaken.new_rank, overtaken.score) == (1, 2, 100)

    # The same events delivered to a fresh board state give the same event ids.
    replay = await make_processor(prefix=f"{unique_name}-replay").handle(batch)
    ids = [out.envelope.event_id for o in outcomes for out in o.outputs]
    assert ids == [out.envelope.event_id for o in replay for out in o.outputs]
    assert len(set(ids)) == len(ids)
