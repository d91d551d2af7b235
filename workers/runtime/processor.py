"""The contract between the runtime and a processor.

A processor handles decoded batches and says what happened to each event. It never touches
offsets, retry topics or dead letters: the runtime does, from the outcomes. It may return output
events (for example a reward granted); the runtime publishes them, and waits for the broker to
acknowledge them, before it commits the input offsets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import ClassVar, NamedTuple, Protocol

from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import ConsumerGroup, Topic


class DedupMode(StrEnum):
    """Who guards an event against being applied twice: a processor's `dedup` class attribute.

    RUNTIME (the default, for a processor that declares nothing): before handle() the runtime
    claims each event in Redis (a lease, SET NX PX), and once the outputs are acknowledged it
    marks final events `done` (keys.py). Costs two Redis round trips per batch; it is what
    keeps a processor whose effect lives elsewhere (MySQL, an external API) from running an
    event twice in the common case, with its own durable guard behind it.

    PROCESSOR: the processor's effect itself checks the event's dedup key and sets it to
    `done` in the same atomic step (one Lua script, for effects that live in Redis), and it
    reports DUPLICATE for an event whose key was already `done`, and also marks its REJECTED
    events `done`, so a redelivery of any final event is seen and counted as a duplicate.
    The runtime then skips both round trips. Safe because the atomic check is the guard:
    two workers handling the same event at once (a rebalance moved the partition while the
    old owner was still busy) both run the script, Redis runs one script at a time, the first
    applies and sets `done`, the second finds `done` and reports DUPLICATE. What is lost is
    only the lease's courtesy of sending such an event to a retry tier instead: the second
    worker does the cheap check itself. Copies of one event within a batch are still counted
    as duplicates by the runtime before handle() sees them.
    """

    RUNTIME = "runtime"
    PROCESSOR = "processor"


class OutcomeKind(StrEnum):
    APPLIED = "applied"
    #: Already applied before (found by the Redis marker or the MySQL unique key): skipped.
    DUPLICATE = "duplicate"
    #: Processed and refused for a business reason (score out of range, over a cap): final,
    #: not an error, not dead-lettered; usually with an output event saying why.
    REJECTED = "rejected"
    #: Could not be done now for a reason that may pass: goes to the next retry tier.
    RETRY = "retry"
    #: Can never succeed: goes to the dead-letter topic with the reason.
    FAILED = "failed"


class OutputEvent(NamedTuple):
    """An event a processor wants published once its effects are durable."""

    topic: Topic
    envelope: Envelope


class Outcome(NamedTuple):
    """What happened to one event of a batch.

    A NamedTuple, like OutputEvent: processors build one (or two) per event of every batch,
    and a frozen dataclass costs about three times a tuple to build."""

    kind: OutcomeKind
    reason: str = ""
    outputs: tuple[OutputEvent, ...] = ()

    @classmethod
    def applied(cls, *outputs: OutputEvent) -> Outcome:
        # Immutable, so the common case (nothing to publish) shares one instance.
        return cls(OutcomeKind.APPLIED, outputs=outputs) if outputs else _APPLIED

    @classmethod
    def duplicate(cls) -> Outcome:
        return _DUPLICATE

    @classmethod
    def rejected(cls, reason: str, *outputs: OutputEvent) -> Outcome:
        return cls(OutcomeKind.REJECTED, reason, outputs)

    @classmethod
    def retry(cls, reason: str) -> Outcome:
        return cls(OutcomeKind.RETRY, reason)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(OutcomeKind.FAILED, reason)


_APPLIED = Outcome(OutcomeKind.APPLIED)
_DUPLICATE = Outcome(OutcomeKind.DUPLICATE)


class Processor(Protocol):
    """A small typed class per domain: rewards, leaderboards, iap, notifications."""

    #: Scopes dedup keys and names the consumer group (`liveops.<name>`).
    name: ClassVar[str]
    #: Recorded in dead-letter headers, so an operator knows which code refused an event.
    version: ClassVar[str]
    # Optional, so not protocol members:
    # - `dedup: ClassVar[DedupMode]` (see DedupMode and dedup_mode_of); a processor that
    #   declares nothing gets DedupMode.RUNTIME.
    # - `async def before_commit(self) -> None` (see BeforeCommit and before_commit_of).

    @property
    def group(self) -> ConsumerGroup:
        """The consumer group (inputs, retry tiers, dead letters). A ClassVar satisfies this;
        a processor built for a group chosen at run time (the probe) sets an attribute."""

    async def start(self) -> None:
        """Open connections, load rules; called once before the first batch."""

    async def stop(self) -> None:
        """Close what start() opened."""

    async def ready(self) -> bool:
        """Whether the processor's own dependencies answer (for /readyz)."""

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        """Apply a batch; return one outcome per event, in the same order.

        Do the work in a few round trips per batch, not one per event. Raise
        DependencyUnavailableError when Redis or MySQL cannot be reached (nothing of the
        batch may be left half-applied: use one transaction or one Lua call), TransientError
        or PermanentError when the whole batch fails for that reason; otherwise return
        per-event outcomes.
        """


class BeforeCommit(Protocol):
    """The optional hook of a processor whose handle() leaves part of its effects to finish.

    For example leaderboards: handle() applies a batch in Redis with one Lua call, and the
    copy of its journal to MySQL (what a rebuild needs after Redis lost a board) is written
    here, off the scoring path.
    """

    async def before_commit(self) -> None:
        """Make durable the effects of every batch handle() has returned so far.

        The runtime calls it once per batch, after handle() and before it publishes that
        batch's outputs and commits its offsets. With the pipelined loop it may run while
        handle() of the next batch runs. Raise DependencyUnavailableError when that cannot be
        done now: the runtime holds position and polls the batch again (the processor's own
        guard must then see its events as duplicates).
        """


def before_commit_of(processor: Processor) -> Callable[[], Awaitable[None]] | None:
    """The processor's bound before_commit() (BeforeCommit), or None when it has none."""
    hook = getattr(processor, "before_commit", None)
    return hook if callable(hook) else None


def dedup_mode_of(processor: Processor) -> DedupMode:
    """The processor's declared `dedup` class attribute, or RUNTIME when it declares none."""
    mode = getattr(processor, "dedup", DedupMode.RUNTIME)
    return DedupMode(mode)
