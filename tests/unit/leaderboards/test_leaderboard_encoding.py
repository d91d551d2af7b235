"""The sort value orders by score, then by who reached it first, and decodes back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.processors.leaderboards.encoding import SortKeyCodec, time_bits_for

HIGHER = SortKeyCodec(time_bits=time_bits_for("weekly"), better="higher")
LOWER = SortKeyCodec(time_bits=time_bits_for("weekly"), better="lower")
scores = st.integers(min_value=-HIGHER.score_limit, max_value=HIGHER.score_limit)
seconds = st.integers(min_value=0, max_value=HIGHER.multiplier - 1)


@given(scores, seconds)
def test_round_trip_is_exact_and_fits_a_double(score: int, elapsed_s: int) -> None:
    for codec in (HIGHER, LOWER):
        value = codec.encode(score, elapsed_s)
        assert abs(value) < 2**53
        # What Redis stores and returns is a double: the trip through float must be lossless.
        assert codec.decode(float(value)) == (score, elapsed_s)
        assert codec.score_of(float(value)) == score


@given(scores, scores, seconds, seconds)
def test_higher_is_better_ranks_score_first_then_earliest(a: int, b: int, ta: int, tb: int) -> None:
    # Given two players; when Redis ranks by descending sort value:
    first_is_a = HIGHER.encode(a, ta) > HIGHER.encode(b, tb)
    # Then the higher score wins, and on equal scores the earlier one.
    if a != b:
        assert first_is_a == (a > b)
    elif ta != tb:
        assert first_is_a == (ta < tb)


@given(scores, scores, seconds, seconds)
def test_lower_is_better_ranks_score_first_then_earliest(a: int, b: int, ta: int, tb: int) -> None:
    first_is_a = LOWER.encode(a, ta) < LOWER.encode(b, tb)
    if a != b:
        assert first_is_a == (a < b)
    elif ta != tb:
        assert first_is_a == (ta < tb)


def test_time_beyond_the_field_saturates_instead_of_spilling_into_the_score() -> None:
    late = HIGHER.encode(10, HIGHER.multiplier * 5)
    assert HIGHER.score_of(late) == 10
    assert HIGHER.encode(10, -3) == HIGHER.encode(10, 0)


def test_score_beyond_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="beyond"):
        HIGHER.encode(HIGHER.score_limit + 1, 0)


@pytest.mark.parametrize(
    ("reset", "longest_period_s"),
    [("daily", 25 * 3600), ("weekly", 7 * 86400 + 3600), ("monthly", 31 * 86400 + 3600)],
)
def test_time_field_covers_the_longest_period(reset: str, longest_period_s: int) -> None:
    assert 2 ** time_bits_for(reset) > longest_period_s
