"""Trace context and Idempotency-Key headers."""

from __future__ import annotations

import pytest

from producers.gateway.headers import (
    idempotency_key_from,
    is_valid_traceparent,
    trace_from,
)
from producers.gateway.problems import ProblemError

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    [
        VALID,
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",  # later version
    ],
)
def test_valid_traceparents(value: str) -> None:
    assert is_valid_traceparent(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        VALID.upper(),
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        VALID + "-extra",
        VALID[:-1],
    ],
)
def test_invalid_traceparents(value: str) -> None:
    assert not is_valid_traceparent(value)


def test_a_valid_trace_is_kept_with_its_state() -> None:
    trace = trace_from(VALID, "vendor=abc")
    assert (trace.traceparent, trace.tracestate) == (VALID, "vendor=abc")


def test_an_invalid_or_missing_trace_restarts_and_drops_the_state() -> None:
    for header in (None, "garbage"):
        trace = trace_from(header, "vendor=abc")
        assert is_valid_traceparent(trace.traceparent)
        assert trace.traceparent != VALID
        assert trace.tracestate == ""
    assert trace_from(VALID, "x" * 600).tracestate == ""


def test_idempotency_key_is_optional_and_bounded() -> None:
    assert idempotency_key_from(None) is None
    assert idempotency_key_from("order-42 retry") == "order-42 retry"
    assert idempotency_key_from("k" * 128) == "k" * 128
    for bad, says in [("", "empty"), ("k" * 129, "129 characters"), ("é", "printable ASCII")]:
        with pytest.raises(ProblemError, match=says) as caught:
            idempotency_key_from(bad)
        assert caught.value.status == 400
