"""Leaderboard definitions: the versioned boards file, loaded once when a worker starts.

The file is TOML (`boards.toml` in this package by default, any path through
LeaderboardSettings.definitions_path): a top-level `version` string, then one
`[[leaderboards]]` table per board. Changing a board means a new file version and a restart; a
running worker never re-reads the file, so every event of a batch sees the same rules.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]  # no stubs, no py.typed
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workers.processors.leaderboards.encoding import SortKeyCodec, time_bits_for
from workers.processors.leaderboards.errors import LeaderboardConfigError

Better = Literal["higher", "lower"]
Operator = Literal["best", "latest", "increment", "decrement"]
ResetSchedule = Literal["none", "daily", "weekly", "monthly", "cron"]

#: Tie-break epoch of boards that never reset and have no `starts_at`.
DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class LeaderboardDefinition(BaseModel):
    """One board: how scores combine, how ranks sort, when it resets and what is archived."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID_PATTERN)
    title: str = ""
    #: Whether a higher or a lower score ranks first.
    better: Better = "higher"
    #: best: keep the player's best score; latest: keep the last one; increment/decrement:
    #: add/subtract each submission to/from a running total.
    operator: Operator = "best"
    reset: ResetSchedule = "none"
    #: Five-field cron expression, in `timezone`; only with reset = "cron".
    cron: str | None = None
    #: IANA zone in which daily/weekly/monthly/cron periods start (midnight, Monday, the 1st).
    timezone: str = "UTC"
    #: Accepted range of one submission (inclusive); anything else is rejected out_of_range.
    min_score: int = 0
    max_score: int
    #: Accepted submissions per player per period; None means no limit.
    max_submissions_per_period: int | None = Field(default=None, gt=0)
    #: How many top entries are archived (with final ranks) when a period closes.
    archive_top_n: int = Field(default=100, ge=0, le=10_000)
    #: Whether each archived entry gets a SeasonPrizeAwarded event (rewards pays by rank).
    award_prizes: bool = True
    #: "Entered the top N" thresholds that produce a rank-changed event.
    top_thresholds: tuple[int, ...] = (10,)
    #: How long a finished period's sorted set is kept after its end.
    retention_days: int = Field(default=30, gt=0)
    #: The board accepts submissions received in [starts_at, ends_at); a None bound is open.
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs an explicit UTC offset, for example 2026-12-01T00:00:00Z")
        return value

    @field_validator("top_thresholds")
    @classmethod
    def _positive_thresholds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(n <= 0 for n in value):
            raise ValueError("thresholds are ranks, 1 or more")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.reset == "cron") != (self.cron is not None):
            raise ValueError("`cron` is required with reset = 'cron' and only then")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"invalid cron expression {self.cron!r}")
        if self.min_score > self.max_score:
            raise ValueError("min_score is above max_score")
        limit = self.codec.score_limit
        if self.max_score > limit or self.min_score < -limit:
            raise ValueError(
                f"scores must stay within +-{limit} for a {self.reset} board "
                "(53-bit sort key, see encoding.py)"
            )
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def codec(self) -> SortKeyCodec:
        """How this board packs (score, time reached) into one sorted-set score."""
        return SortKeyCodec(time_bits=time_bits_for(self.reset), better=self.better)

    @property
    def epoch(self) -> datetime:
        """Start of the single period of a board that never resets (its tie-break origin)."""
        return self.starts_at or DEFAULT_EPOCH

    @property
    def retention_s(self) -> int:
        return self.retention_days * 24 * 3600

    def is_open_at(self, instant: datetime) -> bool:
        """Whether the board accepts a submission received at `instant`."""
        if self.starts_at is not None and instant < self.starts_at:
            return False
        return self.ends_at is None or instant < self.ends_at


class Definitions(BaseModel):
    """Every board of one version of the definitions file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    leaderboards: tuple[LeaderboardDefinition, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [board.id for board in self.leaderboards]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate leaderboard ids: {', '.join(duplicates)}")
        return self

    def get(self, leaderboard_id: str) -> LeaderboardDefinition | None:
        for board in self.leaderboards:
            if board.id == leaderboard_id:
                return board
        return None

    def __iter__(self) -> Iterator[LeaderboardDefinition]:  # type: ignore[override]  # iterate boards, not pydantic fields
        return iter(self.leaderboards)

    def __len__(self) -> int:
        return len(self.leaderboards)


def parse_definitions(text: str, *, source: str = "<string>") -> Definitions:
    """Parse the TOML text of a definitions file; LeaderboardConfigError says what is wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LeaderboardConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Definitions.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise LeaderboardConfigError(f"{source}: {where}: {first['msg']}") from None


def load_definitions(path: Path | None = None) -> Definitions:
    """Load the definitions file at `path`, or the one shipped in this package."""
    if path is None:
        text = resources.files(__package__).joinpath("boards.toml").read_text(encoding="utf-8")
        return parse_definitions(text, source="boards.toml (packaged)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LeaderboardConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_definitions(text, source=str(path))
