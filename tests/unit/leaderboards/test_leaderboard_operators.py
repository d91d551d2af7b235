"""What each operator asks the scoring script to do, and which rank changes make events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.liveops.v1.envelope_pb2 import Envelope
from schemas.liveops.v1.leaderboards_pb2 import RankChangeKind
from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.events import derived_event_id
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.ranks import rank_changes
from workers.processors.leaderboards.scoring import (
    JOURNAL_PER_ENTRY,
    ScoreResult,
    ScoreStatus,
    ScoringScript,
    Submission,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def board(**fields: Any) -> LeaderboardDefinition:
    return LeaderboardDefinition.model_validate(
        {"id": "b", "max_score": 1000, "reset": "weekly", **fields}
    )


def sub(b: LeaderboardDefinition, score: int = 40, player: str = "ann") -> Submission:
    return Submission("k", "e", player, b, period_at(b, NOW), score, NOW)


class _NoRedis:
    """Enough of a client for register_script; arguments are built without any call."""

    def register_script(self, _script: str) -> object:
        return object()


@pytest.mark.parametrize(
    ("fields", "op", "operand", "order"),
    [
        ({"operator": "best"}, "gt", 40, "rev"),
        ({"operator": "best", "better": "lower"}, "lt", 40, "fwd"),
        ({"operator": "latest"}, "set", 40, "rev"),
        ({"operator": "increment"}, "add", 40, "rev"),
        ({"operator": "decrement"}, "add", -40, "rev"),
    ],
)
def test_each_operator_maps_to_its_script_arguments(
    fields: dict[str, Any], op: str, operand: int, order: str
) -> None:
    b = board(**fields)
    script = ScoringScript(_NoRedis(), prefix="px", dedup_ttl_s=60)  # type: ignore[arg-type]  # a stand-in, never called
    keys, args = script._keys_and_args([sub(b), sub(b, player="bob")])
    # One spec for the (board, period) both submissions share, then one dedup key each.
    assert keys == [
        "px:lb:journal",
        "px:lb:b:2026-W48",
        "px:lb:b:2026-W48:subs",
        "px:lb:b:2026-W48:closed",
        "px:dedup:leaderboards:k",
        "px:dedup:leaderboards:k",
    ]
    ttl, _done, specs, per_entry, kept, spec, first, second = (
        args[0],
        args[1],
        args[2],
        args[3],
        args[4],
        args[5:15],
        args[15:21],
        args[21:],
    )
    assert (ttl, specs, per_entry, kept) == (60, 1, JOURNAL_PER_ENTRY, "px:lb-kept:")
    assert (spec[0], spec[5], spec[6:8]) == (op, order, ["b", "2026-W48"])
    # Ranks are looked up only for values that may reach the top threshold (10 by default).
    assert spec[8] == 10
    # and the answers kept for a redelivery are those whose move enters a threshold.
    assert spec[9] == "10"
    # The period's keys expire a retention after the period ends (2026-11-30).
    assert spec[4] == int(datetime(2026, 11, 30, tzinfo=UTC).timestamp()) + b.retention_s
    # Wednesday noon is 2.5 days into the week: the tie-break carries those seconds.
    elapsed = 2 * 86400 + 12 * 3600
    assert first[:3] == [1, operand, b.codec.tie_break(elapsed)]
    assert (first[3], second[3]) == ("ann", "bob")


def result(old: int | None, new: int, **extra: Any) -> ScoreResult:
    b = board()
    return ScoreResult(ScoreStatus.APPLIED, old, new, sort_value=b.codec.encode(40, 0), **extra)


def kinds(b: LeaderboardDefinition, r: ScoreResult) -> list[tuple[int, str, int]]:
    source = Envelope(event_id="src", player_id="ann")
    return [
        (
            o.envelope.leaderboard_rank_changed.kind,
            o.envelope.player_id,
            o.envelope.leaderboard_rank_changed.threshold,
        )
        for o in rank_changes(source, sub(b), r)
    ]


def test_entering_each_threshold_is_announced_once() -> None:
    b = board(top_thresholds=[10, 100])
    assert kinds(b, result(None, 50)) == [(RankChangeKind.RANK_CHANGE_KIND_ENTERED_TOP, "ann", 100)]
    assert kinds(b, result(150, 5)) == [
        (RankChangeKind.RANK_CHANGE_KIND_ENTERED_TOP, "ann", 10),
        (RankChangeKind.RANK_CHANGE_KIND_ENTERED_TOP, "ann", 100),
    ]
    assert kinds(b, result(8, 4)) == []  # already inside every threshold
    assert kinds(b, result(4, 4)) == []  # no movement


def test_reaching_first_overtakes_the_previous_leader() -> None:
    b = board(top_thresholds=[3])
    leader_value = b.codec.encode(35, 0)
    events = kinds(
        b, result(2, 1, leader_before="bob", leader_rank_after=2, leader_sort_value=leader_value)
    )
    assert events == [
        (RankChangeKind.RANK_CHANGE_KIND_REACHED_FIRST, "ann", 1),
        (RankChangeKind.RANK_CHANGE_KIND_OVERTAKEN_FROM_FIRST, "bob", 1),
    ]


def test_derived_ids_are_stable_distinct_and_time_sortable() -> None:
    first = derived_event_id("a", 1_000)
    assert first == derived_event_id("a", 1_000)
    assert first != derived_event_id("b", 1_000)
    assert derived_event_id("z", 999) < first < derived_event_id("a", 1_001)
