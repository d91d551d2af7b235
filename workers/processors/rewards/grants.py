"""What a grant is made of: assets, amounts, ledger rows, and the grant id derived from the event.

Grant ids are derived from the source event's idempotency key, never drawn at random: a
redelivered event produces the same grant id, the same RewardGranted event id and, through the
ledger's unique key, no second row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from schemas.liveops.v1 import rewards_pb2

#: The processor name: the `source` of every ledger row this package writes.
SOURCE = "rewards"
#: Identifiers of players, assets, rules and campaigns fit VARCHAR(64) columns.
ID_LENGTH = 64


class AssetKind(StrEnum):
    """Currencies land in wallet_balances, items in inventory_items."""

    CURRENCY = "currency"
    ITEM = "item"

    def to_proto(self) -> rewards_pb2.AssetKind:
        return _PROTO_KINDS[self]


#: A dict, not a comparison with AssetKind.CURRENCY: enum member lookups on the class are
#: slow, and fill() does this once per granted asset.
_PROTO_KINDS: dict[AssetKind, rewards_pb2.AssetKind] = {
    AssetKind.CURRENCY: rewards_pb2.ASSET_KIND_CURRENCY,
    AssetKind.ITEM: rewards_pb2.ASSET_KIND_ITEM,
}


class GrantSpec(BaseModel):
    """An amount of one asset, as written in the rules file (always positive there)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    asset: str = Field(min_length=1, max_length=ID_LENGTH)
    kind: AssetKind = AssetKind.CURRENCY
    amount: int = Field(gt=0)


def merge_grants(specs: Iterable[GrantSpec]) -> tuple[GrantSpec, ...]:
    """One spec per (kind, asset), amounts added, in first-seen order.

    The ledger is unique on (source, idempotency key, asset): a rule's coins and a campaign's
    bonus coins for the same event must become one row.
    """
    totals: dict[tuple[AssetKind, str], int] = {}
    for spec in specs:
        key = (spec.kind, spec.asset)
        totals[key] = totals.get(key, 0) + spec.amount
    return tuple(
        GrantSpec(asset=asset, kind=kind, amount=amount) for (kind, asset), amount in totals.items()
    )


def grant_id_for(idempotency_key: str) -> str:
    """The grant id (and RewardGranted event id) of the event with this idempotency key."""
    return hashlib.sha256(f"{SOURCE}\x00{idempotency_key}".encode()).hexdigest()[:32]


class LedgerRow(NamedTuple):
    """One row of reward_ledger: one signed change of one asset of one player.

    A NamedTuple whose fields are the ledger's columns (ledger.LEDGER_COLUMNS, same order): a
    batch builds hundreds, and a tuple is both cheaper to build than a frozen dataclass and
    already the row an INSERT writes.
    """

    grant_id: str
    player_id: str
    asset_kind: AssetKind
    asset_id: str
    amount: int
    reason: str
    idempotency_key: str
    source_event_id: str
    rule_id: str | None = None
    rule_version: int | None = None
    campaign_id: str | None = None
    campaign_version: int | None = None
    purchase_ref: str | None = None
    reverses_grant_id: str | None = None
    source: str = SOURCE


class GrantRecord(NamedTuple):
    """Everything a RewardGranted event says about one applied grant or claw-back (a
    NamedTuple, one per grant of every batch: cheaper than a frozen dataclass)."""

    rows: tuple[LedgerRow, ...]
    campaign_missed: str = ""

    @property
    def first(self) -> LedgerRow:
        return self.rows[0]

    def _campaigned(self) -> LedgerRow:
        return next((row for row in self.rows if row.campaign_id), self.rows[0])

    def fill(self, message: rewards_pb2.RewardGranted) -> None:
        """Write this grant into `message` (in place: no intermediate message to copy)."""
        head = self.first
        message.grant_id = head.grant_id
        add = message.grants.add
        for row in self.rows:
            add(asset_id=row.asset_id, kind=_PROTO_KINDS[row.asset_kind], amount=row.amount)
        message.reason = head.reason
        message.source_event_id = head.source_event_id
        if head.rule_id:
            message.rule_id = head.rule_id
            message.rule_version = str(head.rule_version or "")
        # A spend's price rows come first and carry no campaign: the campaign of a grant is
        # the one on any of its rows.
        campaigned = head if head.campaign_id or len(self.rows) == 1 else self._campaigned()
        if campaigned.campaign_id:
            message.campaign_id = campaigned.campaign_id
            message.campaign_version = str(campaigned.campaign_version or "")
        if head.reverses_grant_id:
            message.reverses_grant_id = head.reverses_grant_id
        if self.campaign_missed:
            message.campaign_missed = self.campaign_missed
