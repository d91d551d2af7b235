"""Settling a batch of decisions against the database's state, in event order, without I/O.

Given what the batch read under lock (today's cap counters, the ledger rows of the purchases
involved and, under the `reject` policy, the wallet nets those refunds and spends debit),
this decides each event's outcome and the rows to write:
1. purchases already fulfilled are duplicates; refunds find the grants they reverse;
2. daily caps: an event over its cap is refused as `capped` and recorded, not granted;
3. every ledger row moves its wallet net by its amount (written as relative deltas); a
   claw-back that would take a net below zero is recorded as debt or refused, per the
   `negative_balance` setting; a spend (a shop offer: its price debited and its grants given,
   one grant id, all or nothing) likewise, per `spend_negative_balance` (`spends` here).
Later events of the batch see the effects of earlier ones (counters, nets, purchases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from workers.processors.rewards.actions import ActionKind
from workers.processors.rewards.grants import (
    AssetKind,
    GrantRecord,
    LedgerRow,
    grant_id_for,
)
from workers.processors.rewards.plan import (
    ClawbackPlan,
    Decision,
    GrantPlan,
    Refusal,
    RefusalCode,
)
from workers.processors.rewards.settings import NegativeBalancePolicy
from workers.runtime.processor import OutcomeKind

CapKey = tuple[str, date, str]
WalletKey = tuple[str, AssetKind, str]


@dataclass(frozen=True, slots=True)
class BatchState:
    """What the batch read under lock; missing keys mean zero / no rows.

    `nets` holds only what the `reject` policy needs: the entries refunds and spends would
    debit.
    """

    cap_counts: Mapping[CapKey, int] = field(default_factory=dict)
    nets: Mapping[WalletKey, int] = field(default_factory=dict)
    purchase_rows: Mapping[str, tuple[LedgerRow, ...]] = field(default_factory=dict)


class Settled(NamedTuple):
    """The outcome of one event; `record` is set when ledger rows were written for it.

    A NamedTuple: one is built per event of every batch, and it is cheaper than a frozen
    dataclass."""

    kind: OutcomeKind
    reason: str = ""
    record: GrantRecord | None = None
    refusal: Refusal | None = None


@dataclass
class Settlement:
    results: list[Settled] = field(default_factory=list)
    ledger_rows: list[LedgerRow] = field(default_factory=list)
    #: How much the batch moves each wallet/inventory net (written as `net = net + delta`).
    deltas: dict[WalletKey, int] = field(default_factory=dict)
    #: How many grants the batch adds to each cap counter.
    cap_increments: dict[CapKey, int] = field(default_factory=dict)
    #: Refusals to record in reward_refusals.
    refusals: list[Refusal] = field(default_factory=list)
    #: Idempotency keys whose durable claim must be released: they will be delivered again
    #: (retry) or replayed from the dead letters (failed).
    unclaimed: list[str] = field(default_factory=list)


def wallet_key(row: LedgerRow) -> WalletKey:
    return (row.player_id, row.asset_kind, row.asset_id)


def grant_rows(plan: GrantPlan) -> tuple[LedgerRow, ...]:
    event, rule, campaign = plan.event, plan.rule, plan.campaign
    grant_id = grant_id_for(event.idempotency_key)
    # Positional, in LedgerRow's field order: this runs for every granted asset.
    return tuple(
        LedgerRow(
            grant_id,
            event.player_id,
            spec.kind,
            spec.asset,
            spec.amount,
            plan.action.kind.value,
            event.idempotency_key,
            event.event_id,
            rule.id,
            rule.version,
            campaign.id if campaign else None,
            campaign.version if campaign else None,
            plan.action.purchase_ref or None,
        )
        for spec in plan.grants
    )


def spend_rows(plan: GrantPlan) -> tuple[LedgerRow, ...]:
    """A spend: the price as negative rows (the rule's costs: campaigns never change them,
    and no campaign is recorded on them), then the grants; one grant id."""
    event, rule = plan.event, plan.rule
    grant_id = grant_id_for(event.idempotency_key)
    reason = plan.action.kind.value
    debits = tuple(
        LedgerRow(
            grant_id,
            event.player_id,
            cost.kind,
            cost.asset,
            -cost.amount,
            reason,
            event.idempotency_key,
            event.event_id,
            rule.id,
            rule.version,
        )
        for cost in rule.costs
    )
    return debits + grant_rows(plan)


def reversal_rows(plan: ClawbackPlan, granted: Sequence[LedgerRow]) -> tuple[LedgerRow, ...]:
    """Exactly the negation of the purchase's grant rows, on the purchase's player."""
    grant_id = grant_id_for(plan.event.idempotency_key)
    return tuple(
        LedgerRow(
            grant_id=grant_id,
            player_id=row.player_id,
            asset_kind=row.asset_kind,
            asset_id=row.asset_id,
            amount=-row.amount,
            reason=ActionKind.PURCHASE_REFUNDED.value,
            idempotency_key=plan.event.idempotency_key,
            source_event_id=plan.event.event_id,
            rule_id=row.rule_id,
            rule_version=row.rule_version,
            campaign_id=row.campaign_id,
            campaign_version=row.campaign_version,
            purchase_ref=plan.purchase_ref,
            reverses_grant_id=row.grant_id,
        )
        for row in granted
    )


class _Batch:
    """Running state while settling one batch."""

    def __init__(
        self, state: BatchState, policy: NegativeBalancePolicy, spends: NegativeBalancePolicy
    ) -> None:
        self.state = state
        self.policy = policy
        self.spends = spends
        self.out = Settlement()
        self.purchases: dict[str, list[LedgerRow]] = {
            ref: list(rows) for ref, rows in state.purchase_rows.items()
        }

    def net(self, key: WalletKey) -> int:
        return self.state.nets.get(key, 0) + self.out.deltas.get(key, 0)

    def count(self, key: CapKey) -> int:
        return self.state.cap_counts.get(key, 0) + self.out.cap_increments.get(key, 0)

    def overdrawn(self, rows: Sequence[LedgerRow]) -> list[LedgerRow]:
        """The debits among `rows` that would take their wallet entry below zero."""
        return [r for r in rows if r.amount < 0 and self.net(wallet_key(r)) + r.amount < 0]

    def refuse(self, refusal: Refusal) -> None:
        if refusal.recorded:
            self.out.refusals.append(refusal)
        self.out.results.append(Settled(OutcomeKind.REJECTED, refusal.reason, refusal=refusal))

    def write(self, rows: tuple[LedgerRow, ...], campaign_missed: str = "") -> None:
        for row in rows:
            key = wallet_key(row)
            self.out.deltas[key] = self.out.deltas.get(key, 0) + row.amount
            if row.purchase_ref:
                self.purchases.setdefault(row.purchase_ref, []).append(row)
        self.out.ledger_rows.extend(rows)
        record = GrantRecord(rows, campaign_missed)
        reason = f"campaign skipped: {campaign_missed}" if campaign_missed else ""
        self.out.results.append(Settled(OutcomeKind.APPLIED, reason, record))

    def grant(self, plan: GrantPlan) -> None:
        ref = plan.action.purchase_ref
        if ref:
            earlier = [r for r in self.purchases.get(ref, []) if r.reverses_grant_id is None]
            if earlier:
                detail = f"purchase {ref} already fulfilled by grant {earlier[0].grant_id}"
                self.out.results.append(Settled(OutcomeKind.DUPLICATE, detail))
                return
        if plan.cap is not None:
            key = (plan.event.player_id, plan.day, plan.rule.cap_type)
            if self.count(key) >= plan.cap:
                detail = f"{plan.rule.cap_type} cap of {plan.cap}/day reached on {plan.day}"
                self.refuse(Refusal(plan.event, RefusalCode.CAPPED, detail, plan.rule))
                return
            self.out.cap_increments[key] = self.out.cap_increments.get(key, 0) + 1
        if plan.rule.costs:
            self.spend(plan)
            return
        self.write(grant_rows(plan), plan.campaign_missed)

    def spend(self, plan: GrantPlan) -> None:
        """Debit the price and give the grants, or (`reject`, a price above the balance,
        earlier events of the batch included) neither."""
        rows = spend_rows(plan)
        if self.spends == "reject":
            short = self.overdrawn(rows)
            if short:
                prices = ", ".join(
                    f"{r.asset_id}: balance {self.net(wallet_key(r))}, price {-r.amount}"
                    for r in short
                )
                detail = (
                    f"offer {plan.action.offer_id} (rule {plan.rule.id} v{plan.rule.version}) "
                    f"costs more than the balance ({prices})"
                )
                self.refuse(
                    Refusal(plan.event, RefusalCode.INSUFFICIENT_BALANCE, detail, plan.rule)
                )
                return
        self.write(rows, plan.campaign_missed)

    def claw_back(self, plan: ClawbackPlan) -> None:
        rows = self.purchases.get(plan.purchase_ref, [])
        granted = [r for r in rows if r.reverses_grant_id is None]
        if not granted:
            # Usually the purchase's own event is still in a retry tier: try again later.
            self.out.unclaimed.append(plan.event.idempotency_key)
            detail = f"no grant for purchase {plan.purchase_ref} yet"
            self.out.results.append(Settled(OutcomeKind.RETRY, detail))
            return
        if any(r.reverses_grant_id is not None for r in rows):
            detail = f"purchase {plan.purchase_ref} was already clawed back"
            self.refuse(Refusal(plan.event, RefusalCode.ALREADY_CLAWED_BACK, detail))
            return
        reversal = reversal_rows(plan, granted)
        short = self.overdrawn(reversal)
        if short and self.policy == "reject":
            assets = ", ".join(f"{r.asset_id} {self.net(wallet_key(r))}<{-r.amount}" for r in short)
            detail = f"claw-back of {plan.purchase_ref} exceeds the balance ({assets})"
            self.refuse(Refusal(plan.event, RefusalCode.INSUFFICIENT_BALANCE, detail))
            return
        self.write(reversal)


def settle(
    decisions: Sequence[Decision],
    state: BatchState,
    policy: NegativeBalancePolicy,
    *,
    spends: NegativeBalancePolicy = "reject",
) -> Settlement:
    """One Settled per decision, in order, and the rows that make them durable. `policy`
    is the claw-backs' negative-balance policy, `spends` the shop spends'."""
    batch = _Batch(state, policy, spends)
    for decision in decisions:
        if isinstance(decision, GrantPlan):
            batch.grant(decision)
        elif isinstance(decision, ClawbackPlan):
            batch.claw_back(decision)
        elif isinstance(decision, Refusal):
            batch.refuse(decision)
        else:
            batch.out.unclaimed.append(decision.event.idempotency_key)
            batch.out.results.append(Settled(OutcomeKind.FAILED, decision.detail))
    return batch.out


def spent_wallets(decisions: Sequence[Decision]) -> set[WalletKey]:
    """The wallet/inventory entries the batch's spends debit (their nets are read, and
    locked, when spends are under the `reject` policy)."""
    return {
        (decision.event.player_id, cost.kind, cost.asset)
        for decision in decisions
        if isinstance(decision, GrantPlan)
        for cost in decision.rule.costs
    }


def needed_state(decisions: Sequence[Decision]) -> tuple[set[CapKey], set[str]]:
    """Cap counters and purchases to read."""
    caps: set[CapKey] = set()
    purchases: set[str] = set()
    for decision in decisions:
        if isinstance(decision, GrantPlan):
            if decision.cap is not None:
                caps.add((decision.event.player_id, decision.day, decision.rule.cap_type))
            if decision.action.purchase_ref:
                purchases.add(decision.action.purchase_ref)
        elif isinstance(decision, ClawbackPlan):
            purchases.add(decision.purchase_ref)
    return caps, purchases
