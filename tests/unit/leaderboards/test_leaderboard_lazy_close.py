"""LazyCloser: which periods it closes and when, and that a period counts as announced only once
the broker acknowledged its prizes (plain fakes of the stores, the producer and the group's
offsets)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from workers.errors import DependencyUnavailableError
from workers.processors.leaderboards import events
from workers.processors.leaderboards.closing import ClosedPeriod, PeriodState
from workers.processors.leaderboards.definitions import LeaderboardDefinition, parse_definitions
from workers.processors.leaderboards.due import period_end
from workers.processors.leaderboards.errors import GroupPositionUnknownError
from workers.processors.leaderboards.lazyclose import RETRY_READ_AFTER_S, CloserMetrics, LazyCloser
from workers.processors.leaderboards.periods import LeaderboardPeriod
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.processors.leaderboards.store import ArchivedEntry
from workers.runtime.processor import OutputEvent

DEFINITIONS = parse_definitions(
    """
version = "unit"
[[leaderboards]]
id = "arena"
reset = "weekly"
max_score = 1000
archive_top_n = 3
"""
)
#: Five minutes into 2026-W49: week 48 ended at midnight.
MONDAY = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)
W48_END = datetime(2026, 11, 30, tzinfo=UTC)
SETTINGS = LeaderboardSettings(
    close_grace_s=60, close_check_interval_s=5, close_max_wait_s=3600, close_lookback_periods=7
)
Key = tuple[str, str]


class FakePeriods:
    """The stores: a state per period (default: nothing there), the closes made, the markers."""

    def __init__(self, states: dict[str, PeriodState] | None = None) -> None:
        self.states = states or {}
        self.state_reads: list[str] = []
        self.closes: list[ClosedPeriod] = []
        self.announced: set[Key] = set()
        #: When a closer first found each period due (Redis, shared by workers and restarts).
        self.waits: dict[Key, datetime] = {}
        self.marked = asyncio.Event()

    async def state(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> PeriodState:
        self.state_reads.append(period.key)
        return self.states.get(period.key, PeriodState(False, False, False))

    async def close(
        self, board: LeaderboardDefinition, period: LeaderboardPeriod, now: datetime
    ) -> ClosedPeriod:
        end = period_end(board, period)
        assert end is not None
        entries = tuple(ArchivedEntry(r, p, 10 - r, 10 - r) for r, p in ((1, "ann"), (2, "bob")))
        prizes = tuple(
            events.prize_awarded(
                closed_at=end,
                leaderboard_id=board.id,
                period=period.key,
                player_id=e.player_id,
                rank=e.final_rank,
            )
            for e in entries
        )
        newly = all(c.period != period.key for c in self.closes)
        closed = ClosedPeriod(board.id, period.key, newly, entries, prizes)
        self.closes.append(closed)
        return closed

    async def is_announced(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> bool:
        return (board.id, period.key) in self.announced

    async def mark_announced(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> None:
        self.announced.add((board.id, period.key))
        self.marked.set()

    async def waiting_since(
        self, board: LeaderboardDefinition, period: LeaderboardPeriod, now: datetime
    ) -> datetime:
        return self.waits.setdefault((board.id, period.key), now)


class FakePrizes:
    """The producer: fails the first `failures` publishes, then acknowledges."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.acked: list[list[str]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, outputs: Sequence[OutputEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise DependencyUnavailableError("kafka: broker down")
        self.acked.append([o.envelope.event_id for o in outputs])


class FakeWatermark:
    """The group's offsets: consumed everything received before `position`."""

    def __init__(self) -> None:
        self.position: datetime | None = None
        self.failing = False
        self.reads = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def read(self, instants: Sequence[datetime]) -> dict[datetime, bool]:
        self.reads += 1
        if self.failing:
            raise GroupPositionUnknownError("group liveops.leaderboards: timed out")
        return {i: self.position is not None and i <= self.position for i in instants}


