"""Sorting failures: which exceptions mean "a dependency is down", digests and back-off.

Handlers raise; the runtime decides. This module turns a driver's exception (redis-py,
PyMySQL, aiokafka) into our tree, so the loop asks `retriable` and the class, not driver types.
"""

from __future__ import annotations

import hashlib
import random
import traceback

import pymysql
import redis.exceptions
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from workers.errors import DependencyUnavailableError, TransientError, WorkerError

#: MySQL errors that pass by themselves: lock wait timeout, deadlock.
_MYSQL_TRANSIENT_CODES = frozenset({1205, 1213})
_RNG = random.Random()  # noqa: S311 - back-off jitter, not a secret


def classify(exc: BaseException) -> WorkerError | None:
    """Our error for a driver exception, or None when it is not a known driver failure.

    Connection loss and timeouts of Redis, MySQL or the broker mean the dependency is down
    (hold position); a MySQL deadlock or lock timeout is transient (retry the batch).
    """
    if isinstance(exc, WorkerError):
        return exc
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return DependencyUnavailableError(f"redis: {exc}")
    if isinstance(exc, pymysql.err.OperationalError) and exc.args:
        if exc.args[0] in _MYSQL_TRANSIENT_CODES:
            return TransientError(f"mysql: {exc}")
        return DependencyUnavailableError(f"mysql: {exc}")
    if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError):
        return DependencyUnavailableError(f"mysql: {exc}")
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError):
        return DependencyUnavailableError(f"kafka: {exc}")
    return None


def stack_digest(exc: BaseException) -> str:
    """A short hash of where the exception came from (files and functions, no line numbers).

    The same bug gives the same digest across events and releases that only moved lines, so
    an operator can group dead letters by cause.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = "|".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}" for frame in frames)
    text = f"{type(exc).__module__}.{type(exc).__qualname__}|{where}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def backoff_s(
    attempt: int, *, initial_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Capped exponential back-off, jittered to 50-100 % of the step; attempt counts from 0.

    Jitter spreads the reconnects of many workers after an outage instead of a thundering herd.
    """
    ceiling = min(max_s, initial_s * (2.0 ** min(attempt, 32)))
    draw = (rng or _RNG).uniform(0.5, 1.0)
    return ceiling * draw
