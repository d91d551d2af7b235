"""Which rank-changed events one applied submission produces.

- ENTERED_TOP, once per configured threshold N the player crossed into (was unranked or below
  N, is now N or better);
- REACHED_FIRST, when the player is now first and was not;
- OVERTAKEN_FROM_FIRST, for the player who was first until this submission (their new rank).
A submission that leaves the rank unchanged (a best score not beaten) produces nothing.
"""

from __future__ import annotations

from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.processors.leaderboards import events
from workers.processors.leaderboards.scoring import ScoreResult, Submission
from workers.runtime.processor import OutputEvent

Kind = events.RankChangeKind


def rank_changes(envelope: Envelope, sub: Submission, result: ScoreResult) -> list[OutputEvent]:
    new_rank, old_rank = result.new_rank, result.old_rank
    if new_rank is None or result.sort_value is None or new_rank == old_rank:
        return []
    codec = sub.board.codec

    def changed(
        player_id: str,
        kind: events.RankChangeKind,
        old: int | None,
        new: int,
        sort_value: int,
        threshold: int,
    ) -> OutputEvent:
        return events.rank_changed(
            envelope,
            at=sub.received_at,
            player_id=player_id,
            leaderboard_id=sub.board.id,
            period=sub.period.key,
            kind=kind,
            old_rank=old,
            new_rank=new,
            score=codec.score_of(sort_value),
            threshold=threshold,
        )

    outputs = [
        changed(
            sub.player_id,
            Kind.RANK_CHANGE_KIND_ENTERED_TOP,
            old_rank,
            new_rank,
            result.sort_value,
            threshold,
        )
        for threshold in sub.board.top_thresholds
        if new_rank <= threshold and (old_rank is None or old_rank > threshold)
    ]
    if new_rank == 1:
        outputs.append(
            changed(
                sub.player_id,
                Kind.RANK_CHANGE_KIND_REACHED_FIRST,
                old_rank,
                1,
                result.sort_value,
                1,
            )
        )
        leader = result.leader_before
        if leader and leader != sub.player_id and result.leader_rank_after:
            outputs.append(
                changed(
                    leader,
                    Kind.RANK_CHANGE_KIND_OVERTAKEN_FROM_FIRST,
                    1,
                    result.leader_rank_after,
                    result.leader_sort_value or 0,
                    1,
                )
            )
    return outputs