def closer_of(
    periods: FakePeriods,
    prizes: FakePrizes,
    watermark: FakeWatermark | None = None,
    *,
    settings: LeaderboardSettings = SETTINGS,
    clock_at: datetime = MONDAY,
) -> tuple[LazyCloser, CollectorRegistry]:
    registry = CollectorRegistry()
    closer = LazyCloser(
        periods,
        prizes,
        watermark,
        definitions=DEFINITIONS,
        settings=settings,
        metrics=CloserMetrics.register(registry),
        clock=lambda: clock_at,
    )
    return closer, registry


def counted(registry: CollectorRegistry, name: str, leaderboard: str | None = "arena") -> float:
    labels = {} if leaderboard is None else {"leaderboard": leaderboard}
    return registry.get_sample_value(f"liveops_leaderboard_{name}_total", labels) or 0.0


async def test_a_period_is_announced_only_once_the_broker_acknowledged_its_prizes() -> None:
    # Given a broker that refuses the first publish,
    periods, prizes = FakePeriods(), FakePrizes(failures=1)
    closer, registry = closer_of(periods, prizes)

    # When the first batch after the reset closes week 48,
    await closer.close_due(MONDAY)

    # Then it is archived but not announced: still pending, the failure counted.
    assert [c.period for c in periods.closes] == ["2026-W48"]
    assert periods.announced == set() and prizes.acked == []
    assert closer.pending == [("arena", "2026-W48")]
    assert counted(registry, "prize_publish_failures") == 1

    # When the next batch comes, the same prizes (same ids) go out and the period is announced.
    await closer.close_due(MONDAY + timedelta(seconds=1))
    first_ids = [o.envelope.event_id for o in periods.closes[0].outputs]
    assert prizes.acked == [first_ids]
    assert periods.announced == {("arena", "2026-W48")} and closer.pending == []
    assert counted(registry, "prizes_published") == 2
    assert counted(registry, "periods_closed") == 1  # archived once, announced twice

    # And later batches leave it alone.
    await closer.close_due(MONDAY + timedelta(seconds=2))
    assert len(periods.closes) == 2 and len(prizes.acked) == 1


async def test_a_period_announced_by_another_worker_is_not_announced_again() -> None:
    periods, prizes = FakePeriods({"2026-W48": PeriodState(True, True, True)}), FakePrizes()
    closer, _ = closer_of(periods, prizes)
    await closer.close_due(MONDAY)
    assert periods.closes == [] and closer.pending == []

    # Announced in between the look-back and the close (the CLI, another replica): the same.
    periods = FakePeriods()
    closer, _ = closer_of(periods, prizes, watermark := FakeWatermark())
    await closer.close_due(MONDAY)  # waits for the group
    periods.announced.add(("arena", "2026-W48"))
    watermark.position = W48_END
    await closer.close_due(MONDAY + timedelta(seconds=5))
    assert periods.closes == [] and closer.pending == [] and prizes.acked == []


async def test_missed_periods_are_closed_oldest_first_and_looked_for_once_per_reset() -> None:
    # Given the weeks before 48: 47 archived but never announced, 46 with submissions,
    # 45 with nothing, 44 announced.
    periods = FakePeriods(
        {
            "2026-W47": PeriodState(announced=False, archived=True, active=True),
            "2026-W46": PeriodState(announced=False, archived=False, active=True),
            "2026-W44": PeriodState(announced=True, archived=True, active=True),
        }
    )
    prizes = FakePrizes()
    closer, _ = closer_of(periods, prizes)

    # When the process starts after the reset,
    await closer.close_due(MONDAY)

    # Then it looked back to week 44 (older keys are past the 30-day retention), and closed
    # 46, 47 and 48, oldest first.
    assert sorted(periods.state_reads) == [f"2026-W{n}" for n in range(44, 49)]
    assert [c.period for c in periods.closes] == ["2026-W46", "2026-W47", "2026-W48"]
    assert len(prizes.acked) == 3

    # A later batch of the same week reads no store; the next reset looks back again.
    periods.state_reads.clear()
    await closer.close_due(MONDAY + timedelta(hours=5))
    assert periods.state_reads == []
    await closer.close_due(MONDAY + timedelta(days=7))
    assert "2026-W49" in periods.state_reads and "2026-W46" not in periods.state_reads
    assert [c.period for c in periods.closes][-1] == "2026-W49"


