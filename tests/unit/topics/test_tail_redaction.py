"""`liveops tail` never prints a sensitive field, of any message type of the schema.

Every payload of the Envelope is filled in, field by field and at every depth, with a value of
its own; the tail's output (JSON and human) must show each field marked sensitive
(`[debug_redact = true]` in the .proto) as its size only, and every other field as it is.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message

from schemas.codec import headers_for
from schemas.liveops.v1.envelope_pb2 import Envelope
from schemas.redaction import is_sensitive, redaction_marker
from topics.catalog import DATA_TOPICS, REWARDS_GROUP, topic_for_payload
from topics.tail import TailRecord, render_record
from workers.runtime import headers

PAYLOADS = [f.name for f in Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields]
_TIMESTAMP = "google.protobuf.Timestamp"


@dataclass(frozen=True)
class Leaf:
    """One field set by `fill`: where the tail's JSON shows it, and the value it was given."""

    path: tuple[str | int, ...]
    field: FieldDescriptor
    value: object


@dataclass
class Filled:
    leaves: list[Leaf] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    counter: int = 0

    def scalar(self, fd: FieldDescriptor) -> object:
        """A value of the field's type that no other field gets (strings and bytes)."""
        self.counter += 1
        if fd.type == FieldDescriptor.TYPE_STRING:
            return f"{fd.full_name}:value-{self.counter:04d}"
        if fd.type == FieldDescriptor.TYPE_BYTES:
            return f"{fd.full_name}:bytes-{self.counter:04d}".encode()
        if fd.type == FieldDescriptor.TYPE_ENUM:
            assert fd.enum_type is not None
            return fd.enum_type.values[-1].number
        if fd.type == FieldDescriptor.TYPE_BOOL:
            return True
        if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return 0.5 + self.counter
        return 1000 + self.counter


def fill(message: Message, path: tuple[str | int, ...], filled: Filled) -> None:
    """Set every field of `message` (the first member of each oneof), at every depth."""
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    filled.types.add(descriptor.full_name)
    for fd in descriptor.fields:
        oneof = fd.containing_oneof
        if oneof is not None and (descriptor is Envelope.DESCRIPTOR or oneof.fields[0] is not fd):
            continue  # the Envelope's payload is chosen by the caller
        set_field(message, fd, (*path, fd.name), filled)


def set_field(
    message: Message, fd: FieldDescriptor, path: tuple[str | int, ...], f: Filled
) -> None:
    container: Any = getattr(message, fd.name)
    kind = fd.message_type
    if kind is not None and kind.GetOptions().map_entry:
        key = str(f.scalar(kind.fields_by_name["key"]))
        value_fd = kind.fields_by_name["value"]
        if value_fd.message_type is not None:
            fill(container[key], (*path, key), f)
        else:
            container[key] = f.scalar(value_fd)
            f.leaves.append(Leaf((*path, key), fd, container[key]))
    elif kind is not None and kind.full_name == _TIMESTAMP:
        (container.add() if fd.is_repeated else container).seconds = 1_764_057_600
    elif kind is not None:
        fill(
            container.add() if fd.is_repeated else container,
            (*path, 0) if fd.is_repeated else path,
            f,
        )
    elif fd.is_repeated:
        value = f.scalar(fd)
        container.append(value)
        f.leaves.append(Leaf((*path, 0), fd, value))
    else:
        value = f.scalar(fd)
        setattr(message, fd.name, value)
        f.leaves.append(Leaf(path, fd, value))


def full_envelope(payload: str) -> tuple[Envelope, Filled]:
    envelope = Envelope()
    filled = Filled()
    fill(envelope, (), filled)
    fill(getattr(envelope, payload), (payload,), filled)
    return envelope, filled


