"""MySQL side of the leaderboards: accepted submissions, closed periods and their archive.

Writes are idempotent (`ON DUPLICATE KEY UPDATE` a column to itself, not INSERT IGNORE, which
would raise a driver warning): copying the same journal entry or archiving the same period
twice changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiomysql

from workers.processors.leaderboards.definitions import LeaderboardDefinition


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    """One accepted submission as the scoring script journaled it."""

    idempotency_key: str
    event_id: str
    leaderboard_id: str
    period: str
    player_id: str
    submitted: int
    sort_value: int
    #: The Redis stream id (ms, seq): the order in which submissions were applied.
    journal_ms: int
    journal_seq: int


@dataclass(frozen=True, slots=True)
class FinalEntry:
    """A player's standing at the end of a period, as a rebuild or an archive needs it."""

    player_id: str
    sort_value: int
    #: Accepted submissions of the player in the period (restores the rate-limit counter).
    submissions: int


@dataclass(frozen=True, slots=True)
class ArchivedEntry:
    final_rank: int
    player_id: str
    score: int
    sort_value: int


#: One row of `leaderboard_submissions`, in the order of _SUBMISSION_COLUMNS: idempotency key,
#: event id, board, period, player, submitted, sort value, journal ms, journal seq.
SubmissionRow = tuple[str, str, str, str, str, int, int, int, int]
_SUBMISSION_COLUMNS = (
    "idempotency_key, event_id, leaderboard_id, period, player_id, submitted, sort_value, "
    "journal_ms, journal_seq"
)


def row_of(record: SubmissionRecord) -> SubmissionRow:
    r = record
    return (
        r.idempotency_key,
        r.event_id,
        r.leaderboard_id,
        r.period,
        r.player_id,
        r.submitted,
        r.sort_value,
        r.journal_ms,
        r.journal_seq,
    )


async def record_submissions(pool: aiomysql.Pool, records: Sequence[SubmissionRecord]) -> int:
    """Insert the records in one statement and commit; return how many were new."""
    return await insert_rows(pool, [row_of(r) for r in records])


async def insert_rows(pool: aiomysql.Pool, rows: Sequence[SubmissionRow]) -> int:
    """Insert the rows in one statement and commit; return how many were new.

    The VALUES list is written here with the connection's own string escaping (the driver's
    generic per-parameter escaping cost ~10 us a row, this ~1.5 us): strings are quoted and
    escaped, every other column is an int.
    """
    if not rows:
        return 0
    async with pool.acquire() as conn, conn.cursor() as cursor:
        esc = conn.escape_string
        literals: dict[str, str] = {}  # boards and periods repeat on nearly every row

        def lit(text: str) -> str:
            quoted = literals.get(text)
            if quoted is None:
                quoted = literals[text] = f"'{esc(text)}'"
            return quoted

        values = ",".join(
            f"('{esc(key)}','{esc(event)}',{lit(board)},{lit(period)},'{esc(player)}',"
            f"{int(submitted)},{int(sort_value)},{int(ms)},{int(seq)})"
            for key, event, board, period, player, submitted, sort_value, ms, seq in rows
        )
        await cursor.execute(
            f"INSERT INTO leaderboard_submissions ({_SUBMISSION_COLUMNS}) VALUES {values} "  # noqa: S608 - every string escaped above
            "ON DUPLICATE KEY UPDATE idempotency_key = idempotency_key"
        )
        inserted = int(cursor.rowcount)
        await conn.commit()
    return inserted


async def final_entries(
    pool: aiomysql.Pool, board: LeaderboardDefinition, period: str, *, chunk: int = 5000
) -> AsyncIterator[list[FinalEntry]]:
    """Each player's standing in the period, replayed from every accepted submission, in chunks.

    The standing is recomputed from what was submitted, with the board's operator, rather
    than copied from the sort value recorded after the last submission: if Redis lost the board
    in the middle of a run, the values recorded afterwards were computed on the emptied board
    and are wrong, while the submissions themselves are not. `increment`/`decrement` sum the
    deltas and take the last submission's second, `latest` takes the last submission, `best`
    the best sort value (score, then the earlier second) any submission reached. Streams with a
    server-side cursor, one player at a time, so a board with millions of players is never
    held in memory at once.
    """
    async with pool.acquire() as conn, conn.cursor(aiomysql.SSCursor) as cursor:
        await cursor.execute(
            "SELECT player_id, submitted, sort_value FROM leaderboard_submissions "
            "WHERE leaderboard_id = %s AND period = %s "
            "ORDER BY player_id, journal_ms, journal_seq",
            (board.id, period),
        )
        entries: list[FinalEntry] = []
        standing = _Standing(board)
        while rows := await cursor.fetchmany(chunk):
            for player_id, submitted, sort_value in rows:
                if str(player_id) != standing.player_id and standing.submissions:
                    entries.append(standing.entry())
                    standing = _Standing(board)
                standing.add(str(player_id), int(submitted), int(sort_value))
            if len(entries) >= chunk:
                yield entries
                entries = []
        if standing.submissions:
            entries.append(standing.entry())
        if entries:
            yield entries
        await conn.commit()