async def test_a_due_period_waits_for_the_group_reading_offsets_at_most_every_interval() -> None:
    periods, prizes, watermark = FakePeriods(), FakePrizes(), FakeWatermark()
    closer, _ = closer_of(periods, prizes, watermark)

    # Given a group still behind the end of week 48:
    await closer.close_due(MONDAY)
    await closer.close_due(MONDAY + timedelta(seconds=1))
    assert watermark.reads == 1 and periods.closes == []

    # When it has consumed past it, the period closes at the next read, not before.
    watermark.position = W48_END
    await closer.close_due(MONDAY + timedelta(seconds=4))
    assert periods.closes == []
    await closer.close_due(MONDAY + timedelta(seconds=5))
    assert watermark.reads == 2 and [c.period for c in periods.closes] == ["2026-W48"]

    # Nothing pending: no more reads.
    await closer.close_due(MONDAY + timedelta(minutes=1))
    assert watermark.reads == 2


async def test_a_failed_offset_read_keeps_the_period_waiting_and_is_tried_again_later() -> None:
    periods, prizes, watermark = FakePeriods(), FakePrizes(), FakeWatermark()
    closer, registry = closer_of(periods, prizes, watermark)
    watermark.failing, watermark.position = True, W48_END

    await closer.close_due(MONDAY)
    assert periods.closes == [] and counted(registry, "group_offset_read_failures", None) == 1

    watermark.failing = False
    await closer.close_due(MONDAY + timedelta(seconds=RETRY_READ_AFTER_S - 1))
    assert watermark.reads == 1 and periods.closes == []
    await closer.close_due(MONDAY + timedelta(seconds=RETRY_READ_AFTER_S))
    assert [c.period for c in periods.closes] == ["2026-W48"]


async def test_a_period_closes_anyway_after_the_longest_wait_counted_once() -> None:
    # Given a group that never gets past the end, and a broker refusing the first publish,
    periods, prizes, watermark = FakePeriods(), FakePrizes(failures=1), FakeWatermark()
    closer, registry = closer_of(periods, prizes, watermark)
    await closer.close_due(MONDAY)
    await closer.close_due(MONDAY + timedelta(seconds=3599))
    assert periods.closes == []

    # When an hour (close_max_wait_s) has passed, it is closed anyway, and counted once.
    await closer.close_due(MONDAY + timedelta(seconds=3600))
    await closer.close_due(MONDAY + timedelta(seconds=3601))
    assert [c.period for c in periods.closes] == ["2026-W48", "2026-W48"]
    assert periods.announced == {("arena", "2026-W48")}
    assert counted(registry, "periods_closed_overdue") == 1


async def test_the_longest_wait_counts_from_the_first_worker_that_found_the_period_due() -> None:
    # Given a worker that found week 48 due at MONDAY and waited 50 minutes for the group,
    periods, prizes, watermark = FakePeriods(), FakePrizes(), FakeWatermark()
    first, _ = closer_of(periods, prizes, watermark)
    await first.close_due(MONDAY)
    await first.close_due(MONDAY + timedelta(minutes=50))

    # When it is restarted (or another replica takes over) and the group is still behind,
    restarted, registry = closer_of(periods, prizes, watermark)
    await restarted.close_due(MONDAY + timedelta(minutes=51))
    assert periods.closes == []

    # Then the period closes an hour after MONDAY, not an hour after the restart.
    await restarted.close_due(MONDAY + timedelta(seconds=3600))
    assert [c.period for c in periods.closes] == ["2026-W48"]
    assert counted(registry, "periods_closed_overdue") == 1


