"""The leaderboards processor: ScoreSubmitted events in, ranks in Redis, rank changes out.

Per batch, in this order:
1. Check each submission in memory: a known board, open at `received_at`, score in range;
   refusals become REJECTED outcomes with a ScoreRejected output and a metric (unless the
   script of step 2 finds the event done before: then DUPLICATE).
2. Apply the rest in ONE Lua call (scoring.py): dedup marker, closed period, rate limit,
   operator, ranks before and after, journal entry; atomic per submission. The same call
   checks and sets the markers of the events refused in step 1. Every final event's marker
   is set by this call, so the processor guards itself (DedupMode.PROCESSOR): the runtime
   skips its Redis claim and marks, two round trips per batch. Two workers with the same
   event (a rebalance) both run the script; Redis runs one at a time; the second finds
   `done` and reports DUPLICATE.
3. Turn rank movements into LeaderboardRankChanged outputs (entered a top-N threshold, reached
   first, overtaken from first), with ids derived from the source event.
4. Record the applied submissions in MySQL (journal.py: from the script's answer, then their
   journal entries are deleted) before returning, so that every submission whose offset the
   runtime commits is durable in MySQL too; if that fails, the entries stay in the journal
   and a later copy (next batch, or the background copy) records them.
5. Close periods that ended more than `close_grace_s` ago (closing.py) and attach their prize
   events to this batch's first final outcome, so the runtime publishes them before it commits.
   A failed close is logged and tried again with the next batch; it never fails the batch.
   A period already closed when this process first sees it is announced again once (same ids):
   if the process died before publishing the prizes, this is how they still get out.
Time is the gateway's `received_at` (the client clock is not trusted), so a redelivered or
retried submission lands in the same period with the same tie-break as its first delivery.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

import aiomysql
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter

from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import LEADERBOARDS_GROUP, ConsumerGroup
from workers.processors.leaderboards import closing, events
from workers.processors.leaderboards.definitions import Definitions, LeaderboardDefinition
from workers.processors.leaderboards.journal import JournalCopier
from workers.processors.leaderboards.periods import LeaderboardPeriod, period_at
from workers.processors.leaderboards.ranks import rank_changes
from workers.processors.leaderboards.scoring import (
    ScoreResult,
    ScoreStatus,
    ScoringScript,
    Submission,
)
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.runtime.processor import DedupMode, Outcome, OutcomeKind, OutputEvent
from workers.runtime.settings import WEEK_S

Reason = events.RejectionReason
_REASONS = {
    ScoreStatus.CLOSED: Reason.SCORE_REJECTION_REASON_CLOSED,
    ScoreStatus.RATE_LIMITED: Reason.SCORE_REJECTION_REASON_RATE_LIMITED,
    ScoreStatus.OUT_OF_RANGE: Reason.SCORE_REJECTION_REASON_OUT_OF_RANGE,
}
#: Longest ids the MySQL record holds (migrations/versions/0003_leaderboards.py).
_ID_LIMITS = {"player_id": 128, "idempotency_key": 191, "event_id": 64}
_FINAL = frozenset({OutcomeKind.APPLIED, OutcomeKind.DUPLICATE, OutcomeKind.REJECTED})


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderboardsProcessor:
    """Scores submissions; see the module docstring for the steps of a batch."""

    name: ClassVar[str] = "leaderboards"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = LEADERBOARDS_GROUP
    #: The scoring script checks and sets every final event's dedup marker (step 2).
    dedup: ClassVar[DedupMode] = DedupMode.PROCESSOR

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        mysql: aiomysql.Pool,
        definitions: Definitions,
        key_prefix: str,
        settings: LeaderboardSettings | None = None,
        dedup_ttl_s: int = WEEK_S,
        metrics: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._redis = redis
        self._mysql = mysql
        self._definitions = definitions
        self._prefix = key_prefix
        self._settings = settings or LeaderboardSettings()
        self._clock = clock
        # The runtime's dedup TTL (LIVEOPS_RUNTIME__DEDUP_TTL_S): the script sets the very
        # markers the runtime would, so one setting governs them all.
        self._script = ScoringScript(redis, prefix=key_prefix, dedup_ttl_s=dedup_ttl_s)
        self._journal = JournalCopier(
            redis,
            mysql,
            prefix=key_prefix,
            chunk=self._settings.journal_chunk,
            interval_s=self._settings.journal_copy_interval_s,
        )
        self._periods: dict[str, LeaderboardPeriod] = {}
        registry = metrics if metrics is not None else CollectorRegistry()
        self._rejections = Counter(
            "liveops_leaderboard_rejections",
            "Score submissions refused, by board and reason.",
            ["leaderboard", "reason"],
            registry=registry,
        )
        self._rank_changes = Counter(
            "liveops_leaderboard_rank_changes",
            "Rank-changed events produced, by board and kind.",
            ["leaderboard", "kind"],
            registry=registry,
        )
        self._closer = closing.LazyCloser(
            redis,
            mysql,
            prefix=key_prefix,
            definitions=definitions,
            grace_s=self._settings.close_grace_s,
            closed_total=Counter(
                "liveops_leaderboard_periods_closed",
                "Periods archived by this process.",
                ["leaderboard"],
                registry=registry,
            ),
        )

    @property
    def definitions(self) -> Definitions:
        return self._definitions

    async def start(self) -> None:
        """Start the background journal copy; connections come from the runtime."""
        self._journal.start()

    async def stop(self) -> None:
        """Stop the background copy and copy what is left, if Redis and MySQL still answer."""
        await self._journal.stop()

    async def ready(self) -> bool:
        try:
            await self._redis.ping()
            async with self._mysql.acquire() as conn, conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
        except (OSError, aioredis.RedisError, aiomysql.Error):
            return False
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batch)
        accepted: list[tuple[int, Submission]] = []
        refused: list[tuple[int, Outcome]] = []
        for index, envelope in enumerate(batch):
            checked = self.submission_of(envelope)
            if isinstance(checked, Submission):
                accepted.append((index, checked))
            elif checked.kind is OutcomeKind.REJECTED:
                refused.append((index, checked))  # final once the script sets its marker
            else:
                outcomes[index] = checked
        results = await self._script.apply(
            [sub for _, sub in accepted],
            refused=[batch[index].idempotency_key for index, _ in refused],
        )
        applied: list[tuple[Submission, ScoreResult]] = []
        for (index, sub), result in zip(accepted, results[: len(accepted)], strict=True):
            outcomes[index] = self._outcome(batch[index], sub, result)
            if result.status is ScoreStatus.APPLIED:
                applied.append((sub, result))
        for (index, refusal), result in zip(refused, results[len(accepted) :], strict=True):
            if result.status is ScoreStatus.DUPLICATE:
                outcomes[index] = Outcome.duplicate()
            else:
                self._count_rejection(batch[index], refusal)
                outcomes[index] = refusal
        await self._journal.copy(applied)
        final = [outcome for outcome in outcomes if outcome is not None]
        if self._settings.close_lazily:
            final = await self._close_due_periods(final)
        return final

    def submission_of(self, envelope: Envelope) -> Submission | Outcome:
        """The submission to apply, or the final outcome of an event refused before scoring."""
        if envelope.WhichOneof("payload") != "score_submitted":
            return Outcome.failed(f"not a score submission: {envelope.WhichOneof('payload')}")
        too_long = [
            name for name, limit in _ID_LIMITS.items() if len(getattr(envelope, name)) > limit
        ]
        if too_long:
            # The MySQL record could not hold it: refuse it here, or it would block the journal.
            return Outcome.failed(f"{', '.join(too_long)} longer than the record allows")
        submitted = envelope.score_submitted
        received_at = (
            envelope.received_at.ToDatetime(tzinfo=UTC)
            if envelope.HasField("received_at")
            else self._clock()
        )
        board = self._definitions.get(submitted.leaderboard_id)
        if board is None:
            return self._reject(
                envelope,
                "",
                submitted.score,
                Reason.SCORE_REJECTION_REASON_UNKNOWN_LEADERBOARD,
            )
        period = self._period_of(board, received_at)
        if not board.is_open_at(received_at):
            return self._reject(
                envelope,
                period.key,
                submitted.score,
                Reason.SCORE_REJECTION_REASON_CLOSED,
            )
        if not board.min_score <= submitted.score <= board.max_score:
            return self._reject(
                envelope,
                period.key,
                submitted.score,
                Reason.SCORE_REJECTION_REASON_OUT_OF_RANGE,
            )
        return Submission(
            idempotency_key=envelope.idempotency_key,
            event_id=envelope.event_id,
            player_id=envelope.player_id,
            board=board,
            period=period,
            score=submitted.score,
            received_at=received_at,
        )

    def _period_of(self, board: LeaderboardDefinition, instant: datetime) -> LeaderboardPeriod:
        """period_at, remembering the last answer per board (nearly every event hits it)."""
        known = self._periods.get(board.id)
        if known is None or not known.contains(instant):
            known = self._periods[board.id] = period_at(board, instant)
        return known

    def _count_rejection(self, envelope: Envelope, outcome: Outcome) -> None:
        """The rejections metric, once the refusal is final (not a redelivered one)."""
        board_id = envelope.score_submitted.leaderboard_id
        label = board_id if self._definitions.get(board_id) is not None else "unknown"
        self._rejections.labels(label, outcome.reason).inc()

    def _reject(
        self,
        envelope: Envelope,
        period: str,
        score: int,
        reason: events.RejectionReason,
    ) -> Outcome:
        name = Reason.Name(reason).removeprefix("SCORE_REJECTION_REASON_").lower()
        output = events.score_rejected(
            envelope,
            at=self._event_time(envelope),
            leaderboard_id=envelope.score_submitted.leaderboard_id,
            period=period,
            score=score,
            reason=reason,
        )
        return Outcome.rejected(name, output)

    def _event_time(self, envelope: Envelope) -> datetime:
        if envelope.HasField("received_at"):
            return envelope.received_at.ToDatetime(tzinfo=UTC)
        return self._clock()

    def _outcome(self, envelope: Envelope, sub: Submission, result: ScoreResult) -> Outcome:
        if result.status is ScoreStatus.DUPLICATE:
            return Outcome.duplicate()
        if result.status is not ScoreStatus.APPLIED:
            rejected = self._reject(envelope, sub.period.key, sub.score, _REASONS[result.status])
            self._count_rejection(envelope, rejected)
            return rejected
        return Outcome.applied(*self._rank_events(envelope, sub, result))

    def _rank_events(
        self, envelope: Envelope, sub: Submission, result: ScoreResult
    ) -> list[OutputEvent]:
        outputs = rank_changes(envelope, sub, result)
        for output in outputs:
            kind = output.envelope.leaderboard_rank_changed.kind
            self._rank_changes.labels(sub.board.id, events.RankChangeKind.Name(kind)).inc()
        return outputs

    async def _close_due_periods(self, outcomes: list[Outcome]) -> list[Outcome]:
        carrier = next((i for i, o in enumerate(outcomes) if o.kind in _FINAL), None)
        if carrier is None:
            return outcomes
        prizes = await self._closer.due_prizes(self._clock())
        if prizes:
            first = outcomes[carrier]
            outcomes[carrier] = dataclasses.replace(first, outputs=(*first.outputs, *prizes))
        return outcomes
