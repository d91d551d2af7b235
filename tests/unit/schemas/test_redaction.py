"""schemas/redaction.py: which fields are sensitive, and scrubbing their values out of text."""

from __future__ import annotations

import base64
from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor

from schemas.liveops.v1.envelope_pb2 import Envelope
from schemas.redaction import (
    MIN_SCRUBBED_CHARS,
    redacted_dict,
    redaction_marker,
    scrub,
    scrub_for,
    sensitive_fields,
    sensitive_values,
)

#: What the audit found: store receipts, Google purchase tokens, push device tokens. The
#: .proto's `[debug_redact = true]` is the list; this only checks it never loses one.
AUDITED = {
    "liveops.v1.PurchaseReceiptSubmitted.receipt",
    "liveops.v1.PurchaseReceiptSubmitted.purchase_token",
    "liveops.v1.DeviceTokenRegistered.device_token",
}


def message_types() -> list[Descriptor]:
    """Every message type of the liveops.v1 files, nested ones included."""
    root = cast(FileDescriptor, Envelope.DESCRIPTOR.file)
    files, pending = {}, [root]
    while pending:
        file = pending.pop()
        if file.package == root.package and file.name not in files:
            files[file.name] = file
            pending += list(file.dependencies)
    kinds: list[Descriptor] = []
    pending_kinds = [k for file in files.values() for k in file.message_types_by_name.values()]
    while pending_kinds:
        kind = pending_kinds.pop()
        kinds.append(kind)
        pending_kinds += list(kind.nested_types)
    return kinds


def marked() -> list[FieldDescriptor]:
    return [fd for kind in message_types() for fd in sensitive_fields(kind)]


def test_the_audited_secrets_are_marked_sensitive_in_the_proto() -> None:
    assert {fd.full_name for fd in marked()} >= AUDITED


def test_every_sensitive_field_is_text_or_bytes_so_its_size_can_be_shown() -> None:
    kinds = {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES}
    assert [fd.full_name for fd in marked() if fd.type not in kinds] == []


def purchase(receipt: bytes, token: str) -> Envelope:
    envelope = Envelope(event_id="e", idempotency_key="k", player_id="p")
    envelope.purchase_receipt_submitted.product_id = "gems_100"
    envelope.purchase_receipt_submitted.receipt = receipt
    envelope.purchase_receipt_submitted.purchase_token = token
    return envelope


def test_redacted_dict_keeps_presence_and_size_and_leaves_empty_fields_out() -> None:
    full = redacted_dict(purchase(b"x" * 1432, "t" * 163))
    empty = redacted_dict(purchase(b"", ""))

    assert full["purchase_receipt_submitted"] == {
        "product_id": "gems_100",
        "receipt": "<redacted 1432 bytes>",
        "purchase_token": "<redacted 163 chars>",
    }
    assert empty["purchase_receipt_submitted"] == {"product_id": "gems_100"}


def test_sensitive_values_are_the_texts_a_message_could_quote() -> None:
    receipt = b"signed.jws.receipt"
    values = sensitive_values(purchase(receipt, "google-token-123"))

    assert set(values) == {
        "signed.jws.receipt",
        base64.b64encode(receipt).decode(),
        "google-token-123",
    }
    assert values == sorted(values, key=len, reverse=True)


def test_binary_bytes_are_quoted_as_base64_only_and_short_values_not_at_all() -> None:
    values = sensitive_values(purchase(b"\xff\xfe" * 8, "x" * (MIN_SCRUBBED_CHARS - 1)))

    assert values == [base64.b64encode(b"\xff\xfe" * 8).decode()]


def test_scrub_replaces_each_quoted_value_by_its_size() -> None:
    token = "google-token-123"
    text = f"store refused {token}; again: {token!r}"

    assert scrub(text, [token]) == (
        "store refused <redacted 16 chars>; again: '<redacted 16 chars>'"
    )


def test_scrub_for_a_message_without_secrets_leaves_the_text_alone() -> None:
    plain = Envelope(event_id="e", idempotency_key="k", player_id="p")
    plain.level_completed.level_id = "w1-l3-long-enough"

    assert scrub_for("level w1-l3-long-enough failed", [plain]) == "level w1-l3-long-enough failed"


def test_markers_name_the_unit() -> None:
    assert redaction_marker(b"abc") == "<redacted 3 bytes>"
    assert redaction_marker("abcd") == "<redacted 4 chars>"
    assert redaction_marker(7) == "<redacted>"
