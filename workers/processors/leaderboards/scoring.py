"""Apply a batch of submissions in one Lua call (scoring.lua): dedup, operator, ranks, journal.

One round trip per batch, and atomic: each submission's dedup marker, sorted-set update,
rate-limit count and journal entry are written together or not at all, so a worker that dies
mid-batch leaves every submission either fully applied (marker `done`) or untouched.
Operators: best -> ZADD GT (higher is better) or LT (lower is better); latest -> plain ZADD;
increment/decrement -> read, add the signed delta, ZADD with the new tie-break (the time the
player reached the new total), refusing totals the sort value cannot hold.
Every final decision (applied, or refused for any reason, including events the processor
refused before scoring) sets the event's dedup marker in the same call, and a marker already
`done` makes the event a duplicate: the processor guards itself (DedupMode.PROCESSOR), so
the runtime skips its own claim and marks.
A final answer the processor builds outputs from (a refusal, or ranks that may make a
rank-changed event) is kept beside the marker, as long as it (keys.kept_key), and a
redelivery of that event (same event id) gets it back (ScoreResult.first): outputs are at
least once, with the same ids, even if the first delivery died before the broker
acknowledged them. A client's retry (same idempotency key, another event id) stays a plain
duplicate: outputs built from it could differ (source event id, received_at, trace). The marker
stays exactly `done`, so every reader of markers (the runtime's claim, an older worker during
a rolling deploy) still sees it as done.
The hot path (the processor) fills a ScoringCall and reads the flat reply itself; apply() is
the same call for a list of Submissions, answered with ScoreResults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib import resources
from typing import Any

import redis.asyncio as aioredis

from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.periods import LeaderboardPeriod
from workers.runtime.keys import DONE
from workers.runtime.scripts import BatchScript

_SCRIPT = resources.files(__package__).joinpath("scoring.lua").read_text(encoding="utf-8")
_OPS = {"best": None, "latest": "set", "increment": "add", "decrement": "add"}
#: Applied submissions per journal stream entry (scoring.lua); below 2**JOURNAL_SEQ_BITS.
JOURNAL_PER_ENTRY = 512
#: A journal row's order is (entry ms, entry seq << JOURNAL_SEQ_BITS | place in the entry).
JOURNAL_SEQ_BITS = 20


class ScoreStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CLOSED = "closed"
    RATE_LIMITED = "rate_limited"
    OUT_OF_RANGE = "out_of_range"
    #: Refused before scoring by the processor; its dedup marker is now set.
    REFUSED = "refused"


#: How the script's answer to a duplicate starts when its first answer was kept; the kept
#: answer follows (kept_result).
KEPT = b"d:"
#: The script's one-letter answers for submissions it did not apply.
STATUS_CODES = {
    b"d": ScoreStatus.DUPLICATE,
    b"r": ScoreStatus.REFUSED,
    b"c": ScoreStatus.CLOSED,
    b"l": ScoreStatus.RATE_LIMITED,
    b"o": ScoreStatus.OUT_OF_RANGE,
}


@dataclass(frozen=True, slots=True)
class Submission:
    """A validated score submission, with the board and period it falls in."""

    idempotency_key: str
    event_id: str
    player_id: str
    board: LeaderboardDefinition
    period: LeaderboardPeriod
    score: int
    received_at: datetime

    @property
    def operand(self) -> int:
        """The value the script applies: the score, negated for a decrement board."""
        return -self.score if self.board.operator == "decrement" else self.score


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """What the script did with one submission; ranks are 1-based, None when unranked or not
    looked up (the new value could not rank within the board's thresholds)."""

    status: ScoreStatus
    old_rank: int | None = None
    new_rank: int | None = None
    sort_value: int | None = None
    #: Who was first before this submission, and their rank after it, when the submitter took
    #: first place (None if they were first already, the board was empty, or they did not
    #: become first: only OVERTAKEN_FROM_FIRST needs it, so the script looks it up only then).
    leader_before: str | None = None
    leader_rank_after: int | None = None
    leader_sort_value: int | None = None
    #: Where the journal holds it: (ms, seq) ordering the MySQL rows (JOURNAL_SEQ_BITS).
    journal: tuple[int, int] | None = None
    #: A DUPLICATE's first answer, when it was kept (scoring.lua): the refusal, or the ranks
    #: of the application, from which its outputs are built again.
    first: ScoreResult | None = None


def op_of(board: LeaderboardDefinition) -> str:
    return _OPS[board.operator] or ("gt" if board.better == "higher" else "lt")


def rank_limit(board: LeaderboardDefinition) -> int:
    """The largest rank a rank-changed event of this board is about (first place at least)."""
    return max((1, *board.top_thresholds))


def _rank(raw: int) -> int | None:
    return None if raw < 0 else raw + 1


def result_of(raw: Any, journal: tuple[int, int] | None = None) -> ScoreResult:
    """A ScoreResult from one element of the script's reply (see scoring.lua)."""
    if isinstance(raw, bytes):
        if raw[:2] == KEPT:
            return ScoreResult(ScoreStatus.DUPLICATE, first=kept_result(raw[2:]))
        return ScoreResult(STATUS_CODES[raw])
    if isinstance(raw, int):
        return ScoreResult(ScoreStatus.APPLIED, sort_value=raw, journal=journal)
    sort_value, old_rank, new_rank, leader_rank, leader_value, leader = raw
    return ScoreResult(
        ScoreStatus.APPLIED,
        old_rank=_rank(old_rank),
        new_rank=_rank(new_rank),
        sort_value=sort_value,
        leader_before=leader.decode() or None,
        leader_rank_after=_rank(leader_rank),
        leader_sort_value=leader_value if leader_rank >= 0 else None,
        journal=journal,
    )


def kept_result(kept: bytes) -> ScoreResult:
    """The first answer a duplicate's marker kept: a refusal's status letter, or the six rank
    values of an application, space-separated (the leader, last, may hold spaces)."""
    status = STATUS_CODES.get(kept)
    if status is not None:
        return ScoreResult(status)
    *numbers, leader = kept.split(b" ", 5)
    return result_of([*map(int, numbers), leader])


class JournalPlaces:
    """The journal place of each applied submission of one call, in application order."""

    def __init__(self, entry_ids: Sequence[Any]) -> None:
        self.entry_ids = [i.decode() if isinstance(i, bytes) else str(i) for i in entry_ids]
        self._parsed = [tuple(int(part) for part in i.split("-")) for i in self.entry_ids]

    def place(self, applied: int) -> tuple[int, int]:
        """(journal_ms, journal_seq) of the `applied`-th (0-based) applied submission."""
        ms, seq = self._parsed[applied // JOURNAL_PER_ENTRY]
        return ms, (seq << JOURNAL_SEQ_BITS) | (applied % JOURNAL_PER_ENTRY)


class ScoringCall:
    """KEYS and ARGV of one script call, filled submission by submission."""

    __slots__ = ("_prefix", "_spec_args", "_spec_keys", "_specs", "_sub_args", "_sub_keys")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._specs: dict[tuple[str, str], int] = {}
        self._spec_keys: list[str] = []
        self._spec_args: list[Any] = []
        self._sub_keys: list[str] = []
        self._sub_args: list[Any] = []

    def __len__(self) -> int:
        return len(self._sub_keys)

    def spec(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> int:
        """The number of the (board, period) pair in this call, described once."""
        number = self._specs.get((board.id, period.key))
        if number is None:
            number = self._specs[(board.id, period.key)] = len(self._specs) + 1
            self._spec_keys += [
                keys.board_key(self._prefix, board.id, period.key),
                keys.submissions_key(self._prefix, board.id, period.key),
                keys.closed_key(self._prefix, board.id, period.key),
            ]
            codec = board.codec
            expire_at = 0
            if period.ends_at is not None:
                expire_at = int(period.ends_at.timestamp()) + board.retention_s
            self._spec_args += [
                op_of(board),
                codec.multiplier,
                codec.score_limit,
                board.max_submissions_per_period or 0,
                expire_at,
                "rev" if board.better == "higher" else "fwd",
                board.id,
                period.key,
                rank_limit(board),
                ",".join(map(str, board.top_thresholds)),
            ]
        return number

    def add(
        self, spec: int, operand: int, tie_break: int, player: str, key: str, event_id: str
    ) -> None:
        """A submission to apply with spec `spec`'s rules."""
        self._sub_keys.append(keys.dedup_key(self._prefix, key))
        self._sub_args += (spec, operand, tie_break, player, key, event_id)

    def refuse(self, key: str, event_id: str = "") -> None:
        """An event refused before scoring: only its dedup marker (and kept answer: a
        redelivery with this event id is told it was refused) is checked and set."""
        self._sub_keys.append(keys.dedup_key(self._prefix, key))
        self._sub_args += (0, 0, 0, "", key, event_id)

    def keys_and_args(self, ttl_s: int) -> tuple[list[str], list[Any]]:
        script_keys = [keys.journal_key(self._prefix), *self._spec_keys, *self._sub_keys]
        head = [ttl_s, DONE, len(self._specs), JOURNAL_PER_ENTRY, keys.kept_prefix(self._prefix)]
        return script_keys, [*head, *self._spec_args, *self._sub_args]


class ScoringScript:
    """The scoring script registered on one Redis client, for one key prefix."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, dedup_ttl_s: int) -> None:
        self._prefix = prefix
        self._ttl_s = dedup_ttl_s
        self._script = BatchScript(client, _SCRIPT)

    def call(self) -> ScoringCall:
        return ScoringCall(self._prefix)

    def _keys_and_args(
        self, batch: Sequence[Submission], refused: Sequence[str] = ()
    ) -> tuple[list[str], list[Any]]:
        return self._fill(batch, refused).keys_and_args(self._ttl_s)

    def _fill(self, batch: Sequence[Submission], refused: Sequence[str]) -> ScoringCall:
        call = self.call()
        for sub in batch:
            elapsed = sub.period.elapsed_s(sub.received_at)
            call.add(
                call.spec(sub.board, sub.period),
                sub.operand,
                sub.board.codec.tie_break(elapsed),
                sub.player_id,
                sub.idempotency_key,
                sub.event_id,
            )
        for key in refused:
            call.refuse(key)
        return call

    async def run(self, call: ScoringCall) -> tuple[JournalPlaces, list[Any]]:
        """The journal places and one raw answer per submission of `call` (scoring.lua);
        DependencyUnavailableError if Redis is down. Sent packed by hiredis (scripts.py):
        a 500-event batch has ~4,000 keys and arguments."""
        script_keys, args = call.keys_and_args(self._ttl_s)
        reply = await self._script(script_keys, args)
        entries = int(reply[0])
        return JournalPlaces(reply[1 : 1 + entries]), reply[1 + entries :]

    async def apply(
        self, batch: Sequence[Submission], refused: Sequence[str] = ()
    ) -> list[ScoreResult]:
        """One result per submission, in order, then one per `refused` idempotency key (events
        refused before scoring: DUPLICATE if their marker was already done, else REFUSED, and
        the marker is set). A DUPLICATE carries its first answer in `first` when the script
        kept it. DependencyUnavailableError if Redis is down."""
        if not batch and not refused:
            return []
        places, rows = await self.run(self._fill(batch, refused))
        results, applied = [], 0
        for raw in rows:
            if isinstance(raw, bytes):
                results.append(result_of(raw))
            else:
                results.append(result_of(raw, places.place(applied)))
                applied += 1
        return results
