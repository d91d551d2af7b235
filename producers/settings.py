"""Settings of the publisher library and of the reference gateway."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

#: RFC 7518 section 3.2: an HS256 key must be at least as long as the hash (32 bytes).
MIN_HS256_SECRET_BYTES = 32


class PublisherSettings(BaseModel):
    """How the publisher batches, bounds and retries (LIVEOPS_PUBLISHER__*)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    acks: Literal["all", "1", "0"] = "all"
    linger_ms: int = Field(default=5, ge=0)
    max_batch_bytes: int = Field(default=1_048_576, gt=0)
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    #: Messages sent but not yet acknowledged; past this, publish() waits (back-pressure).
    max_in_flight: int = Field(default=10_000, gt=0)
    #: Total time one publish may spend retrying retriable broker errors.
    retry_budget_s: float = Field(default=10.0, gt=0)
    #: How long the readiness check waits for cluster metadata.
    ping_timeout_s: float = Field(default=5.0, gt=0)


class GatewaySettings(BaseModel):
    """The reference HTTP gateway (LIVEOPS_GATEWAY__*).

    Tokens are HS256 with `jwt_secret`, or RS256 with `jwt_public_key_pem`; the gateway refuses
    to start when the key of the chosen algorithm is missing (see producers/gateway/auth.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=65_536, gt=0)

    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_public_key_pem: str | None = None
    #: When set, tokens must carry this `iss` / `aud`.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    #: Clock skew tolerated on `exp`, `nbf` and `iat`.
    jwt_leeway_s: float = Field(default=30.0, ge=0)

    #: How long a request's Idempotency-Key maps to its event id (retries within it are not
    #: published again).
    idempotency_ttl_s: int = Field(default=86_400, gt=0)
    #: How long an attempt that is still publishing holds the key. Longer than one publish can
    #: take (publisher retry budget plus the broker request timeout), so a gateway that dies
    #: mid-publish frees the key for the client's retry instead of blocking it for a day.
    idempotency_pending_ttl_s: int = Field(default=60, gt=0)
    #: How long an identical concurrent request waits for the first one to finish.
    idempotency_wait_s: float = Field(default=5.0, ge=0)
    #: Retry-After of the 503 answered when the broker cannot take the event.
    publish_retry_after_s: int = Field(default=5, ge=1)
    #: After SIGTERM: stop accepting, finish requests in flight within this time.
    shutdown_grace_s: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _check_secret_length(self) -> Self:
        secret = self.jwt_secret
        if secret is not None and len(secret.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES:
            raise ValueError(f"jwt_secret must be at least {MIN_HS256_SECRET_BYTES} bytes long")
        return self
