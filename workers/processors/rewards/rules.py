"""Reward rules and daily caps: versioned data read from a TOML file, changeable without a deploy.

A rule maps an action (with optional conditions) to grants; a shop offer's rule (action
`offer_bought`) also has costs, the price debited from the wallet. For each event the first
rule in file order whose action and conditions match is used, so specific rules go before
general ones. A retired rule stays in the file so that events still arriving for it get a clear
"rule retired" outcome instead of silently matching a broader rule. Every grant records the
rule id and version, and the campaign id and version, that produced it.
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from workers.processors.rewards.actions import Action, ActionKind
from workers.processors.rewards.campaigns import Campaign
from workers.processors.rewards.errors import RulesFileError
from workers.processors.rewards.grants import ID_LENGTH, AssetKind, GrantSpec, merge_grants

#: The Action fact each condition tests (Conditions.match).
CONDITION_FACTS = {
    "level_id": "level_id",
    "min_stars": "stars",
    "quest_id": "quest_id",
    "min_streak_days": "streak_days",
    "mode": "mode",
    "leaderboard_id": "leaderboard_id",
    "season_id": "season_id",
    "max_rank": "rank",
    "product_id": "product_id",
    "offer_id": "offer_id",
}


def _no_facts(action: Action) -> None:
    return None


#: The smallest step of a datetime: the last instant before an exclusive end.
_INSTANT = timedelta(microseconds=1)


class Conditions(BaseModel):
    """Facts an action must have for the rule to match; unset means "any"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level_id: str | None = None
    min_stars: int | None = Field(default=None, ge=0)
    quest_id: str | None = None
    min_streak_days: int | None = Field(default=None, ge=1)
    mode: str | None = None
    #: Seasons recur ("arena-weekly:2026-W48"): a rule usually names the board, not the season.
    leaderboard_id: str | None = None
    season_id: str | None = None
    max_rank: int | None = Field(default=None, ge=1)
    product_id: str | None = None
    offer_id: str | None = None

    def match(self, action: Action) -> bool:
        equal = (
            (self.level_id, action.level_id),
            (self.quest_id, action.quest_id),
            (self.mode, action.mode),
            (self.leaderboard_id, action.leaderboard_id),
            (self.season_id, action.season_id),
            (self.product_id, action.product_id),
            (self.offer_id, action.offer_id),
        )
        if any(wanted is not None and wanted != have for wanted, have in equal):
            return False
        if self.min_stars is not None and action.stars < self.min_stars:
            return False
        if self.min_streak_days is not None and action.streak_days < self.min_streak_days:
            return False
        # A rank of 0 means "unranked": never inside a top-N.
        return self.max_rank is None or 0 < action.rank <= self.max_rank


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=ID_LENGTH)
    version: int = Field(ge=1)
    action: ActionKind
    when: Conditions = Conditions()
    grants: tuple[GrantSpec, ...] = ()
    #: What a shop offer (action `offer_bought`, only) costs: positive in the file, debited
    #: (negative ledger rows) when it is bought. Campaigns never change costs.
    costs: tuple[GrantSpec, ...] = ()
    #: The cap bucket ([caps] key); defaults to the action's name.
    reward_type: str | None = Field(default=None, min_length=1, max_length=ID_LENGTH)
    retired: bool = False

    @field_validator("costs")
    @classmethod
    def _merge_costs(cls, costs: tuple[GrantSpec, ...]) -> tuple[GrantSpec, ...]:
        return merge_grants(costs)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.action is ActionKind.PURCHASE_REFUNDED:
            raise ValueError(f"rule {self.id}: refunds reverse the purchase's grants, no rule")
        if not self.grants and not self.retired:
            raise ValueError(f"rule {self.id}: needs grants (or retired = true)")
        if self.action is ActionKind.OFFER_BOUGHT:
            self._check_offer()
        elif self.costs:
            raise ValueError(
                f"rule {self.id}: costs are only for action offer_bought: a price is what a "
                f"player pays for a shop offer, and {self.action.value} earns rewards, it must "
                "never take from the wallet"
            )
        return self

    def _check_offer(self) -> None:
        if self.when.offer_id is None:
            raise ValueError(
                f"rule {self.id}: an offer_bought rule needs when.offer_id: without it the "
                "rule would price every offer, unknown ones included"
            )
        if not self.costs and not self.retired:
            raise ValueError(
                f"rule {self.id}: an offer_bought rule needs costs: a free offer would be "
                "granted every time a client sends it (spends are never capped)"
            )
        granted = {(g.kind, g.asset) for g in self.grants}
        both = sorted({(c.kind, c.asset) for c in self.costs} & granted)
        if both:
            raise ValueError(
                f"rule {self.id}: {', '.join(asset for _, asset in both)} both cost and "
                "granted: the ledger holds one row per asset of an event"
            )

    def costs_asset(self, kind: AssetKind, asset: str) -> bool:
        return any(c.kind is kind and c.asset == asset for c in self.costs)

    @property
    def spends(self) -> bool:
        """Whether applying the rule debits the wallet (a shop offer with a price)."""
        return bool(self.costs)

    @property
    def cap_type(self) -> str:
        return self.reward_type or self.action.value


