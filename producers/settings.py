"""Settings of the publisher library and of the reference gateway."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PublisherSettings(BaseModel):
    """How the publisher batches, bounds and retries (LIVEOPS_PUBLISHER__*)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    acks: str = "all"
    linger_ms: int = Field(default=5, ge=0)
    max_batch_bytes: int = Field(default=1_048_576, gt=0)
    compression_type: str | None = None
    #: Messages sent but not yet acknowledged; past this, publish() waits (back-pressure).
    max_in_flight: int = Field(default=10_000, gt=0)
    #: Total time one publish may spend retrying retriable broker errors.
    retry_budget_s: float = Field(default=10.0, gt=0)


class GatewaySettings(BaseModel):
    """The reference HTTP gateway (LIVEOPS_GATEWAY__*)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=65_536, gt=0)
