"""The root of every liveops error, and the contract errors.

Every error says whether retrying can help (`retriable`); callers ask the error instead of keeping
lists of exception classes. Handlers raise, the runtime decides what to do.
"""

from __future__ import annotations

from typing import ClassVar


class LiveopsError(Exception):
    """Root of all liveops errors."""

    retriable: ClassVar[bool] = False


class ContractError(LiveopsError):
    """An event does not honour the protobuf contract; retrying cannot fix it."""


class UndecodableEventError(ContractError):
    """The bytes are not a protobuf Envelope."""


class InvalidEnvelopeError(ContractError):
    """The envelope decodes but lacks what every event must carry (ids, payload)."""