class RuleBook(BaseModel):
    """The whole rules file: rules, daily caps per reward type, campaigns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[Rule, ...] = ()
    #: reward type -> most grants per player per UTC day.
    caps: Mapping[str, int] = Field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()

    # Lookups built once per loaded file: decide() runs per event, the file changes rarely.
    # cached_property, not private attributes: those go through pydantic's slow __getattr__.
    @cached_property
    def _by_action(self) -> dict[ActionKind, tuple[Rule, ...]]:
        return {kind: tuple(r for r in self.rules if r.action is kind) for kind in ActionKind}

    @cached_property
    def _grants(self) -> dict[tuple[str, str], tuple[GrantSpec, ...]]:
        return {}

    @model_validator(mode="after")
    def _check(self) -> Self:
        for kind, items in (("rule", self.rules), ("campaign", self.campaigns)):
            ids = [item.id for item in items]
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"{kind} ids must be unique; repeated: {', '.join(repeated)}")
        bad_caps = sorted(name for name, limit in self.caps.items() if limit < 0)
        if bad_caps:
            raise ValueError(f"caps must be >= 0: {', '.join(bad_caps)}")
        self._check_bonus_against_costs()
        return self

    def _check_bonus_against_costs(self) -> None:
        """A campaign's bonus must not name an asset an offer it covers costs: the bonus would
        land in the row of the price (one ledger row per asset of an event)."""
        offers = [r for r in self.rules if r.costs]
        for campaign in self.campaigns:
            if not campaign.covers(ActionKind.OFFER_BOUGHT):
                continue
            bonus = {(b.kind, b.asset) for b in campaign.bonus}
            for rule in offers:
                both = sorted(asset for kind, asset in bonus if rule.costs_asset(kind, asset))
                if both:
                    raise ValueError(
                        f"campaign {campaign.id}: its bonus {', '.join(both)} is what offer "
                        f"rule {rule.id} costs; campaigns change grants, never prices"
                    )

    @cached_property
    def _fact_getters(self) -> dict[ActionKind, Callable[[Action], object]]:
        getters: dict[ActionKind, Callable[[Action], object]] = {}
        for kind, rules in self._by_action.items():
            tested = {name for rule in rules for name, value in rule.when if value is not None}
            facts = sorted(CONDITION_FACTS[name] for name in tested)
            getters[kind] = operator.attrgetter(*facts) if facts else _no_facts
        return getters

    def rule_key(self, action: Action) -> tuple[object, ...]:
        """What rule_for(action) depends on: the kind and the facts its rules' conditions
        test. Actions with equal keys match the same rule (a batch looks rules up once per
        key: levels differ by level id, but only stars are tested)."""
        return (action.kind, self._fact_getters[action.kind](action))

    def rule_for(self, action: Action) -> Rule | None:
        """The first rule (retired ones included) matching the action, or None."""
        for rule in self._by_action[action.kind]:
            if rule.when.match(action):
                return rule
        return None

    def grants_for(self, rule: Rule, campaign: Campaign | None) -> tuple[GrantSpec, ...]:
        """The rule's grants as changed by the campaign (computed once per pair)."""
        key = (rule.id, campaign.id if campaign else "")
        grants = self._grants.get(key)
        if grants is None:
            base = merge_grants(rule.grants)
            grants = self._grants[key] = base if campaign is None else campaign.apply(base)
        return grants

    def cap_for(self, rule: Rule) -> int | None:
        return self.caps.get(rule.cap_type)

    def needs_segments(self, start: datetime, end: datetime) -> bool:
        """Whether a campaign with a segment audience runs at some time in [start, end]: only
        then is the player_segments table read."""
        return any(
            c.audience.segments and c.starts_at <= end and start < c.ends_at for c in self.campaigns
        )

    def steady_between(self, start: datetime, end: datetime) -> bool:
        """Whether every instant of [start, end) is judged alike: within one UTC day, and no
        campaign starts or ends strictly inside."""
        if start.date() != (end - _INSTANT).date():
            return False
        return not any(
            start < edge < end for c in self.campaigns for edge in (c.starts_at, c.ends_at)
        )

    def campaigns_running(self, action: ActionKind, at: datetime) -> tuple[Campaign, ...]:
        return tuple(c for c in self.campaigns if c.runs_at(at) and c.covers(action))


def parse_rule_book(text: str, *, origin: str = "<text>") -> RuleBook:
    """Parse and validate a rules file's text; RulesFileError says what and where."""
    try:
        data = tomllib.loads(text)
        return RuleBook.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise RulesFileError(f"{origin}: not TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RulesFileError(
            f"{origin}: {where or 'file'}: {first['msg']} ({exc.error_count()} errors)"
        ) from None


def load_rule_book(path: Path) -> RuleBook:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_rule_book(text, origin=str(path))
