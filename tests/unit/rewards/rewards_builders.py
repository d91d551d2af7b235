"""Builders of envelopes for the rewards unit tests (no I/O).

A plain module, not a conftest: a second conftest module would clash with tests/conftest.py
for mypy, and plain functions read better at the call site than factory fixtures.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.message import Message

from schemas.liveops.v1.envelope_pb2 import ClientInfo, Envelope, Platform

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def build_envelope(
    payload: str,
    message: Message,
    *,
    player_id: str = "p1",
    key: str | None = None,
    received_at: datetime = NOW,
    platform: Platform = Platform.PLATFORM_IOS,
    app_version: str = "2.14.0",
) -> Envelope:
    event_id = uuid.uuid4().hex
    envelope = Envelope(
        event_id=event_id,
        idempotency_key=key or event_id,
        player_id=player_id,
        client=ClientInfo(platform=platform, app_version=app_version),
    )
    envelope.received_at.FromDatetime(received_at)
    getattr(envelope, payload).CopyFrom(message)
    return envelope