class _Standing:
    """One player's standing replayed submission by submission with the board's operator."""

    def __init__(self, board: LeaderboardDefinition) -> None:
        self._board = board
        self.player_id = ""
        self.submissions = 0
        self._total = 0
        self._sort_value = 0

    def add(self, player_id: str, submitted: int, recorded_sort_value: int) -> None:
        # When a submission changed the board, the sort value recorded after it carries its own
        # second; when it did not, that value belongs to a better submission, and the candidate
        # built from it can never beat the standing that submission set.
        codec = self._board.codec
        _, elapsed_s = codec.decode(recorded_sort_value)
        first = self.submissions == 0
        self.player_id = player_id
        self.submissions += 1
        operator = self._board.operator
        if operator in ("increment", "decrement"):
            self._total = submitted + (0 if first else self._total)
            self._sort_value = codec.encode(self._total, elapsed_s)
            return
        candidate = codec.encode(submitted, elapsed_s)
        if operator == "latest" or first:
            self._sort_value = candidate
        elif self._board.better == "higher":
            self._sort_value = max(self._sort_value, candidate)
        else:
            self._sort_value = min(self._sort_value, candidate)

    def entry(self) -> FinalEntry:
        return FinalEntry(self.player_id, self._sort_value, self.submissions)


async def count_submissions(pool: aiomysql.Pool, leaderboard_id: str, period: str) -> int:
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT COUNT(*) FROM leaderboard_submissions WHERE leaderboard_id = %s "
            "AND period = %s",
            (leaderboard_id, period),
        )
        (count,) = await cursor.fetchone()
        await conn.commit()
    return int(count)


async def archive_period(
    pool: aiomysql.Pool,
    *,
    leaderboard_id: str,
    period: str,
    starts_at: datetime,
    ends_at: datetime | None,
    definitions_version: str,
    entries: Sequence[ArchivedEntry],
) -> bool:
    """Record the period as closed with its top entries, in one transaction.

    Returns False (and writes nothing) when the period was archived before: the first archive
    stands, so a second close cannot change final ranks that prizes were paid on.
    """
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "INSERT INTO leaderboard_periods (leaderboard_id, period, starts_at, ends_at, "
            "entries, definitions_version) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON DUPLICATE KEY UPDATE leaderboard_id = leaderboard_id",
            (
                leaderboard_id,
                period,
                _naive_utc(starts_at),
                _naive_utc(ends_at) if ends_at else None,
                len(entries),
                definitions_version,
            ),
        )
        if cursor.rowcount != 1:
            await conn.rollback()
            return False
        if entries:
            rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(entries))
            params: list[object] = []
            for e in entries:
                params += [leaderboard_id, period, e.final_rank, e.player_id, e.score, e.sort_value]
            await cursor.execute(
                "INSERT INTO leaderboard_archive (leaderboard_id, period, final_rank, "  # noqa: S608 - only placeholders added
                f"player_id, score, sort_value) VALUES {rows}",
                params,
            )
        await conn.commit()
    return True


async def is_archived(pool: aiomysql.Pool, leaderboard_id: str, period: str) -> bool:
    """Whether the period was closed (its archive written), without reading the archive."""
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT 1 FROM leaderboard_periods WHERE leaderboard_id = %s AND period = %s",
            (leaderboard_id, period),
        )
        closed = await cursor.fetchone() is not None
        await conn.commit()
    return closed


async def archived_entries(
    pool: aiomysql.Pool, leaderboard_id: str, period: str
) -> list[ArchivedEntry] | None:
    """The archive of a closed period, best first; None when the period is not closed."""
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT 1 FROM leaderboard_periods WHERE leaderboard_id = %s AND period = %s",
            (leaderboard_id, period),
        )
        closed = await cursor.fetchone() is not None
        await cursor.execute(
            "SELECT final_rank, player_id, score, sort_value FROM leaderboard_archive "
            "WHERE leaderboard_id = %s AND period = %s ORDER BY final_rank",
            (leaderboard_id, period),
        )
        rows = await cursor.fetchall()
        await conn.commit()
    if not closed:
        return None
    return [ArchivedEntry(int(r), str(p), int(s), int(v)) for r, p, s, v in rows]


async def closed_periods(pool: aiomysql.Pool, leaderboard_id: str) -> list[tuple[str, datetime]]:
    """(period, closed_at) of every closed period of a board, newest first."""
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "SELECT period, closed_at FROM leaderboard_periods WHERE leaderboard_id = %s "
            "ORDER BY starts_at DESC",
            (leaderboard_id,),
        )
        rows = await cursor.fetchall()
        await conn.commit()
    return [(str(p), c) for p, c in rows]


def _naive_utc(instant: datetime) -> datetime:
    """DATETIME columns hold UTC without a zone."""
    return instant.astimezone(UTC).replace(tzinfo=None)
