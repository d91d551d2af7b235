"""From polled records to a plan: what to publish, which dedup keys to finish, what to count.

Shared by the input loop and the retry loop, so a retried event goes through exactly the same
steps: decode, dedup claim, handle, route (outputs, next retry tier, dead letter). Nothing here
touches offsets, and nothing is published: the loop does both, in order, from the Plan.

Every log line about one event (sent to a retry tier, dead-lettered) carries its `event_id`,
`player_id` and `trace_id` as keys of that line; a failure's message is scrubbed of the
event's sensitive payload values (schemas/redaction.py) before it goes into headers or logs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from schemas.codec import (
    HEADER_TRACEPARENT,
    decode,
    decode_valid,
    trace_id_of,
)
from schemas.errors import ContractError
from schemas.liveops.v1.envelope_pb2 import Envelope
from schemas.redaction import scrub_for
from workers.errors import DependencyUnavailableError
from workers.runtime import headers
from workers.runtime.dedup import Claim, Deduplicator
from workers.runtime.failures import classify
from workers.runtime.handling import Verdict, failure_of, handle_batch, trace_id
from workers.runtime.headers import Failure
from workers.runtime.metrics import RuntimeMetrics, observe_all
from workers.runtime.processor import (
    DedupMode,
    OutcomeKind,
    OutputEvent,
    Processor,
    before_commit_of,
    dedup_mode_of,
)
from workers.runtime.records import InboundRecord, OutboundRecord
from workers.runtime.settings import RuntimeSettings

log = structlog.get_logger(__name__)

_FINAL = frozenset({OutcomeKind.APPLIED, OutcomeKind.DUPLICATE, OutcomeKind.REJECTED})
_LEASED = Failure("LeasedElsewhere", "another worker holds this event's dedup lease")


@dataclass
class Plan:
    """What one batch produced; applied by the loop, then counted once it has settled."""

    records: list[OutboundRecord] = field(default_factory=list)
    #: The dedup marker of the batch's claim ("" when it claimed nothing): finished once
    #: the batch's effects are durable, which marks every event it claimed done.
    claim_marker: str = ""
    #: Claimed events sent to a retry tier or dead-lettered: their markers are released.
    release: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    retries: Counter[int] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    #: When the gateway received each final event (epoch seconds); the end-to-end latency is
    #: observed against the moment the batch settles, when the outcome is final.
    received_s: list[float] = field(default_factory=list)
    #: Decoded events not yet handled (between decode() and handle(); after claim(), only
    #: the ones claimed).
    decoded: list[tuple[InboundRecord, Envelope]] = field(default_factory=list)
    #: The idempotency keys of the decoded events (the loop keeps copies of a key apart).
    keys: frozenset[str] = frozenset()

    @property
    def events(self) -> int:
        return sum(self.outcomes.values())


class Pipeline:
    """The per-batch steps of one processor, up to (not including) publish and commit."""

    def __init__(
        self,
        processor: Processor,
        dedup: Deduplicator,
        metrics: RuntimeMetrics,
        settings: RuntimeSettings,
    ) -> None:
        self.processor = processor
        self.dedup_mode = dedup_mode_of(processor)
        self._before_commit = before_commit_of(processor)
        self._dedup = dedup
        self._metrics = metrics
        self._settings = settings
        self._tiers = processor.group.retry_tiers
        self._tier_index = {tier.topic.name: i for i, tier in enumerate(self._tiers)}
        name = processor.name
        self._handle_seconds = metrics.handle_seconds.labels(name)
        self._end_to_end = metrics.end_to_end_seconds.labels(name)
        self._duplicates = metrics.duplicates.labels(name)

    async def plan(self, records: Sequence[InboundRecord]) -> Plan:
        """Decode, claim, handle and route `records`. Raises DependencyUnavailableError only."""
        plan = self.decode(records)
        await self.decide(plan)
        return plan

    def decode(self, records: Sequence[InboundRecord]) -> Plan:
        """Step 2, no I/O: decode and validate; dead-letter what fails; count copies of an
        event within the batch as duplicates. The loop may run this while the previous
        batch is still settling (its outputs, dedup markers and offsets)."""
        plan = Plan()
        decoded = plan.decoded
        seen: set[str] = set()
        for record in records:
            try:
                envelope = decode_valid(record.value)
            except ContractError as exc:
                self._dead_letter(plan, record, failure_of(exc))
                continue
            key = envelope.idempotency_key
            if key in seen:
                plan.outcomes[OutcomeKind.DUPLICATE] += 1  # a copy within this very batch
                continue
            seen.add(key)
            decoded.append((record, envelope))
        plan.keys = frozenset(seen)
        return plan

    async def decide(self, plan: Plan) -> None:
        """Steps 3-4: dedup claim (DedupMode.RUNTIME only), handle, route; fills `plan`."""
        await self.claim(plan)
        await self.handle(plan)

    async def claim(self, plan: Plan) -> None:
        """Step 3 (DedupMode.RUNTIME only): claim the decoded events in Redis; keep the ones
        claimed in `plan.decoded`, count the duplicates, send the leased ones to a retry tier.
        The loop may run it while the batch before this one is handled (loop.py)."""
        if self.dedup_mode is not DedupMode.RUNTIME or not plan.decoded:
            return
        decoded = plan.decoded
        answer = await self._dedup.claim([envelope.idempotency_key for _, envelope in decoded])
        plan.claim_marker = answer.marker
        if answer.all_claimed:
            return
        plan.decoded = []
        for (record, envelope), claim in zip(decoded, answer.claims, strict=True):
            if claim is Claim.DONE:
                plan.outcomes[OutcomeKind.DUPLICATE] += 1
            elif claim is Claim.LEASED:
                self._retry(plan, record, envelope, _LEASED)
            else:
                plan.decoded.append((record, envelope))

    async def handle(self, plan: Plan) -> None:
        """Step 4: the processor's handle() on the events decoded (and claimed), and routing
        of their outcomes; fills `plan`."""
        claimed, plan.decoded = plan.decoded, []
        started = time.perf_counter()
        verdicts = await handle_batch(
            self.processor,
            [envelope for _, envelope in claimed],
            transient_budget_s=self._settings.transient_retry_budget_s,
        )
        if claimed:
            self._handle_seconds.observe(time.perf_counter() - started)
        marks = self.dedup_mode is DedupMode.RUNTIME
        final: list[Envelope] = []  # events whose outcome is final: their latency is observed
        kinds: list[OutcomeKind] = []  # counted at the end, in one C-level pass
        for (record, envelope), verdict in zip(claimed, verdicts, strict=True):
            outcome = verdict.outcome
            if outcome.kind in _FINAL:
                kinds.append(outcome.kind)
                final.append(envelope)
                if outcome.outputs:
                    self._publish(plan, outcome.outputs)
            else:
                self._route_failure(plan, record, envelope, verdict, releases=marks)
        plan.outcomes.update(kinds)
        # Each sub-message read builds a wrapper: read it once. An unset time reads 0.
        plan.received_s += [
            seconds + received.nanos * 1e-9
            for envelope in final
            if (seconds := (received := envelope.received_at).seconds)
        ]

    async def before_commit(self) -> None:
        """Step 5: the processor's before_commit() hook, when it has one. Any failure means
        the batch cannot commit yet: raised as DependencyUnavailableError (hold position)."""
        if self._before_commit is None:
            return
        try:
            await self._before_commit()
        except DependencyUnavailableError:
            raise
        except Exception as exc:
            known = classify(exc)
            if isinstance(known, DependencyUnavailableError):
                raise known from exc
            raise DependencyUnavailableError(f"processor: {failure_of(exc).message}") from exc

    def count(self, plan: Plan) -> None:
        """Record the plan's outcomes in the metrics; call once its batch has settled."""
        name = self.processor.name
        for kind, n in plan.outcomes.items():
            self._metrics.outcomes.labels(name, kind).inc(n)
        self._duplicates.inc(plan.outcomes[OutcomeKind.DUPLICATE])
        for tier, n in plan.retries.items():
            # The tier's label as in its topic name (`<group>.retry.10s`): 10s, 1m, 10m.
            label = self._tiers[tier].topic.name.rsplit(".", 1)[-1]
            self._metrics.retries.labels(name, label).inc(n)
        for reason, n in plan.dead_letters.items():
            self._metrics.dead_letters.labels(name, reason).inc(n)
        # Every event is observed (a distribution, not a count), against one clock reading.
        now_s = time.time()
        observe_all(self._end_to_end, [max(0.0, now_s - r) for r in plan.received_s])

    def _publish(self, plan: Plan, outputs: Sequence[OutputEvent]) -> None:
        plan.records.extend(OutboundRecord.of_output(output) for output in outputs)

    def _route_failure(
        self,
        plan: Plan,
        record: InboundRecord,
        envelope: Envelope,
        verdict: Verdict,
        *,
        releases: bool,
    ) -> None:
        """A RETRY or FAILED outcome: the next retry tier, or the dead letters."""
        outcome = verdict.outcome
        # RETRY or FAILED: release our marker so the retry (or a replay) can claim it again.
        if releases:
            plan.release.append(envelope.idempotency_key)
        failure = verdict.failure or Failure(
            "RetryOutcome" if outcome.kind is OutcomeKind.RETRY else "FailedOutcome",
            scrub_for(outcome.reason, (envelope,)),
        )
        if outcome.kind is OutcomeKind.RETRY:
            self._retry(plan, record, envelope, failure)
        else:
            self._dead_letter(plan, record, failure, envelope)

    def _retry(
        self, plan: Plan, record: InboundRecord, envelope: Envelope, failure: Failure
    ) -> None:
        tier = self._tier_index.get(record.topic, -1) + 1
        if tier >= len(self._tiers):
            self._dead_letter(plan, record, failure, envelope)
            return
        now_ms = int(time.time() * 1000)
        due_at_ms = now_ms + self._tiers[tier].delay_s * 1000
        plan.records.append(self._copy(record, self._tiers[tier].topic.name, failure, due_at_ms))
        plan.outcomes[OutcomeKind.RETRY] += 1
        plan.retries[tier] += 1
        log.info(
            "event sent to retry tier",
            processor=self.processor.name,
            tier_delay_s=self._tiers[tier].delay_s,
            error_class=failure.error_class,
            error_message=failure.message,
            event_id=envelope.event_id,
            player_id=envelope.player_id,
            trace_id=trace_id(envelope),
        )

    def _dead_letter(
        self,
        plan: Plan,
        record: InboundRecord,
        failure: Failure,
        envelope: Envelope | None = None,
    ) -> None:
        topic = self.processor.group.dead_letter.name
        plan.records.append(self._copy(record, topic, failure, None))
        plan.outcomes[OutcomeKind.FAILED] += 1
        plan.dead_letters[failure.error_class] += 1
        event_id, player_id, trace = _ids_of(record, envelope)
        log.warning(
            "event dead-lettered",
            processor=self.processor.name,
            error_class=failure.error_class,
            error_message=failure.message,
            stack_digest=failure.stack_digest,
            event_id=event_id,
            player_id=player_id,
            trace_id=trace,
            source=f"{record.topic}/{record.partition}/{record.offset}",
        )

    def _copy(
        self, record: InboundRecord, topic: str, failure: Failure, due_at_ms: int | None
    ) -> OutboundRecord:
        new_headers = headers.failure_headers(
            record,
            failure,
            processor=self.processor.name,
            processor_version=self.processor.version,
            now_ms=int(time.time() * 1000),
            due_at_ms=due_at_ms,
        )
        return OutboundRecord(topic, record.key, record.value, new_headers)


def _ids_of(record: InboundRecord, envelope: Envelope | None) -> tuple[str, str, str]:
    """(event_id, player_id, trace_id) for a log line about `record`.

    From its envelope when it decoded and validated; else from whatever of the envelope still
    parses (an envelope that lacks one id still has the others), then from the record itself:
    every data topic is keyed by player id, and the producer copies the traceparent into a
    header. "" for what none of them has (garbage bytes carry no event id).
    """
    if envelope is None:
        try:
            envelope = decode(record.value)
        except ContractError:
            envelope = Envelope()
    key = record.key.decode(errors="replace") if record.key else ""
    traceparent = envelope.trace.traceparent or record.header(HEADER_TRACEPARENT) or ""
    return envelope.event_id, envelope.player_id or key, trace_id_of(traceparent)