async def test_the_closers_own_tick_closes_a_period_when_no_batch_comes() -> None:
    # Given a closer started with a short tick and no batch ever handled,
    periods, prizes = FakePeriods(), FakePrizes()
    ticking = SETTINGS.model_copy(update={"close_idle_check_s": 0.01})
    closer, _ = closer_of(periods, prizes, settings=ticking, clock_at=MONDAY)
    await closer.start()
    try:
        # When the tick has run,
        await asyncio.wait_for(periods.marked.wait(), timeout=5)
    finally:
        await closer.stop()

    # Then week 48 was closed and its prizes acknowledged, once.
    assert periods.announced == {("arena", "2026-W48")}
    assert [c.period for c in periods.closes] == ["2026-W48"] and len(prizes.acked) == 1


class BuggyPeriods(FakePeriods):
    """Stores whose first state read fails with an error nothing expects (a bug)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def state(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> PeriodState:
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bug in the closer's stores")
        return await super().state(board, period)


async def test_an_unexpected_error_in_a_tick_is_logged_and_the_next_tick_still_runs() -> None:
    periods, prizes = BuggyPeriods(), FakePrizes()
    ticking = SETTINGS.model_copy(update={"close_idle_check_s": 0.01})
    closer, _ = closer_of(periods, prizes, settings=ticking, clock_at=MONDAY)
    await closer.start()
    try:
        await asyncio.wait_for(periods.marked.wait(), timeout=5)
    finally:
        await closer.stop()
    assert periods.failed
    assert periods.announced == {("arena", "2026-W48")} and len(prizes.acked) == 1


async def test_a_closer_without_a_tick_runs_only_when_called() -> None:
    periods, prizes = FakePeriods(), FakePrizes()
    quiet = SETTINGS.model_copy(update={"close_idle_check_s": 0})
    closer, _ = closer_of(periods, prizes, settings=quiet)
    await closer.start()
    await asyncio.sleep(0.05)
    await closer.stop()
    assert periods.closes == [] and periods.state_reads == []


async def test_without_the_group_check_a_period_closes_after_the_grace() -> None:
    periods, prizes = FakePeriods(), FakePrizes()
    closer, _ = closer_of(periods, prizes)
    await closer.close_due(W48_END + timedelta(seconds=59))
    assert [c.period for c in periods.closes] == ["2026-W47"]  # the latest past its grace
    await closer.close_due(W48_END + timedelta(seconds=60))
    assert [c.period for c in periods.closes] == ["2026-W47", "2026-W48"]


async def test_after_a_failed_publish_no_other_period_is_tried_in_the_same_batch() -> None:
    # Given two periods due (week 47 missed, with submissions) and a broker down once,
    periods = FakePeriods({"2026-W47": PeriodState(announced=False, archived=False, active=True)})
    prizes = FakePrizes(failures=1)
    closer, _ = closer_of(periods, prizes)

    # When a batch fails to publish the first one's prizes, the second waits (each publish
    # would wait for the broker again); the next batch announces both.
    await closer.close_due(MONDAY)
    assert [c.period for c in periods.closes] == ["2026-W47"]
    await closer.close_due(MONDAY + timedelta(seconds=1))
    assert [c.period for c in periods.closes] == ["2026-W47", "2026-W47", "2026-W48"]
    assert periods.announced == {("arena", "2026-W47"), ("arena", "2026-W48")}


def test_every_boards_closing_series_exists_at_zero_before_anything_happens() -> None:
    # rate() and increase() cannot see a series' first sample: an overdue close or a failed
    # publish, rare enough to be a board's only one on a pod, would never alert otherwise.
    _, registry = closer_of(FakePeriods(), FakePrizes())

    names = (
        "periods_closed",
        "periods_closed_overdue",
        "prize_publish_failures",
        "prizes_published",
    )
    for board in DEFINITIONS:
        for name in names:
            sample = f"liveops_leaderboard_{name}_total"
            assert registry.get_sample_value(sample, {"leaderboard": board.id}) == 0.0, name
