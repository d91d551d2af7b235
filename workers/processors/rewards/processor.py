"""The rewards processor on the worker runtime: one MySQL transaction per batch.

handle(batch), in order:
1. re-read the rules file if it changed (at most every `reload_interval_s`);
2. open the transaction (read committed) and claim the batch's idempotency keys in
   processed_events in the same round trip (durable dedup, survives a Redis flush: one
   INSERT, read and lock first only when a key was claimed before); later copies of a key
   in the batch, and keys claimed before, are duplicates;
3. decide each fresh event against rules and campaigns (plan.py, pure; done for every event
   while the claim's INSERT is in flight, the fresh ones' decisions kept); ids too long for
   their columns fail here (actions.py), never in step 5;
4. once the earlier batches' writes are in (commits.py), read and lock cap counters and the
   purchases' ledger rows (and, under the `reject` policy, the wallet rows refunds and
   spends would debit); settle (pure);
5. hand the transaction to a Tail (commits.py), which writes ledger rows, wallet and
   inventory deltas, counter increments and refusals in multi-row statements, releases the
   claims of events that will come back (retry, dead letter), and COMMITs (with the last
   statements when the batches before have committed), while handle()
   returns one outcome per event with a RewardGranted output per grant, and the runtime goes
   on with the next batch. before_commit() waits for that COMMIT: the runtime publishes the
   outputs and commits the offsets only after it, and holds position if it failed.
Any exception in handle() rolls the whole batch back; the runtime sorts the error and decides.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ClassVar

import aiomysql
import pymysql
import structlog
from prometheus_client import CollectorRegistry, Counter

from schemas.codec import now_utc
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import REWARDS_GRANTED, REWARDS_GROUP, ConsumerGroup
from workers.processors.rewards import ledger
from workers.processors.rewards.actions import time_window
from workers.processors.rewards.commits import Tail, Tails
from workers.processors.rewards.errors import RulesFileError
from workers.processors.rewards.grants import GrantRecord
from workers.processors.rewards.plan import decide_batch
from workers.processors.rewards.rules import RuleBook, load_rule_book
from workers.processors.rewards.settings import RewardsSettings
from workers.processors.rewards.settle import Settled, Settlement, settle
from workers.processors.rewards.sql import while_in_flight
from workers.runtime.context import ProcessorFactory, WorkerContext
from workers.runtime.processor import DedupMode, Outcome, OutcomeKind, OutputEvent

log = structlog.get_logger(__name__)


def granted_event(record: GrantRecord, source: Envelope) -> OutputEvent:
    """RewardGranted for a grant; its ids are the grant id, so a redelivery repeats them.

    It keeps the source's times (end-to-end latency is measured from the gateway's), client
    and trace: the source is copied whole and everything else replaced (ids, payload) or
    dropped (unknown fields). One copy inside the protobuf runtime costs a fraction of
    copying those four fields one by one, and this runs for every grant of every batch.
    """
    head = record.first
    envelope = Envelope()
    envelope.CopyFrom(source)
    envelope.DiscardUnknownFields()
    envelope.ClearField("payload")
    envelope.event_id = head.grant_id
    envelope.idempotency_key = head.grant_id
    envelope.player_id = head.player_id
    record.fill(envelope.reward_granted)
    return OutputEvent(REWARDS_GRANTED, envelope)


class RewardsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.grants = Counter(
            "liveops_rewards_grants_total",
            "Grants, claw-backs and spends written to the ledger, by reason (the action).",
            ["reason"],
            registry=registry,
        )
        self.refusals = Counter(
            "liveops_rewards_refusals_total",
            "Events that earned nothing, by refusal code (capped, no_rule, ...).",
            ["reason"],
            registry=registry,
        )
        self.rule_reload_errors = Counter(
            "liveops_rewards_rule_reload_errors_total",
            "Rules file changes refused: unreadable or invalid (the old rules stay).",
            registry=registry,
        )


class RewardsProcessor:
    """Grants rewards exactly once into the MySQL ledger and wallet."""

    name: ClassVar[str] = "rewards"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = REWARDS_GROUP

    @property
    def dedup(self) -> DedupMode:
        """Who guards against a second application: the `dedup` setting (dedup_mode_of reads
        it). Either way the transaction's durable claim is the guard that counts."""
        return DedupMode(self._settings.dedup)

    def __init__(
        self,
        pool: aiomysql.Pool,
        settings: RewardsSettings,
        *,
        metrics: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._metrics = RewardsMetrics(metrics if metrics is not None else CollectorRegistry())
        self._clock = clock
        self._book: RuleBook | None = None
        self._rules_mtime_ns = 0
        self._next_check_s = 0.0
        self._tails = Tails(pool)

    @property
    def book(self) -> RuleBook:
        if self._book is None:
            raise RuntimeError("RewardsProcessor.start() was not called")
        return self._book

    async def start(self) -> None:
        """Load the rules; an invalid file stops the worker here rather than later."""
        await self.reload_rules(force=True)

    async def stop(self) -> None:
        """Let the transactions in flight finish; the pool belongs to the runtime."""
        await self._tails.stop()

    async def ready(self) -> bool:
        try:
            async with self._pool.acquire() as conn, conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
        except (pymysql.err.MySQLError, OSError):
            return False
        return self._book is not None

    async def reload_rules(self, *, force: bool = False) -> bool:
        """Re-read the rules file if it changed; True when new rules are in force.

        A broken file never replaces working rules: the error is logged and counted, and the
        old rules stay until the file is fixed.
        """
        path = self._settings.rules_path
        self._next_check_s = time.monotonic() + self._settings.reload_interval_s
        try:
            mtime_ns = (await asyncio.to_thread(path.stat)).st_mtime_ns
        except OSError as exc:
            if force or self._book is None:
                raise RulesFileError(f"{path}: cannot read: {exc.strerror}") from None
            self._metrics.rule_reload_errors.inc()
            log.warning("rules file unreadable, keeping old rules", path=str(path))
            return False
        if not force and mtime_ns == self._rules_mtime_ns:
            return False
        try:
            book = await asyncio.to_thread(load_rule_book, path)
        except RulesFileError as exc:
            if force or self._book is None:
                raise
            self._metrics.rule_reload_errors.inc()
            log.warning("rules file invalid, keeping old rules", error=str(exc))
            return False
        self._book, self._rules_mtime_ns = book, mtime_ns
        log.info(
            "rules loaded", path=str(path), rules=len(book.rules), campaigns=len(book.campaigns)
        )
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        if time.monotonic() >= self._next_check_s:
            await self.reload_rules()
        conn = await self._pool.acquire()
        tail: Tail | None = None
        try:
            cursor = await conn.cursor()
            # The claim (ledger.claim) opens the transaction, at READ COMMITTED.
            settled_after, settlement, first_copies, fresh = await self._settle(
                cursor, self.book, batch
            )
            earlier: dict[str, GrantRecord] = {}
            if len(fresh) < len(first_copies):
                # Grants of earlier deliveries, to publish their RewardGranted again.
                fresh_keys = {e.idempotency_key for e in fresh}
                earlier = await ledger.load_grants(
                    cursor, [key for key in first_copies if key not in fresh_keys]
                )
            # The writes and the COMMIT go on in a Tail; the statements after the ledger
            # rows, and the outcomes, are built while those are being written.
            derived: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()

            async def write() -> list[str]:
                await ledger.write_ledger(cursor, settlement)
                return await derived

            tail = self._tails.start(
                conn, cursor, write, lambda: self._count(settlement), after=settled_after
            )
            await asyncio.sleep(0)  # the tail sends the ledger rows
            try:
                derived.set_result(ledger.derived_statements(cursor, self.name, settlement))
                settled = {
                    e.idempotency_key: _outcome_of(result, e)
                    for e, result in zip(fresh, settlement.results, strict=True)
                }
            finally:
                if not derived.done():
                    derived.set_exception(RuntimeError("handle() failed before the writes"))
            return _assemble(batch, first_copies, settled, earlier)
        except BaseException:
            if tail is not None:
                await self._tails.abandon(tail)  # rolled back, not committed
            else:
                # Nothing of the batch may stay half-applied. If the connection is gone the
                # rollback fails too; the server drops the transaction with the connection.
                with contextlib.suppress(pymysql.err.MySQLError, OSError):
                    await conn.rollback()
                self._pool.release(conn)
            raise

    async def before_commit(self) -> None:
        """Wait until the transactions of the batches handled so far have committed (the
        runtime's BeforeCommit hook, before it publishes a batch's RewardGranted events and
        commits its offsets); DependencyUnavailableError when one of them could not."""
        await self._tails.wait_committed()

    async def _settle(
        self, cursor: aiomysql.Cursor, book: RuleBook, batch: Sequence[Envelope]
    ) -> tuple[list[Tail], Settlement, dict[str, Envelope], list[Envelope]]:
        """Claim, decide, read under lock and settle: the earlier tails whose writes our
        reads saw, the settlement, the first copy of each key and the freshly claimed
        events (in settlement order)."""
        first_copies: dict[str, Envelope] = {}
        for envelope in batch:
            first_copies.setdefault(envelope.idempotency_key, envelope)
        unique = list(first_copies.values())
        now = self._clock()
        with_segments = book.needs_segments(*time_window(unique, now))
        claiming = asyncio.ensure_future(ledger.claim(cursor, self.name, unique))
        async with while_in_flight(claiming, cursor):
            # Nearly every event is new: decide them all while MySQL inserts the claims
            # (decisions are per event, so those of the fresh ones are a plain subset).
            guessed = None if with_segments else decide_batch(book, unique, {}, now)
        fresh = await claiming
        if guessed is None:
            players = (e.player_id for e in fresh)
            segments = await ledger.load_segments(cursor, players)
            decisions = decide_batch(book, fresh, segments, now)
        elif len(fresh) == len(unique):
            decisions = guessed
        else:
            new_keys = {e.idempotency_key for e in fresh}
            decisions = [d for d in guessed if d.event.idempotency_key in new_keys]
        policy, spends = self._settings.negative_balance, self._settings.spend_negative_balance
        # Earlier batches' rows in place: our locking reads wait for them, and see them.
        written = await self._tails.wait_written()
        state = await ledger.load_state(cursor, decisions, policy, spends=spends)
        settlement = settle(decisions, state, policy, spends=spends)
        return written, settlement, first_copies, fresh

    def _count(self, settlement: Settlement) -> None:
        """Metrics of a committed batch (never of one rolled back), one inc() per label."""
        grants: collections.Counter[str] = collections.Counter()
        refusals: collections.Counter[str] = collections.Counter()
        for result in settlement.results:
            if result.record is not None:
                grants[result.record.first.reason] += 1
            elif result.refusal is not None:
                refusals[result.refusal.code.value] += 1
        for reason, n in grants.items():
            self._metrics.grants.labels(reason).inc(n)
        for code, n in refusals.items():
            self._metrics.refusals.labels(code).inc(n)


def _assemble(
    batch: Sequence[Envelope],
    first_copies: dict[str, Envelope],
    settled: dict[str, Outcome],
    earlier: dict[str, GrantRecord],
) -> list[Outcome]:
    """One outcome per event of the batch, in order, from those of the settled events and
    the grants earlier deliveries wrote."""
    firsts: dict[str, Outcome] = {}
    for key, envelope in first_copies.items():
        if key in settled:
            firsts[key] = settled[key]
        elif key in earlier:
            # Applied by an earlier delivery: publish its RewardGranted again (same ids),
            # in case that delivery died between the commit and the broker's ack.
            again = granted_event(earlier[key], envelope)
            firsts[key] = Outcome(OutcomeKind.DUPLICATE, "applied before", (again,))
        else:
            firsts[key] = Outcome.duplicate()
    outcomes: list[Outcome] = []
    for envelope in batch:
        first = firsts[envelope.idempotency_key]
        if first_copies[envelope.idempotency_key] is envelope:
            outcomes.append(first)
        elif first.kind in (OutcomeKind.RETRY, OutcomeKind.FAILED):
            # A copy marked done would make the runtime skip the original when it comes
            # back from the retry tier or the dead letters: it shares its fate instead.
            outcomes.append(Outcome(first.kind, first.reason))
        else:
            outcomes.append(Outcome(OutcomeKind.DUPLICATE, "repeated within the batch"))
    return outcomes


def _outcome_of(result: Settled, source: Envelope) -> Outcome:
    if result.record is None:
        return Outcome(result.kind, result.reason)
    return Outcome(result.kind, result.reason, (granted_event(result.record, source),))


def rewards_factory(settings: RewardsSettings | None = None) -> ProcessorFactory:
    """The registry's factory: the `rewards` section of the worker's settings, unless given."""

    def build(context: WorkerContext) -> RewardsProcessor:
        chosen = settings or context.settings.rewards
        return RewardsProcessor(context.mysql, chosen, metrics=context.metrics)

    return build
