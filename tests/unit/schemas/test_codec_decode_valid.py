"""decode_valid() is the workers' one-call path: it must accept and refuse exactly what
validate(decode()) does, with the same error."""

from __future__ import annotations

import pytest

from schemas.codec import decode, decode_valid, encode, validate
from schemas.errors import ContractError
from schemas.liveops.v1.envelope_pb2 import Envelope


def login(event_id: str = "", idempotency_key: str = "", player_id: str = "") -> Envelope:
    envelope = Envelope(event_id=event_id, idempotency_key=idempotency_key, player_id=player_id)
    envelope.daily_login.streak_days = 3
    return envelope


CASES: dict[str, bytes | None] = {
    "well formed": encode(login("e1", "k1", "p1")),
    "garbage bytes": b"\xff\xff not an envelope",
    "tombstone": None,
    "no idempotency key": encode(login("e1", "", "p1")),
    "no event id or player": encode(login("", "k1", "")),
    "no payload": encode(Envelope(event_id="e1", idempotency_key="k1", player_id="p1")),
    "empty bytes": b"",
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_decode_valid_agrees_with_validate_of_decode(data: bytes | None) -> None:
    try:
        expected: Envelope | ContractError = validate(decode(data))
    except ContractError as exc:
        expected = exc
    try:
        got: Envelope | ContractError = decode_valid(data)
    except ContractError as exc:
        got = exc

    if isinstance(expected, ContractError):
        assert type(got) is type(expected)
        assert str(got) == str(expected)
    else:
        assert got == expected
