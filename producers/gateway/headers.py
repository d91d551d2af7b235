"""Request headers read besides Authorization: the trace context and the Idempotency-Key."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from producers.gateway.problems import bad_request

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"
IDEMPOTENCY_KEY_MAX_CHARS = 128
#: W3C trace-context: a tracestate longer than this may be dropped by any hop.
TRACESTATE_MAX_CHARS = 512

# W3C trace-context level 1: version-traceid-parentid-flags, lowercase hex. A later version may
# append fields after the flags, separated by "-".
_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-[0-9a-f]{2}"
    r"(?P<rest>-.*)?"
)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_TRACESTATE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class TraceContext:
    traceparent: str
    tracestate: str = ""


def new_traceparent() -> str:
    """A fresh sampled trace: the client sent none, or one we could not use."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_from(traceparent: str | None, tracestate: str | None) -> TraceContext:
    """The caller's trace when its traceparent is valid; else a new trace.

    As the W3C recommendation says, an invalid traceparent is not an error: the trace restarts,
    and its tracestate (which belongs to the discarded trace) is dropped.
    """
    if traceparent is None or not is_valid_traceparent(traceparent.strip()):
        return TraceContext(new_traceparent())
    state = (tracestate or "").strip()
    if len(state) > TRACESTATE_MAX_CHARS or not _TRACESTATE.fullmatch(state):
        state = ""
    return TraceContext(traceparent.strip(), state)


def is_valid_traceparent(value: str) -> bool:
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return False
    version = match["version"]
    if version == "ff" or (version == "00" and match["rest"] is not None):
        return False
    return match["trace"] != "0" * 32 and match["parent"] != "0" * 16


def idempotency_key_from(value: str | None) -> str | None:
    """The client's Idempotency-Key, or None when it sent none; 400 when it is unusable."""
    if value is None:
        return None
    if not value:
        raise bad_request(f"{IDEMPOTENCY_KEY_HEADER} is empty")
    if len(value) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise bad_request(
            f"{IDEMPOTENCY_KEY_HEADER} has {len(value)} characters; "
            f"at most {IDEMPOTENCY_KEY_MAX_CHARS} are allowed"
        )
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise bad_request(f"{IDEMPOTENCY_KEY_HEADER} must be printable ASCII")
    return value
