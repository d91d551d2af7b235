"""What can go wrong when publishing or serving the gateway, and whether retrying helps."""

from __future__ import annotations

from schemas.errors import LiveopsError


class ProducerError(LiveopsError):
    """Root of the errors the publisher library and the gateway raise."""


class PublishError(ProducerError):
    """The broker did not acknowledge a record within the retry budget; the record may or may
    not have been written, so a retry must carry the same idempotency key."""

    retriable = True


class PublishRejectedError(PublishError):
    """The broker refused the record for a reason retrying cannot fix (too large, not allowed)."""

    retriable = False


class PublisherNotStartedError(ProducerError):
    """publish() was called before start() or after stop(): a programming error."""


class GatewayConfigError(ProducerError):
    """The gateway cannot start with these settings (a missing or unreadable JWT key)."""
