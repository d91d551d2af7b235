"""Log lines about one event: they carry its event_id, player_id and trace_id, and never a
sensitive payload value (a store receipt, a purchase or push token), even when the error
behind them quotes one. Also the dead letters' error headers, which `liveops dlq show` prints.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping, Sequence
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from schemas.codec import encode, headers_for
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import DEVICE_TOKENS, IAP_RECEIPTS, ConsumerGroup
from workers.errors import PermanentError, TransientError
from workers.runtime import headers
from workers.runtime.dedup import Deduplicator
from workers.runtime.metrics import RuntimeMetrics
from workers.runtime.pipeline import Pipeline
from workers.runtime.processor import DedupMode, Outcome
from workers.runtime.records import InboundRecord
from workers.runtime.settings import RuntimeSettings

GROUP = ConsumerGroup("secrets", (IAP_RECEIPTS, DEVICE_TOKENS), retry_delays_s=(10,))
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
RECEIPT = "eyJhbGciOiJFUzI1NiJ9.eyJ0cmFuc2FjdGlvbklkIjoiMjAwMDAwMDAwMDAwMDAwMSJ9.c2lnbmF0dXJl"
PURCHASE_TOKEN = "opaque-google-purchase-token-aGVsbG8gd29ybGQ"
DEVICE_TOKEN = "fcm:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
SECRETS = (RECEIPT, PURCHASE_TOKEN, DEVICE_TOKEN)


@pytest.fixture(autouse=True)
def _logs_to_current_stdout() -> None:
    """Undo any configure_logging() an earlier CLI test ran: it caches a stream pytest closes."""
    structlog.reset_defaults()


class QuotingProcessor:
    """Fails as the player id says, with errors that quote the event's secrets, as a careless
    handler (or a library's exception) would."""

    name: ClassVar[str] = "secrets"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = GROUP
    dedup: ClassVar[DedupMode] = DedupMode.PROCESSOR  # no Redis claim: not what is tested

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        event = batch[0]
        receipt = event.purchase_receipt_submitted
        quoted = receipt.purchase_token or event.device_token_registered.device_token
        if event.player_id == "refused":
            raise PermanentError(f"store refused purchase token {quoted}")
        if event.player_id == "store-down":
            raise TransientError(f"store answered 503 for receipt {receipt.receipt.decode()}")
        if event.player_id == "bug":
            raise ValueError(f"cannot parse receipt {receipt.receipt!r}")
        if event.player_id == "reason":
            return [Outcome.failed(f"token {quoted} is unregistered")]
        return [Outcome.applied() for _ in batch]


def purchase(player_id: str, event_id: str) -> Envelope:
    envelope = Envelope(event_id=event_id, idempotency_key=f"k-{event_id}", player_id=player_id)
    envelope.trace.traceparent = TRACEPARENT
    payload = envelope.purchase_receipt_submitted
    payload.product_id = "gems_100"
    payload.receipt = RECEIPT.encode()
    payload.purchase_token = PURCHASE_TOKEN
    return envelope


def device(player_id: str, event_id: str) -> Envelope:
    envelope = Envelope(event_id=event_id, idempotency_key=f"k-{event_id}", player_id=player_id)
    envelope.trace.traceparent = TRACEPARENT
    envelope.device_token_registered.device_token = DEVICE_TOKEN
    return envelope


def inbound(envelope: Envelope, topic: str = IAP_RECEIPTS.name) -> InboundRecord:
    return InboundRecord(
        topic,
        0,
        7,
        1,
        envelope.player_id.encode(),
        encode(envelope),
        tuple(headers_for(envelope)),
    )


def pipeline() -> Pipeline:
    dedup = Deduplicator(
        aioredis.Redis(), prefix="x", processor="secrets", worker_id="w", settings=RuntimeSettings()
    )
    return Pipeline(
        QuotingProcessor(),
        dedup,
        RuntimeMetrics(CollectorRegistry()),
        RuntimeSettings(transient_retry_budget_s=0),
    )


async def lines_for(*records: InboundRecord) -> tuple[list[MutableMapping[str, Any]], list[str]]:
    """The log entries the pipeline writes for `records`, with any exception rendered as
    workers/logs.py renders it; and the error-message headers of what it would publish."""
    with capture_logs(processors=[structlog.processors.format_exc_info]) as entries:
        plan = await pipeline().plan(list(records))
    messages = []
    for out in plan.records:
        as_in = InboundRecord(out.topic, 0, 0, 0, out.key, out.value, out.headers)
        messages.append(as_in.header(headers.ERROR_MESSAGE) or "")
    return entries, messages


def assert_about_the_event(entry: MutableMapping[str, Any], envelope: Envelope) -> None:
    assert (entry["event_id"], entry["player_id"], entry["trace_id"]) == (
        envelope.event_id,
        envelope.player_id,
        TRACE_ID,
    ), entry


def assert_no_secret(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == [], text


async def test_dead_letter_line_carries_the_ids_and_not_the_token_its_error_quotes() -> None:
    event = purchase("refused", "01JDEAD")

    entries, messages = await lines_for(inbound(event))

    (entry,) = [e for e in entries if e["event"] == "event dead-lettered"]
    assert_about_the_event(entry, event)
    assert entry["error_class"] == "PermanentError"
    assert (
        entry["error_message"]
        == f"store refused purchase token <redacted {len(PURCHASE_TOKEN)} chars>"
    )
    assert_no_secret(json.dumps(entry))
    # The dead letter's header, which `liveops dlq show` prints, is scrubbed the same way
    assert messages == [f"store refused purchase token <redacted {len(PURCHASE_TOKEN)} chars>"]


async def test_retry_line_carries_the_ids_and_not_the_receipt_its_error_quotes() -> None:
    event = purchase("store-down", "01JRETRY")

    entries, messages = await lines_for(inbound(event))

    (entry,) = [e for e in entries if e["event"] == "event sent to retry tier"]
    assert_about_the_event(entry, event)
    assert entry["tier_delay_s"] == 10
    assert entry["error_message"].startswith("store answered 503 for receipt <redacted ")
    assert_no_secret(json.dumps(entry))
    assert len(messages) == 1
    assert_no_secret(messages[0])


async def test_retry_past_the_last_tier_dead_letters_with_the_ids() -> None:
    event = purchase("store-down", "01JLAST")

    entries, messages = await lines_for(inbound(event, topic=GROUP.retry_tiers[-1].topic.name))

    assert [e["event"] for e in entries] == ["event dead-lettered"]
    assert_about_the_event(entries[0], event)
    assert_no_secret(json.dumps(entries[0]) + "".join(messages))


async def test_unexpected_error_line_has_the_ids_and_a_traceback_without_the_receipt() -> None:
    event = purchase("bug", "01JBUG")

    entries, messages = await lines_for(inbound(event))

    (entry,) = [e for e in entries if e["event"] == "handle raised an unexpected error"]
    assert_about_the_event(entry, event)
    assert entry["log_level"] == "error"
    assert "Traceback (most recent call last)" in entry["exception"]
    assert "ValueError: cannot parse receipt b'<redacted " in entry["exception"]
    assert_no_secret(json.dumps(entry))
    (dead,) = [e for e in entries if e["event"] == "event dead-lettered"]
    assert_about_the_event(dead, event)
    assert_no_secret(json.dumps(dead) + "".join(messages))


async def test_a_processor_outcome_reason_is_scrubbed_too() -> None:
    event = device("reason", "01JREASON")

    entries, messages = await lines_for(inbound(event, topic=DEVICE_TOKENS.name))

    (entry,) = entries
    assert_about_the_event(entry, event)
    assert entry["error_message"] == f"token <redacted {len(DEVICE_TOKEN)} chars> is unregistered"
    assert_no_secret(json.dumps(entry) + "".join(messages))


async def test_an_invalid_envelope_is_dead_lettered_with_the_ids_it_has() -> None:
    # An envelope without an idempotency key is refused, but its other ids are known
    event = purchase("p-7", "01JNOKEY")
    event.ClearField("idempotency_key")

    entries, _ = await lines_for(inbound(event))

    (entry,) = entries
    assert entry["error_class"] == "InvalidEnvelopeError"
    assert_about_the_event(entry, event)
    assert_no_secret(json.dumps(entry))


async def test_garbage_is_dead_lettered_with_the_key_and_the_traceparent_header() -> None:
    garbage = InboundRecord(
        IAP_RECEIPTS.name,
        2,
        9,
        1,
        b"p-9",
        b"\xff\xff garbage",
        (("traceparent", TRACEPARENT.encode()),),
    )

    entries, _ = await lines_for(garbage)

    (entry,) = entries
    assert entry["error_class"] == "UndecodableEventError"
    assert (entry["event_id"], entry["player_id"], entry["trace_id"]) == ("", "p-9", TRACE_ID)
