"""The leaderboards processor: ScoreSubmitted events in, ranks in Redis, rank changes out.

Per batch, in this order:
1. Check each submission in memory: a known board, open at `received_at`, score in range;
   refusals become REJECTED outcomes with a ScoreRejected output and a metric (unless the
   script of step 2 finds the event done before: then DUPLICATE, with the same output if
   the first delivery was refused too, step 3).
2. Apply the rest in ONE Lua call (scoring.py): dedup marker, closed period, rate limit,
   operator, ranks before and after, journal entry; atomic per submission. The same call
   checks and sets the markers of the events refused in step 1. Every final event's marker
   is set by this call, so the processor guards itself (DedupMode.PROCESSOR): the runtime
   skips its Redis claim and marks, two round trips per batch. Two workers with the same
   event (a rebalance) both run the script; Redis runs one at a time; the second finds
   `done` and reports DUPLICATE.
3. Turn rank movements into LeaderboardRankChanged outputs (entered a top-N threshold, reached
   first, overtaken from first), with ids derived from the source event. A DUPLICATE whose
   first answer the script kept (it made outputs: a refusal, or ranks; and this is the same
   event id, a redelivery, not a client's retry) carries the same outputs again, rebuilt
   from that answer (same ids, same content): its first delivery may have died, or failed
   in before_commit(), before the broker acknowledged them. Outputs are at least once;
   consumers drop a copy by its event id.
4. Queue the applied submissions' MySQL rows, built from the script's answer; before_commit()
   (the runtime calls it before it publishes the batch's outputs and commits its offsets,
   possibly while the next batch is handled) inserts them and deletes their journal entries,
   so every submission whose offset the runtime commits is durable in MySQL too. If that
   fails, the rows stay queued and the entries in the journal; a batch with repeats (their
   first run may have died before its copy) and the first commit of a process copy the whole
   journal too, and the background copy catches up whatever is left.
5. Close the finished periods that are due (lazyclose.py; the closer also runs on its own
   every `close_idle_check_s`, for when no submission arrives): `close_grace_s` after their end at
   the earliest, once the consumer group has consumed past that end on every input partition
   (or `close_max_wait_s` later), and earlier ones missed while the workers were down. The
   closer publishes their prizes itself and marks a period announced only once the broker
   acknowledged them, so a batch that fails to settle and is handled again loses none. A
   failed close or publish is logged and tried again with the next batch; it never fails it.
Time is the gateway's `received_at` (the client clock is not trusted), so a redelivered or
retried submission lands in the same period with the same tie-break as its first delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

import aiomysql
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter

from schemas.codec import now_utc
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import LEADERBOARDS_GROUP, ConsumerGroup
from topics.settings import KafkaSettings
from workers.errors import DependencyUnavailableError, TransientError
from workers.processors.leaderboards import events
from workers.processors.leaderboards.closing import StoredPeriods
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.due import ever_due
from workers.processors.leaderboards.journal import JournalCopier
from workers.processors.leaderboards.lazyclose import CloserMetrics, LazyCloser
from workers.processors.leaderboards.periods import LeaderboardPeriod
from workers.processors.leaderboards.publishing import PrizePublisher
from workers.processors.leaderboards.ranks import rank_changes
from workers.processors.leaderboards.rules import BoardRules, instant_of, micros
from workers.processors.leaderboards.scoring import (
    STATUS_CODES,
    ScoreResult,
    ScoreStatus,
    ScoringCall,
    ScoringScript,
    Submission,
    result_of,
)
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.processors.leaderboards.store import SubmissionRow
from workers.processors.leaderboards.watermark import GroupWatermark
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
#: A submission checked before scoring: its board's rules, period, received_at in
#: microseconds, and the value the script applies (the score, negated on decrement boards).
_Checked = tuple[BoardRules, LeaderboardPeriod, int, int]


def _submission(envelope: Envelope, checked: _Checked) -> Submission:
    """The submission of an event that passed the checks made before scoring."""
    rules, period, us, _ = checked
    return Submission(
        idempotency_key=envelope.idempotency_key,
        event_id=envelope.event_id,
        player_id=envelope.player_id,
        board=rules.board,
        period=period,
        score=envelope.score_submitted.score,
        received_at=instant_of(us),
    )


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
        kafka: KafkaSettings | None = None,
        dedup_ttl_s: int = WEEK_S,
        metrics: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        """`kafka`: the worker's, for the lazy closer's producer and offset reads; required
        when `settings.close_lazily` (the default) and some board has periods that end."""
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
        self._rules = {board.id: BoardRules(board) for board in definitions}
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
        self._outputs_again = Counter(
            "liveops_leaderboard_outputs_again",
            "Outputs produced again for a redelivered submission (same ids), by board.",
            ["leaderboard"],
            registry=registry,
        )
        self._closer: LazyCloser | None = None
        if self._settings.close_lazily and any(ever_due(board) for board in definitions):
            if kafka is None:
                raise ValueError("close_lazily publishes prizes: pass the worker's kafka settings")
            self._closer = self._lazy_closer(kafka, registry)

    def _lazy_closer(self, kafka: KafkaSettings, registry: CollectorRegistry) -> LazyCloser:
        periods = StoredPeriods(
            self._redis,
            self._mysql,
            prefix=self._prefix,
            definitions_version=self._definitions.version,
        )
        watermark = None
        if self._settings.close_wait_for_group:
            watermark = GroupWatermark(
                kafka, self.group, retries=self._settings.close_wait_for_retries
            )
        return LazyCloser(
            periods,
            PrizePublisher(kafka),
            watermark,
            definitions=self._definitions,
            settings=self._settings,
            metrics=CloserMetrics.register(registry),
            clock=self._clock,
        )

    @property
    def definitions(self) -> Definitions:
        return self._definitions

    async def start(self) -> None:
        """Start the lazy closer's Kafka clients and the background journal copy; Redis and
        MySQL connections come from the runtime."""
        if self._closer is not None:
            await self._closer.start()
        self._journal.start()

    async def stop(self) -> None:
        """Stop the background copy and copy what is left, if Redis and MySQL still answer;
        stop the lazy closer's Kafka clients."""
        try:
            await self._journal.stop()
        finally:
            if self._closer is not None:
                await self._closer.stop()

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
        call = self._script.call()
        #: In call order: (index, refusal or None, the checked submission or None).
        sent: list[tuple[int, Outcome | None, _Checked | None]] = []
        for index, envelope in enumerate(batch):
            checked = self._check(envelope)
            if isinstance(checked, Outcome):
                if checked.kind is OutcomeKind.REJECTED:  # final once the script sets its marker
                    call.refuse(envelope.idempotency_key, envelope.event_id)
                    sent.append((index, checked, None))
                else:
                    outcomes[index] = checked
                continue
            rules, period, us, operand = checked
            call.add(
                call.spec(rules.board, period),
                operand,
                rules.tie_break(us),
                envelope.player_id,
                envelope.idempotency_key,
                envelope.event_id,
            )
            sent.append((index, None, checked))
        if sent:
            await self._apply(batch, call, sent, outcomes)
        if self._closer is not None:
            await self._closer.close_due(self._clock())
        return [outcome for outcome in outcomes if outcome is not None]

    async def before_commit(self) -> None:
        """Make the applied submissions of every batch handled so far durable in MySQL (the
        runtime's BeforeCommit hook: before it publishes a batch's outputs and commits its
        offsets, possibly while the next batch is handled). DependencyUnavailableError, named
        after the store that failed, when that cannot be done now."""
        try:
            await self._journal.copy()
        except TransientError as exc:  # a lock wait or deadlock: the batch waits all the same
            raise DependencyUnavailableError(str(exc)) from exc

    async def _apply(
        self,
        batch: Sequence[Envelope],
        call: ScoringCall,
        sent: list[tuple[int, Outcome | None, _Checked | None]],
        outcomes: list[Outcome | None],
    ) -> None:
        """One script call for the batch; outcomes and journal rows from its answer."""
        places, answers = await self._script.run(call)
        rows: list[SubmissionRow] = []
        applied = Outcome.applied()
        for (index, refusal, checked), answer in zip(sent, answers, strict=True):
            envelope = batch[index]
            kind = type(answer)
            if checked is not None and (kind is int or kind is list):
                rules, period, _, operand = checked
                journal = places.place(len(rows))
                value = answer if kind is int else answer[0]
                rows.append(
                    (
                        envelope.idempotency_key,
                        envelope.event_id,
                        rules.id,
                        period.key,
                        envelope.player_id,
                        operand,
                        value,
                        *journal,
                    )
                )
                outcomes[index] = (
                    applied
                    if kind is int
                    else self._ranked(envelope, checked, result_of(answer, journal))
                )
                continue
            status = STATUS_CODES.get(answer)
            if status is None or status is ScoreStatus.DUPLICATE:  # None: b"d:" + kept answer
                # Its row may be only in the journal (a first run died before copying it).
                self._journal.flush_before_commit()
                outcomes[index] = self._repeated(envelope, refusal, checked, answer)
            elif refusal is not None:
                self._count_rejection(envelope, refusal)
                outcomes[index] = refusal
            elif checked is not None:
                rules, period, _, _ = checked
                score = envelope.score_submitted.score
                rejected = self._reject(envelope, period.key, score, _REASONS[status])
                self._count_rejection(envelope, rejected)
                outcomes[index] = rejected
        self._journal.add(rows, places.entry_ids)

    def _check(self, envelope: Envelope) -> _Checked | Outcome:
        """The rules, period, received_at (us) and operand of a submission to apply, or the
        final outcome of an event refused before scoring."""
        payload = envelope.WhichOneof("payload")
        if payload != "score_submitted":
            return Outcome.failed(f"not a score submission: {payload}")
        if (
            len(envelope.player_id) > _ID_LIMITS["player_id"]
            or len(envelope.idempotency_key) > _ID_LIMITS["idempotency_key"]
            or len(envelope.event_id) > _ID_LIMITS["event_id"]
        ):
            too_long = [
                name for name, limit in _ID_LIMITS.items() if len(getattr(envelope, name)) > limit
            ]
            # The MySQL record could not hold it: refuse it here, or it would block the journal.
            return Outcome.failed(f"{', '.join(too_long)} longer than the record allows")
        submitted = envelope.score_submitted
        rules = self._rules.get(submitted.leaderboard_id)
        if rules is None:
            return self._reject(
                envelope, "", submitted.score, Reason.SCORE_REJECTION_REASON_UNKNOWN_LEADERBOARD
            )
        if envelope.HasField("received_at"):
            received = envelope.received_at
            us = received.seconds * 1_000_000 + received.nanos // 1000
        else:
            us = micros(self._clock())
        period = rules.period_at(us)
        score = submitted.score
        if not rules.is_open_at(us):
            return self._reject(envelope, period.key, score, Reason.SCORE_REJECTION_REASON_CLOSED)
        if not rules.min_score <= score <= rules.max_score:
            return self._reject(
                envelope, period.key, score, Reason.SCORE_REJECTION_REASON_OUT_OF_RANGE
            )
        return (rules, period, us, -score if rules.negate else score)

    def submission_of(self, envelope: Envelope) -> Submission | Outcome:
        """The submission to apply, or the final outcome of an event refused before scoring."""
        checked = self._check(envelope)
        if isinstance(checked, Outcome):
            return checked
        return _submission(envelope, checked)

    def _repeated(
        self,
        envelope: Envelope,
        refusal: Outcome | None,
        checked: _Checked | None,
        answer: bytes,
    ) -> Outcome:
        """A DUPLICATE, with the outputs of its first delivery when the script kept that
        delivery's answer: built again from it, so the same events with the same ids."""
        first = result_of(answer).first
        # Without received_at, the first outputs' times (and so their ids) came from the
        # clock: different events now, so none are made.
        if first is None or not envelope.HasField("received_at"):
            return Outcome.duplicate()
        outputs: Sequence[OutputEvent] = ()
        if first.status is ScoreStatus.APPLIED and checked is not None:
            outputs = self._rank_outputs(envelope, checked, first)
        elif first.status is ScoreStatus.REFUSED and refusal is not None:
            outputs = refusal.outputs
        elif first.status in _REASONS and checked is not None:
            score = envelope.score_submitted.score
            outputs = self._reject(envelope, checked[1].key, score, _REASONS[first.status]).outputs
        # Anything else: the board definitions changed since (refused then, accepted now, or
        # the reverse): what the first delivery produced cannot be rebuilt faithfully.
        if not outputs:
            return Outcome.duplicate()
        self._outputs_again.labels(self._board_label(envelope)).inc(len(outputs))
        return Outcome(OutcomeKind.DUPLICATE, "outputs again", tuple(outputs))

    def _board_label(self, envelope: Envelope) -> str:
        board_id = envelope.score_submitted.leaderboard_id
        return board_id if self._definitions.get(board_id) is not None else "unknown"

    def _count_rejection(self, envelope: Envelope, outcome: Outcome) -> None:
        """The rejections metric, once the refusal is final (not a redelivered one)."""
        self._rejections.labels(self._board_label(envelope), outcome.reason).inc()

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

    def _ranked(self, envelope: Envelope, checked: _Checked, result: ScoreResult) -> Outcome:
        """An applied submission whose ranks were read: its rank-changed events, if any."""
        outputs = self._rank_outputs(envelope, checked, result)
        for output in outputs:
            kind = output.envelope.leaderboard_rank_changed.kind
            self._rank_changes.labels(checked[0].id, events.RankChangeKind.Name(kind)).inc()
        return Outcome.applied(*outputs)

    def _rank_outputs(
        self, envelope: Envelope, checked: _Checked, result: ScoreResult
    ) -> list[OutputEvent]:
        return rank_changes(envelope, _submission(envelope, checked), result)
