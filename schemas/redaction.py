"""Sensitive payload fields, and how whatever shows a payload to a person hides them.

A field is sensitive when its .proto marks it `[debug_redact = true]`: protobuf's own field
option for "never print this in debug output" (store receipts, purchase tokens, push device
tokens). That mark is the only list; nothing here names a field. Python's protobuf ignores the
option when printing (`str(message)` and `json_format` show every field), so:

- operator commands that print a payload (`liveops tail`) build it with `redacted_dict`, which
  keeps each sensitive field's presence and size (`"<redacted 1432 bytes>"`) but not its value;
- text that may quote a payload (an error message, a traceback: dead-letter headers, log
  lines, `liveops dlq show`) goes through `scrub` with the event's `sensitive_values`.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

#: A sensitive value shorter than this is not scrubbed out of free text: replacing a two-letter
#: token everywhere would mangle the message and hide nothing (real receipts and push tokens
#: are tens to thousands of characters). Structured output (`redacted_dict`) hides any length.
MIN_SCRUBBED_CHARS = 8

_WELL_KNOWN_PREFIX = "google.protobuf."


def is_sensitive(field: FieldDescriptor) -> bool:
    """True when the .proto marks the field `[debug_redact = true]`."""
    return bool(field.GetOptions().debug_redact)


def sensitive_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    """The fields of one message type marked sensitive (not those of nested types)."""
    return [field for field in descriptor.fields if is_sensitive(field)]


def redaction_marker(value: object) -> str:
    """What is shown instead of a sensitive value: its size, never its content."""
    if isinstance(value, bytes):
        return f"<redacted {len(value)} bytes>"
    if isinstance(value, str):
        return f"<redacted {len(value)} chars>"
    return "<redacted>"


def redacted_dict(message: Message) -> dict[str, Any]:
    """`MessageToDict` with proto field names, every sensitive field (at any depth) replaced by
    `redaction_marker` of its value. A field left empty stays absent, as in MessageToDict, so
    an empty receipt and a full one still look different."""
    doc: dict[str, Any] = MessageToDict(message, preserving_proto_field_name=True)
    _redact_into(message, doc)
    return doc


def _redact_into(message: Message, doc: dict[str, Any]) -> None:
    for field, value in message.ListFields():
        if field.name not in doc:
            continue
        if is_sensitive(field):
            doc[field.name] = _marker_for(field, value)
            continue
        kind = field.message_type
        if kind is None or kind.full_name.startswith(_WELL_KNOWN_PREFIX):
            continue  # scalars, and well-known types (rendered as strings): nothing marked
        rendered = doc[field.name]
        if kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].message_type is not None:
                for key, item in value.items():
                    _redact_if_dict(item, rendered.get(_json_key(key)))
        elif field.is_repeated:
            for item, item_doc in zip(value, rendered, strict=True):
                _redact_if_dict(item, item_doc)
        else:
            _redact_if_dict(value, rendered)


def _redact_if_dict(message: Message, doc: object) -> None:
    if isinstance(doc, dict):
        _redact_into(message, doc)


def _json_key(key: object) -> str:
    # MessageToDict writes map keys as JSON object keys: bools lower case, numbers as text.
    return str(key).lower() if isinstance(key, bool) else str(key)


def _marker_for(field: FieldDescriptor, value: Any) -> object:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return f"<redacted {len(value)} entries>"
    if field.is_repeated:
        return [redaction_marker(item) for item in value]
    return redaction_marker(value)


def sensitive_values(message: Message) -> list[str]:
    """Every sensitive value set in `message` (at any depth), as it could appear in text:
    a string as it is; bytes as UTF-8 text (when they are) and as base64 (how JSON carries
    them). Longest first, and only those of at least MIN_SCRUBBED_CHARS characters."""
    found: set[str] = set()
    _collect(message, found)
    return sorted(
        (text for text in found if len(text) >= MIN_SCRUBBED_CHARS), key=len, reverse=True
    )


def _collect(message: Message, found: set[str]) -> None:
    for field, value in message.ListFields():
        if is_sensitive(field):
            for item in _items(field, value):
                found.update(_as_text(item))
            continue
        kind = field.message_type
        if kind is None:
            continue
        if kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _collect(item, found)
        elif field.is_repeated:
            for item in value:
                _collect(item, found)
        else:
            _collect(value, found)


def _items(field: FieldDescriptor, value: Any) -> Iterable[object]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return value.values()  # type: ignore[no-any-return]  # a protobuf map container
    if field.is_repeated:
        return value  # type: ignore[no-any-return]  # a protobuf repeated container
    return (value,)


def _as_text(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        texts = [base64.b64encode(value).decode()]
        # Binary bytes can only be quoted as base64 (or as a repr, which we cannot foresee).
        with contextlib.suppress(UnicodeDecodeError):
            texts.append(value.decode())
        return texts
    return []


def scrub(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of each of `values` replaced by `redaction_marker`.

    For free text that may quote a payload (error messages, tracebacks). It catches a value
    quoted whole, not a slice of one: the structured path (`redacted_dict`) is the one that
    never shows a sensitive field."""
    for value in values:
        if value in text:
            text = text.replace(value, redaction_marker(value))
    return text


def scrub_for(text: str, messages: Iterable[Message]) -> str:
    """`scrub(text, ...)` with the sensitive values of every message in `messages`."""
    values = sorted({v for m in messages for v in sensitive_values(m)}, key=len, reverse=True)
    return scrub(text, values) if values else text
