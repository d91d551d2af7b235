"""The processor's side of closing: after each batch, and every `close_idle_check_s` on its
own (so periods close when no submission arrives), close the finished periods that are due.

handle() and the closer's own tick call `close_due`; one runs it at a time (a batch that finds
it running goes on without it). In this order:
1. Look back, for each board whose latest finished period (`close_grace_s` past its end,
   due.py) is new to this process (its start, or a reset since): that period, and the earlier
   ones it may have missed (`close_lookback_periods`) that were never announced and either
   were closed already (prizes maybe never out) or have submissions. These are the only MySQL
   reads: once per new period, not per batch. Each becomes pending, waiting since the first
   worker found it due (recorded in Redis, so a restart does not start the wait again).
2. While a period is pending, at most every `close_check_interval_s`: read whether the
   consumer group has consumed past each pending end on every input partition (watermark.py).
   A failed read is logged and counts as "not yet"; the next one waits longer.
3. Oldest first, close each pending period the group consumed past, or that waited
   `close_max_wait_s` (closed anyway: a warning and a metric); publish its prizes with this
   closer's own producer; once the broker acknowledged every one, mark it announced in Redis.
   A failed close or publish is logged and the period stays pending: the next run tries
   again, with the same event ids (after a failed publish, no other this batch: each would
   wait for the broker too). Nothing here fails a batch.
Why the prizes are not a batch's outputs: the runtime may fail to settle that batch (its
before_commit(), its publish) and handle its records again, and the period, remembered as
announced, would never be announced again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pymysql
import redis.exceptions
import structlog
from prometheus_client import CollectorRegistry, Counter

from schemas.codec import now_utc
from workers.errors import DependencyUnavailableError, TransientError, WorkerError
from workers.processors.leaderboards.closing import PeriodStore
from workers.processors.leaderboards.definitions import Definitions, LeaderboardDefinition
from workers.processors.leaderboards.due import (
    CloseVerdict,
    close_verdict,
    due_period,
    missed_periods,
    period_end,
)
from workers.processors.leaderboards.errors import GroupPositionUnknownError
from workers.processors.leaderboards.periods import LeaderboardPeriod
from workers.processors.leaderboards.publishing import PrizeSender
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.processors.leaderboards.watermark import Watermark
from workers.runtime.processor import OutputEvent
from workers.runtime.tasks import Periodic

log = structlog.get_logger(__name__)
#: What Redis and MySQL raise when they fail (WorkerError: what closing.py raises).
_STORE_ERRORS = (WorkerError, redis.exceptions.RedisError, pymysql.err.Error, OSError)
#: After a failed read of the group's offsets, the next one waits at least this long: a read
#: that times out holds up the batch that made it.
RETRY_READ_AFTER_S = 30.0
#: How long stop() lets a run of the closer's own tick finish before cancelling it.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class CloserMetrics:
    closed: Counter
    overdue: Counter
    prizes_published: Counter
    prize_failures: Counter
    read_failures: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> CloserMetrics:
        def counter(name: str, text: str, labels: Sequence[str] = ("leaderboard",)) -> Counter:
            return Counter(name, text, labels, registry=registry)

        return cls(
            counter("liveops_leaderboard_periods_closed", "Periods archived by this process."),
            counter(
                "liveops_leaderboard_periods_closed_overdue",
                "Periods closed after close_max_wait_s, the group not past their end.",
            ),
            counter(
                "liveops_leaderboard_prizes_published",
                "Prize events the broker acknowledged, published by the lazy closer.",
            ),
            counter(
                "liveops_leaderboard_prize_publish_failures",
                "Attempts to publish a closed period's prizes that failed (tried again).",
            ),
            counter(
                "liveops_leaderboard_group_offset_read_failures",
                "Failed reads of the group's offsets by the lazy closer.",
                (),
            ),
        )


@dataclass
class _Pending:
    board: LeaderboardDefinition
    period: LeaderboardPeriod
    end: datetime
    waiting_since: datetime
    overdue: bool = False


class LazyCloser:
    """Runs steps 1-3 of the module docstring; `start()` before the first batch."""

    def __init__(
        self,
        periods: PeriodStore,
        prizes: PrizeSender,
        watermark: Watermark | None,
        *,
        definitions: Definitions,
        settings: LeaderboardSettings,
        metrics: CloserMetrics,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        """`watermark` None: periods close after the grace, without waiting for the group.
        `clock` is what the closer's own tick takes as now (batches pass theirs)."""
        self._periods = periods
        self._prizes = prizes
        self._watermark = watermark
        self._definitions = definitions
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._ticker = Periodic(
            self._tick,
            settings.close_idle_check_s,
            name="leaderboards closer tick",
            at_once=False,
            grace_s=STOP_GRACE_S,
        )
        # Every board's series exist from the start, at 0: rate() and increase() cannot see a
        # series' first sample, so an alert would miss the first overdue close or failed
        # publish of a board on this pod, and those are rare enough to be the only one.
        for board in definitions:
            for counter in (metrics.closed, metrics.overdue, metrics.prize_failures):
                counter.labels(board.id)
            metrics.prizes_published.labels(board.id)
        #: (board, period) known announced; pending ones, waiting or failed.
        self._announced: set[tuple[str, str]] = set()
        self._pending: dict[tuple[str, str], _Pending] = {}
        #: Per board, the latest finished period looked back from (step 1).
        self._looked_back: dict[str, str] = {}
        #: Ends the group has consumed past (never undone: committed offsets only grow).
        self._consumed: set[datetime] = set()
        self._next_read_at: datetime | None = None
        #: The input loop and the retry loop share the processor: one closes at a time.
        self._busy = asyncio.Lock()

    async def start(self) -> None:
        """Start the Kafka clients, then the closer's own tick (unless `close_idle_check_s`
        is 0)."""
        await self._prizes.start()
        if self._watermark is not None:
            try:
                await self._watermark.start()
            except BaseException:
                await self._prizes.stop()
                raise
        self._ticker.start()

    async def stop(self) -> None:
        """Stop the tick (a run in progress gets STOP_GRACE_S to finish; stop_within, as a
        cancellation may be dropped), then the Kafka clients."""
        try:
            await self._ticker.stop()
            if self._watermark is not None:
                await self._watermark.stop()
        finally:
            await self._prizes.stop()

    async def _tick(self) -> None:
        """close_due, every `close_idle_check_s`: without submissions, no batch would run it."""
        try:
            await self.close_due(self._clock())
        except Exception:  # a bug here must not end the tick: log it, tick again
            log.exception("leaderboards closer tick failed")

    @property
    def pending(self) -> list[tuple[str, str]]:
        """(board, period) of the periods due and not announced yet, oldest first."""
        return [key for key, _ in self._in_order()]

    async def close_due(self, now: datetime) -> None:
        """Steps 1-3; logs and counts failures, never raises them."""
        if self._busy.locked():
            return  # the other loop of this processor is at it
        async with self._busy:
            for board in self._definitions:
                await self._look_back(board, now)
            if not self._pending:
                return
            await self._read_watermark(now)
            for key, item in self._in_order():
                if not await self._close(key, item, now):
                    break  # the broker failed: each publish would wait for it again

    def _in_order(self) -> list[tuple[tuple[str, str], _Pending]]:
        return sorted(self._pending.items(), key=lambda kv: (kv[1].end, kv[0]))

    async def _look_back(self, board: LeaderboardDefinition, now: datetime) -> None:
        latest = due_period(board, now, self._settings.close_grace_s)
        if latest is None or self._looked_back.get(board.id) == latest.key:
            return
        lookback = self._settings.close_lookback_periods
        try:
            for period in (*missed_periods(board, latest, now, lookback), latest):
                key = (board.id, period.key)
                end = period_end(board, period)
                if end is None or key in self._announced or key in self._pending:
                    continue
                state = await self._periods.state(board, period)
                if state.announced or (state.archived and not board.award_prizes):
                    self._announced.add(key)
                elif period.key == latest.key or state.archived or state.active:
                    since = await self._periods.waiting_since(board, period, now)
                    self._pending[key] = _Pending(board, period, end, waiting_since=since)
        except _STORE_ERRORS as exc:
            log.warning("leaderboard look-back failed", leaderboard=board.id, error=str(exc))
            return  # the next run looks again
        self._looked_back[board.id] = latest.key

    async def _read_watermark(self, now: datetime) -> None:
        if self._watermark is None or (self._next_read_at and now < self._next_read_at):
            return
        ends = sorted({p.end for p in self._pending.values()} - self._consumed)
        if not ends:
            return
        interval = timedelta(seconds=self._settings.close_check_interval_s)
        try:
            answers = await self._watermark.read(ends)
        except GroupPositionUnknownError as exc:
            self._metrics.read_failures.inc()
            log.warning("group offsets not read; periods keep waiting", error=str(exc))
            self._next_read_at = now + max(interval, timedelta(seconds=RETRY_READ_AFTER_S))
            return
        self._next_read_at = now + interval
        self._consumed |= {end for end, past in answers.items() if past}

    async def _close(self, key: tuple[str, str], item: _Pending, now: datetime) -> bool:
        """Close and announce one pending period when its verdict says so; False when its
        prizes could not be published."""
        verdict = close_verdict(
            consumed=self._watermark is None or item.end in self._consumed,
            waiting_since=item.waiting_since,
            now=now,
            max_wait_s=self._settings.close_max_wait_s,
        )
        if verdict is CloseVerdict.WAIT:
            return True
        board, period = item.board, item.period
        if verdict is CloseVerdict.OVERDUE and not item.overdue:
            item.overdue = True
            self._metrics.overdue.labels(board.id).inc()
            log.warning(
                "closing a leaderboard period before the group consumed past its end",
                leaderboard=board.id,
                period=period.key,
                waited_s=int((now - item.waiting_since).total_seconds()),
            )
        try:
            if await self._periods.is_announced(board, period):
                self._announced_now(key)
                return True
            closed = await self._periods.close(board, period, now)
        except TransientError:
            return True  # another worker holds the closing lock: look again next run
        except _STORE_ERRORS as exc:
            log.warning(
                "leaderboard period close failed",
                leaderboard=board.id,
                period=period.key,
                error=str(exc),
            )
            return True
        if closed.newly_closed:
            self._metrics.closed.labels(board.id).inc()
        if closed.outputs and not await self._published(item, closed.outputs):
            return False
        try:
            await self._periods.mark_announced(board, period)
        except _STORE_ERRORS as exc:  # the prizes are out: at worst announced again, same ids
            log.warning("announced marker not set", leaderboard=board.id, error=str(exc))
        self._announced_now(key)
        return True

    async def _published(self, item: _Pending, prizes: Sequence[OutputEvent]) -> bool:
        try:
            await self._prizes.publish(prizes)
        except DependencyUnavailableError as exc:
            self._metrics.prize_failures.labels(item.board.id).inc()
            log.warning(
                "leaderboard prizes not published; trying again with the next batch or tick",
                leaderboard=item.board.id,
                period=item.period.key,
                prizes=len(prizes),
                error=str(exc),
            )
            return False
        self._metrics.prizes_published.labels(item.board.id).inc(len(prizes))
        return True

    def _announced_now(self, key: tuple[str, str]) -> None:
        item = self._pending.pop(key)
        self._announced.add(key)
        if all(p.end != item.end for p in self._pending.values()):
            self._consumed.discard(item.end)
