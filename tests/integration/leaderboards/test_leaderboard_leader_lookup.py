"""The scoring script looks up the previous leader only when the submitter takes first place."""

from __future__ import annotations

import pytest

from schemas.liveops.v1.leaderboards_pb2 import RankChangeKind

from .lb_helpers import NOW, ProcessorFactory, rank_change, seconds_after, submission

pytestmark = pytest.mark.integration


async def test_lower_is_better_overtaking_and_no_leader_event_below_first(
    make_processor: ProcessorFactory, board_prefix: str
) -> None:
    # Given a lower-is-better board where ann leads, then bob beats her, then cid lands second
    speed = f"{board_prefix}-speed"
    batch = [
        submission(speed, "ann", 50, seconds_after(NOW, 1)),
        submission(speed, "bob", 40, seconds_after(NOW, 2)),
        submission(speed, "cid", 45, seconds_after(NOW, 3)),
    ]

    outcomes = await make_processor().handle(batch)

    # Then bob's submission announces his first place and ann overtaken, now second
    kinds = [(rank_change(o.envelope).kind, o.envelope.player_id) for o in outcomes[1].outputs]
    assert (RankChangeKind.RANK_CHANGE_KIND_REACHED_FIRST, "bob") in kinds
    overtaken = [
        rank_change(o.envelope)
        for o in outcomes[1].outputs
        if rank_change(o.envelope).kind == RankChangeKind.RANK_CHANGE_KIND_OVERTAKEN_FROM_FIRST
    ]
    assert [(c.old_rank, c.new_rank, c.score) for c in overtaken] == [(1, 2, 50)]
    # And cid, second, overtakes nobody
    assert all(
        rank_change(o.envelope).kind != RankChangeKind.RANK_CHANGE_KIND_OVERTAKEN_FROM_FIRST
        for o in outcomes[2].outputs
    )
