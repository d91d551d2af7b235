"""Sorting driver errors, stack digests, back-off, retry due times, the registry."""

from __future__ import annotations

import random

import pymysql
import pytest
import redis.exceptions
from aiokafka.errors import KafkaConnectionError
from hypothesis import given
from hypothesis import strategies as st

from workers.errors import DependencyUnavailableError, TransientError
from workers.processors.probe import flaky_failures
from workers.processors.registry import UnknownProcessorError, factories_for
from workers.runtime import headers
from workers.runtime.failures import backoff_s, classify, stack_digest
from workers.runtime.records import InboundRecord
from workers.runtime.retry import due_at_ms


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (redis.exceptions.ConnectionError("refused"), DependencyUnavailableError),
        (redis.exceptions.TimeoutError("slow"), DependencyUnavailableError),
        (pymysql.err.OperationalError(2003, "Can't connect"), DependencyUnavailableError),
        (pymysql.err.InterfaceError(0, ""), DependencyUnavailableError),
        (pymysql.err.OperationalError(1213, "Deadlock found"), TransientError),
        (pymysql.err.OperationalError(1205, "Lock wait timeout"), TransientError),
        (KafkaConnectionError("no broker"), DependencyUnavailableError),
    ],
)
def test_driver_errors_are_sorted(exc: Exception, expected: type[Exception]) -> None:
    assert isinstance(classify(exc), expected)


def test_unknown_errors_are_not_sorted() -> None:
    assert classify(ValueError("bug")) is None


def _raise_here() -> None:
    raise KeyError("missing")


def test_stack_digest_is_stable_per_place_and_short() -> None:
    digests = set()
    for _ in range(2):
        try:
            _raise_here()
        except KeyError as exc:
            digests.add(stack_digest(exc))
    (digest,) = digests
    assert len(digest) == 12
    assert int(digest, 16) >= 0


@given(attempt=st.integers(min_value=0, max_value=200), seed=st.integers())
def test_backoff_grows_is_capped_and_jittered(attempt: int, seed: int) -> None:
    delay = backoff_s(attempt, initial_s=0.2, max_s=30.0, rng=random.Random(seed))
    step = min(30.0, 0.2 * 2**attempt)
    assert step / 2 <= delay <= step


def test_backoff_first_steps_double() -> None:
    rng = random.Random(1)
    ceilings = [backoff_s(a, initial_s=1, max_s=100, rng=rng) for a in range(5)]
    assert all(0.5 * 2**a <= d <= 2**a for a, d in enumerate(ceilings))


def test_due_time_from_header_else_timestamp_plus_delay() -> None:
    plain = InboundRecord("t", 0, 0, 1_000, None, b"", ())
    assert due_at_ms(plain, 10) == 11_000
    stamped = InboundRecord("t", 0, 0, 1_000, None, b"", ((headers.DUE_AT, b"5000"),))
    assert due_at_ms(stamped, 10) == 5_000


def test_flaky_players_name_their_failures() -> None:
    assert flaky_failures("flaky-2-abc") == 2
    assert flaky_failures("flaky-abc") is None


def test_registry_all_leaves_out_the_probe() -> None:
    assert "probe" not in factories_for("all")
    assert {"rewards", "leaderboards"} <= set(factories_for("all"))
    assert list(factories_for("probe")) == ["probe"]
    with pytest.raises(UnknownProcessorError, match="no processor named 'nope'"):
        factories_for("nope")
