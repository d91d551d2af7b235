"""One sorted-set score per player that holds both the score and when it was reached.

Redis sorts a sorted set by a 64-bit IEEE double; doubles hold every integer up to 2**53
exactly. We pack two integers into that range:

    sort_value = score * 2**T + tie_break        with 0 <= tie_break < 2**T

so sort_value orders by score first, then by tie_break. tie_break encodes the whole seconds
elapsed between the start of the period and the moment the submission reached the score
(`received_at`, the gateway clock), flipped so that the earlier player always ranks first:
- higher is better (ranks read with ZREVRANK, largest first): tie_break = 2**T - 1 - elapsed_s;
- lower is better (ranks read with ZRANK, smallest first): tie_break = elapsed_s.
Players with equal score and equal second are ordered by Redis by member (player id), which is
still deterministic.

T depends on the longest possible period, so the score keeps as many bits as possible:
daily 17 bits (36.4 h), weekly 20 (12.1 d), monthly 22 (48.5 d), cron and never-resetting
boards 28 (8.5 years; later submissions to a board that never resets share the last tie-break
value). Scores (totals included) must then stay within +-(2**(53 - T) - 1): about 6.9e10 for
daily boards, 8.6e9 weekly, 2.1e9 monthly, 3.3e7 for cron and never-resetting boards. Definitions
whose max_score does not fit are refused; an increment that would leave the range is rejected
out_of_range. Precision limits: ties are resolved to the second, not finer; scores are integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SIGNIFICAND_BITS = 53
_TIME_BITS = {"daily": 17, "weekly": 20, "monthly": 22, "cron": 28, "none": 28}


def time_bits_for(reset: str) -> int:
    """Bits of the tie-break for a reset schedule: enough seconds for its longest period."""
    return _TIME_BITS[reset]


@dataclass(frozen=True, slots=True)
class SortKeyCodec:
    """Packs (score, seconds since period start) into an exact integer below 2**53."""

    time_bits: int
    better: Literal["higher", "lower"]

    @property
    def multiplier(self) -> int:
        return 1 << self.time_bits

    @property
    def score_limit(self) -> int:
        """Largest absolute score (submission or total) the sort value can hold exactly."""
        return (1 << (SIGNIFICAND_BITS - self.time_bits)) - 1

    def tie_break(self, elapsed_s: int) -> int:
        """Earlier ranks first: flipped for higher-is-better boards; clamped to the field."""
        elapsed = min(max(elapsed_s, 0), self.multiplier - 1)
        return self.multiplier - 1 - elapsed if self.better == "higher" else elapsed

    def encode(self, score: int, elapsed_s: int) -> int:
        if abs(score) > self.score_limit:
            raise ValueError(f"score {score} is beyond +-{self.score_limit}")
        return score * self.multiplier + self.tie_break(elapsed_s)

    def decode(self, sort_value: float | int) -> tuple[int, int]:
        """(score, elapsed_s) from a sort value read back from Redis."""
        value = int(sort_value)
        score, tie_break = divmod(value, self.multiplier)
        elapsed = self.multiplier - 1 - tie_break if self.better == "higher" else tie_break
        return score, elapsed

    def score_of(self, sort_value: float | int) -> int:
        return int(sort_value) // self.multiplier