def at(doc: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def texts_of(value: object) -> list[str]:
    """How a value could appear in printed output."""
    if isinstance(value, bytes):
        return [value.decode(), base64.b64encode(value).decode()]
    return [str(value)]


def tail_outputs(envelope: Envelope, payload: str) -> tuple[dict[str, Any], str, str]:
    """The tail's JSON document, JSON line and human text for `envelope`."""
    record = TailRecord(
        topic=topic_for_payload(payload).name,
        partition=0,
        offset=1,
        timestamp_ms=1_764_057_600_000,
        key=envelope.player_id.encode(),
        value=envelope.SerializeToString(),
        headers=tuple(headers_for(envelope)),
    )
    line = render_record(record, Envelope, as_json=True)
    human = render_record(record, Envelope, as_json=False)
    return json.loads(line), line, human


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sensitive_fields_show_their_size_and_every_other_field_its_value(payload: str) -> None:
    # Given an envelope whose every field, and the payload's, is set
    envelope, filled = full_envelope(payload)

    # When the tail renders it
    doc, line, human = tail_outputs(envelope, payload)

    # Then a sensitive field shows as its size, and its value appears nowhere
    value = doc["value"]
    for leaf in filled.leaves:
        shown = at(value, leaf.path)
        if is_sensitive(leaf.field):
            assert shown == redaction_marker(leaf.value), leaf
            for text in texts_of(leaf.value):
                assert text not in line, leaf
                assert text not in human, leaf
        # And every other string or bytes field is shown as it is
        elif leaf.field.type == FieldDescriptor.TYPE_STRING:
            assert shown == leaf.value, leaf
            assert f'"{leaf.value}"' in human, leaf
        elif leaf.field.type == FieldDescriptor.TYPE_BYTES:
            assert isinstance(leaf.value, bytes)
            assert shown == base64.b64encode(leaf.value).decode(), leaf


def _message_types(descriptor: Descriptor) -> list[Descriptor]:
    nested = [t for d in descriptor.nested_types for t in _message_types(d)]
    return [] if descriptor.GetOptions().map_entry else [descriptor, *nested]


def _files(root: FileDescriptor) -> list[FileDescriptor]:
    found: dict[str, FileDescriptor] = {}
    pending = [root]
    while pending:
        file = pending.pop()
        if file.package == root.package and file.name not in found:
            found[file.name] = file
            pending += list(file.dependencies)
    return list(found.values())


def test_the_walk_covers_every_message_type_of_the_schema() -> None:
    declared = {
        t.full_name
        for file in _files(cast(FileDescriptor, Envelope.DESCRIPTOR.file))
        for top in file.message_types_by_name.values()
        for t in _message_types(top)
    }
    visited: set[str] = set()
    for payload in PAYLOADS:
        visited |= full_envelope(payload)[1].types

    assert declared - visited == set(), "a message type the tail test never fills"
    assert len(declared) > 20  # every file was found, not only envelope.proto


def test_the_walk_meets_sensitive_fields() -> None:
    """Guards the test itself: a walk that never met a sensitive field would prove nothing."""
    met = {
        leaf.field.full_name
        for payload in PAYLOADS
        for leaf in full_envelope(payload)[1].leaves
        if is_sensitive(leaf.field)
    }
    assert {
        "liveops.v1.PurchaseReceiptSubmitted.receipt",
        "liveops.v1.PurchaseReceiptSubmitted.purchase_token",
        "liveops.v1.DeviceTokenRegistered.device_token",
    } <= met


def test_a_dead_letter_header_quoting_a_secret_is_scrubbed_too() -> None:
    # Given a dead letter whose error message (written by an older worker) quotes the token
    envelope, _ = full_envelope("purchase_receipt_submitted")
    token = envelope.purchase_receipt_submitted.purchase_token
    dead_letter = REWARDS_GROUP.dead_letter.name
    record = TailRecord(
        topic=dead_letter,
        partition=0,
        offset=3,
        timestamp_ms=1_764_057_600_000,
        key=b"p",
        value=envelope.SerializeToString(),
        headers=((headers.ERROR_MESSAGE, f"store refused {token}".encode()),),
    )

    # When the tail renders it, then the header shows the token's size, not the token
    doc = json.loads(render_record(record, Envelope, as_json=True))
    human = render_record(record, Envelope, as_json=False)

    assert doc["headers"][headers.ERROR_MESSAGE] == f"store refused <redacted {len(token)} chars>"
    assert token not in human


def test_every_data_topic_decodes_to_the_walked_envelope() -> None:
    """The walk renders Envelopes: the tail decodes every data topic as one."""
    assert {topic.value_type for topic in DATA_TOPICS} == {Envelope}
