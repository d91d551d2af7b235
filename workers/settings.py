"""The one settings object of every liveops process, read from LIVEOPS_* environment variables.

Libraries never read the environment: the `liveops` command loads FleetSettings once and hands
each component its own section. Nested sections use a double underscore:
LIVEOPS_KAFKA__BOOTSTRAP_SERVERS, LIVEOPS_REDIS__URL, LIVEOPS_BATCH__REWARDS__MAX_RECORDS.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from producers.settings import GatewaySettings, PublisherSettings
from schemas.errors import LiveopsError
from topics.settings import KafkaSettings
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.processors.rewards.settings import RewardsSettings
from workers.runtime.settings import RuntimeSettings
from workers.streams.settings import VelocitySettings

ENV_PREFIX = "LIVEOPS_"
_NESTED = "__"


class SettingsError(LiveopsError):
    """A setting is missing or wrong; the message names the environment variable."""


class RedisSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    #: Prefix of every key we write, so several fleets (or test runs) share one Redis.
    key_prefix: str = "liveops"


class MySQLSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: mysql://user:password@host:port/database
    dsn: SecretStr = SecretStr("mysql://root@127.0.0.1:3306/test")
    pool_max_size: int = Field(default=10, gt=0)


class BatchSettings(BaseModel):
    """How much one processor takes per poll: bigger batches, fewer round trips."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_records: int = Field(default=500, gt=0)
    linger_ms: int = Field(default=50, ge=0)


class ProcessorBatches(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    leaderboards: BatchSettings = BatchSettings()
    rewards: BatchSettings = BatchSettings()
    iap: BatchSettings = BatchSettings(max_records=50)
    notifications: BatchSettings = BatchSettings(max_records=200)


class FleetSettings(BaseSettings):
    """Everything a liveops process can be told. Printing it masks secrets."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=_NESTED, frozen=True, extra="forbid"
    )

    kafka: KafkaSettings = KafkaSettings()
    publisher: PublisherSettings = PublisherSettings()
    gateway: GatewaySettings = GatewaySettings()
    redis: RedisSettings = RedisSettings()
    mysql: MySQLSettings = MySQLSettings()
    batch: ProcessorBatches = ProcessorBatches()
    runtime: RuntimeSettings = RuntimeSettings()
    leaderboards: LeaderboardSettings = LeaderboardSettings()
    rewards: RewardsSettings = RewardsSettings()
    velocity: VelocitySettings = VelocitySettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    #: Port of /metrics, /healthz and /readyz on workers; 0 picks a free port.
    metrics_port: int = Field(default=9100, ge=0, le=65535)


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + _NESTED.join(str(part) for part in loc).upper()


def _known_env_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        names.add(env)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _known_env_names(annotation, env + _NESTED)
    return names


def load_settings() -> FleetSettings:
    """Read LIVEOPS_* once. Raise SettingsError naming the first bad or unknown variable.

    pydantic-settings ignores environment variables it has no field for; a typo in a variable
    name would silently leave the default in force, so unknown LIVEOPS_* names are refused.
    """
    known = _known_env_names(FleetSettings)
    for name in sorted(os.environ):
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :] not in known:
            raise SettingsError(f"{name}: unknown setting (a typo?); see README, Settings")
    try:
        return FleetSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _env_name(first["loc"]) if first["loc"] else ENV_PREFIX + "*"
        raise SettingsError(f"{where}: {first['msg']}") from None


def reference_rows(model: BaseModel, prefix: str = ENV_PREFIX) -> list[tuple[str, str, str]]:
    """(variable, default, module documenting it) for every setting: the README's table."""
    rows: list[tuple[str, str, str]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        env = f"{prefix}{name.upper()}"
        if isinstance(value, BaseModel):
            rows += reference_rows(value, env + _NESTED)
            continue
        shown = "(secret)" if isinstance(value, SecretStr) else repr(value)
        if isinstance(value, os.PathLike):
            shown = "(packaged file)"
        rows.append((env, shown, type(model).__module__))
    return rows
