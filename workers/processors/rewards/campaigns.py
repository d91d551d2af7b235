"""Live-event campaigns: a time window, an audience and a multiplier or bonus on grants.

Campaigns are data in the rules file, each with its own version, recorded on every grant it
changed. At most one campaign applies to a grant: the first in file order that runs at the
event's time, covers its action and whose audience contains the player. Stacking several
multipliers is a pricing decision we do not want made by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.codec import enum_label
from schemas.liveops.v1 import envelope_pb2
from workers.processors.rewards.actions import ActionKind
from workers.processors.rewards.grants import ID_LENGTH, GrantSpec, merge_grants

PlatformName = Literal["ios", "android", "web", "server"]
_VERSION = re.compile(r"^\s*(\d+(?:\.\d+)*)")


@lru_cache(maxsize=4096)  # a few hundred app versions are in use at any time
def parse_app_version(text: str) -> tuple[int, ...] | None:
    """ "2.14.0" -> (2, 14, 0); a suffix such as "-beta" is ignored; None when not a version."""
    match = _VERSION.match(text)
    if match is None:
        return None
    parts = [int(part) for part in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # so that "2.14" and "2.14.0" compare equal
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class PlayerProfile:
    """What audiences look at: from the event's ClientInfo and the player_segments table."""

    platform: str
    app_version: str
    segments: frozenset[str] = frozenset()

    @classmethod
    def of(cls, envelope: envelope_pb2.Envelope, segments: frozenset[str]) -> PlayerProfile:
        # A platform newer than this build is "unknown": in campaigns for every platform,
        # in none that name platforms.
        platform = enum_label(envelope_pb2.Platform, envelope.client.platform, "PLATFORM_")
        return cls(
            platform=platform or "unknown",
            app_version=envelope.client.app_version,
            segments=segments,
        )


class Audience(BaseModel):
    """Who a campaign is for; an empty audience means every player."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platforms: frozenset[PlatformName] = frozenset()
    min_app_version: str | None = None
    #: The player must belong to at least one of these segments.
    segments: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _check_version(self) -> Self:
        if self.min_app_version is not None and parse_app_version(self.min_app_version) is None:
            raise ValueError(f"min_app_version {self.min_app_version!r} is not a version")
        return self

    def contains(self, player: PlayerProfile) -> bool:
        """Platform and segments; the app version is judged apart (see too_old_for)."""
        if self.platforms and player.platform not in self.platforms:
            return False
        return not self.segments or bool(self.segments & player.segments)

    def too_old_for(self, player: PlayerProfile) -> str:
        """Why the player's client is too old for this audience, or "" when it is not."""
        if self.min_app_version is None:
            return ""
        required = parse_app_version(self.min_app_version)
        have = parse_app_version(player.app_version)
        if have is None:
            return f"needs app >= {self.min_app_version}, client sent no version"
        if required is not None and have < required:
            return f"needs app >= {self.min_app_version}, client has {player.app_version}"
        return ""


#: What a campaign with no `actions` leaves alone: what players pay for (money or coins).
_PAID = frozenset(
    {ActionKind.PURCHASE_FULFILLED, ActionKind.PURCHASE_REFUNDED, ActionKind.OFFER_BOUGHT}
)


class Campaign(BaseModel):
    """A live event: grants of the covered actions change while it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=ID_LENGTH)
    version: int = Field(ge=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    #: Actions it changes; empty means every gameplay action (purchases and shop offers only
    #: when listed: what a player pays for is a pricing decision).
    actions: frozenset[ActionKind] = frozenset()
    audience: Audience = Audience()
    multiplier: Decimal = Field(default=Decimal(1), gt=0, max_digits=6, decimal_places=3)
    bonus: tuple[GrantSpec, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError(f"campaign {self.id}: ends_at must be after starts_at")
        if self.multiplier == 1 and not self.bonus:
            raise ValueError(f"campaign {self.id}: needs a multiplier other than 1 or a bonus")
        if ActionKind.PURCHASE_REFUNDED in self.actions:
            raise ValueError(f"campaign {self.id}: refunds reverse grants, campaigns skip them")
        return self

    def runs_at(self, at: datetime) -> bool:
        """Start inclusive, end exclusive."""
        return self.starts_at <= at < self.ends_at

    def covers(self, action: ActionKind) -> bool:
        if self.actions:
            return action in self.actions
        return action not in _PAID

    def apply(self, grants: tuple[GrantSpec, ...]) -> tuple[GrantSpec, ...]:
        """Grants multiplied (rounded down, at least 1) plus the bonus."""
        boosted = [
            spec.model_copy(
                update={
                    "amount": max(
                        1, int((spec.amount * self.multiplier).to_integral_value(ROUND_FLOOR))
                    )
                }
            )
            for spec in grants
        ]
        return merge_grants([*boosted, *self.bonus])


@dataclass(frozen=True, slots=True)
class CampaignChoice:
    """The campaign that applies (if any) and, when none does only because the client is too
    old for a running one, why: so the player can be told to update."""

    campaign: Campaign | None
    missed: str = ""


def choose_campaign(
    campaigns: tuple[Campaign, ...], action: ActionKind, at: datetime, player: PlayerProfile
) -> CampaignChoice:
    missed = ""
    for campaign in campaigns:
        if not (campaign.runs_at(at) and campaign.covers(action)):
            continue
        if not campaign.audience.contains(player):
            continue
        too_old = campaign.audience.too_old_for(player)
        if too_old:
            missed = missed or f"campaign {campaign.id}: {too_old}"
            continue
        return CampaignChoice(campaign)
    return CampaignChoice(None, missed)
