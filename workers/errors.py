"""What can go wrong in a worker, and whether retrying helps.

Handlers raise; the runtime decides. By class:
- DependencyUnavailableError: Redis or MySQL is unreachable. The worker holds its position,
  reports not-ready and keeps retrying; nothing is committed, nothing goes to retry topics.
- TransientError: this event failed for a reason that may pass (an external store answered 5xx
  or timed out). Retried in process for a short bounded time, then through the retry topics.
- PermanentError: retrying cannot help (bad payload, validation). Straight to the dead letters.
ContractError (undecodable bytes, an envelope without ids) is permanent too.
"""

from __future__ import annotations

from schemas.errors import LiveopsError


class WorkerError(LiveopsError):
    """Root of the errors a processor or the runtime raises."""


class DependencyUnavailableError(WorkerError):
    """Redis, MySQL or the broker is unreachable; hold position and retry until it is back."""

    retriable = True


class TransientError(WorkerError):
    """This event failed for a reason that may pass; retry it later."""

    retriable = True


class PermanentError(WorkerError):
    """This event can never succeed as it is; dead-letter it with the reason."""


class ValidationFailedError(PermanentError):
    """The payload is well-formed protobuf but breaks a business rule of the processor."""
