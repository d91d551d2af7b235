"""A duplicate's answer carries its first delivery's answer when the script kept it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workers.processors.leaderboards.scoring import ScoreResult, ScoreStatus, result_of


def test_a_plain_duplicate_has_no_first_answer() -> None:
    assert result_of(b"d") == ScoreResult(ScoreStatus.DUPLICATE)


def test_a_kept_refusal_comes_back_with_its_reason() -> None:
    for code, status in (
        (b"r", ScoreStatus.REFUSED),
        (b"c", ScoreStatus.CLOSED),
        (b"l", ScoreStatus.RATE_LIMITED),
        (b"o", ScoreStatus.OUT_OF_RANGE),
    ):
        assert result_of(b"d:" + code) == ScoreResult(
            ScoreStatus.DUPLICATE, first=ScoreResult(status)
        )


@given(
    sort_value=st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    old_rank=st.integers(min_value=-1, max_value=10_000),
    new_rank=st.integers(min_value=0, max_value=10_000),
    leader=st.text(max_size=20),
)
def test_kept_ranks_read_back_as_the_array_answer_would(
    sort_value: int, old_rank: int, new_rank: int, leader: str
) -> None:
    # Given ranks as scoring.lua keeps them: six values, space-separated, the leader last
    # (a player id may hold spaces), rank and value -1 when there was no leader to overtake
    leader_rank, leader_value = (1, sort_value - 1) if leader else (-1, -1)
    raw = [sort_value, old_rank, new_rank, leader_rank, leader_value, leader.encode()]
    kept = b" ".join(str(v).encode() for v in raw[:5]) + b" " + leader.encode()

    # When a duplicate is answered with them, then they read as the first answer did
    assert result_of(b"d:" + kept).first == result_of(raw)
