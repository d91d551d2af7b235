"""Calling processor.handle() so that one bad event never takes its batch down with it.

- TransientError: retried in process (tenacity) for a short budget, then every event of the
  batch is reported RETRY with the error.
- PermanentError, or any unexpected exception: the batch is bisected until the guilty events
  stand alone; those are reported FAILED with the error; the others are handled normally.
- DependencyUnavailableError (and driver connection errors) propagate: the loop holds position.

An error's message goes into retry and dead-letter headers and log lines: any sensitive payload
value it quotes (a receipt, a token; schemas/redaction.py) is scrubbed out first.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import NamedTuple

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from schemas.codec import trace_id_of
from schemas.liveops.v1.envelope_pb2 import Envelope
from schemas.redaction import scrub_for
from workers.errors import DependencyUnavailableError, PermanentError, TransientError
from workers.runtime.failures import classify, stack_digest
from workers.runtime.headers import Failure
from workers.runtime.processor import Outcome, Processor

log = structlog.get_logger(__name__)


class Verdict(NamedTuple):
    """An event's outcome, and the failure behind it when it is RETRY or FAILED.

    A NamedTuple: one is built per event of every batch (see records.InboundRecord).
    """

    outcome: Outcome
    failure: Failure | None = None


class _WrongOutcomeCountError(PermanentError):
    """handle() returned a different number of outcomes than events: a processor bug."""


def trace_id(envelope: Envelope) -> str:
    """The trace id of the envelope's W3C traceparent, or "" (see trace_id_of)."""
    return trace_id_of(envelope.trace.traceparent)


def failure_of(exc: BaseException, events: Sequence[Envelope] = ()) -> Failure:
    """The failure behind `exc`; its message scrubbed of the sensitive values of `events`."""
    message = str(exc) or type(exc).__name__
    return Failure(type(exc).__name__, scrub_for(message, events), stack_digest(exc))


async def handle_batch(
    processor: Processor, batch: Sequence[Envelope], *, transient_budget_s: float
) -> list[Verdict]:
    """One verdict per event of `batch`, in order. Raises only DependencyUnavailableError."""
    if not batch:
        return []
    try:
        outcomes = await _handle_with_retries(processor, batch, transient_budget_s)
    except DependencyUnavailableError:
        raise
    except TransientError as exc:
        failure = failure_of(exc, batch)
        return [Verdict(Outcome.retry(failure.message), failure) for _ in batch]
    except Exception as exc:  # noqa: BLE001 - bisected to its event, dead-lettered, logged below
        if len(batch) > 1:
            middle = len(batch) // 2
            head = await handle_batch(processor, batch[:middle], transient_budget_s=0)
            tail = await handle_batch(processor, batch[middle:], transient_budget_s=0)
            return head + tail
        failure = failure_of(exc, batch)
        if not isinstance(exc, PermanentError):
            # The traceback as format_exc_info would render it, scrubbed like the message:
            # log.exception() would render it from the exception, secrets included.
            traceback_text = "".join(traceback.format_exception(exc)).rstrip("\n")
            log.error(  # noqa: TRY400 - the traceback is passed, scrubbed, as exception=
                "handle raised an unexpected error",
                processor=processor.name,
                event_id=batch[0].event_id,
                player_id=batch[0].player_id,
                trace_id=trace_id(batch[0]),
                error_class=failure.error_class,
                stack_digest=failure.stack_digest,
                exception=scrub_for(traceback_text, batch),
            )
        return [Verdict(Outcome.failed(failure.message), failure)]
    return [Verdict(outcome) for outcome in outcomes]


async def _handle_with_retries(
    processor: Processor, batch: Sequence[Envelope], budget_s: float
) -> Sequence[Outcome]:
    retrying = AsyncRetrying(
        stop=stop_after_delay(budget_s),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        retry=retry_if_exception_type(TransientError),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await _handle_once(processor, batch)
    raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover


async def _handle_once(processor: Processor, batch: Sequence[Envelope]) -> Sequence[Outcome]:
    try:
        outcomes = await processor.handle(batch)
    except Exception as exc:
        known = classify(exc)
        if known is not None and known is not exc:
            raise known from exc
        raise
    if len(outcomes) != len(batch):
        raise _WrongOutcomeCountError(
            f"{processor.name}.handle returned {len(outcomes)} outcomes for {len(batch)} events"
        )
    return outcomes
