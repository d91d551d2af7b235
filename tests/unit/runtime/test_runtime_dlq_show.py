"""`liveops dlq show` / `replay` lines: a sensitive value quoted by the error message is hidden."""

from __future__ import annotations

from schemas.codec import encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.runtime import headers
from workers.runtime.cli import describe
from workers.runtime.records import InboundRecord

DEVICE_TOKEN = "fcm:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"


def test_describe_hides_a_token_that_the_error_message_quotes() -> None:
    # Given a dead letter (written by an older worker) whose error message quotes the token
    envelope = Envelope(event_id="01JDL", idempotency_key="k", player_id="p-1")
    envelope.device_token_registered.device_token = DEVICE_TOKEN
    letter = InboundRecord(
        "liveops.notifications.dlq",
        0,
        5,
        0,
        b"p-1",
        encode(envelope),
        (
            (headers.ERROR_CLASS, b"PermanentError"),
            (headers.ERROR_MESSAGE, f"token {DEVICE_TOKEN} unregistered".encode()),
        ),
    )

    # When it is described, then the line names the event but not the token
    line = describe(letter)

    assert line.startswith("0/5 event 01JDL player p-1 device_token_registered")
    assert f"PermanentError: token <redacted {len(DEVICE_TOKEN)} chars> unregistered" in line
    assert DEVICE_TOKEN not in line
