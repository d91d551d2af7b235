"""Settling a batch: caps, purchase dedup, exact claw-backs, spends, debt or rejection, event
order."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from rewards_builders import NOW

from schemas.liveops.v1 import rewards_pb2
from workers.processors.rewards.actions import Action, ActionKind
from workers.processors.rewards.campaigns import Campaign
from workers.processors.rewards.grants import AssetKind, GrantSpec, LedgerRow, grant_id_for
from workers.processors.rewards.plan import ClawbackPlan, EventRef, GrantPlan, RefusalCode
from workers.processors.rewards.rules import Conditions, Rule
from workers.processors.rewards.settings import NegativeBalancePolicy, RewardsSettings
from workers.processors.rewards.settle import BatchState, Settlement, settle
from workers.runtime.processor import OutcomeKind

DAY = NOW.date()
WIN = Rule(
    id="win", version=1, action=ActionKind.MATCH_WON, grants=(GrantSpec(asset="coins", amount=10),)
)
PACK = Rule(
    id="pack",
    version=2,
    action=ActionKind.PURCHASE_FULFILLED,
    grants=(
        GrantSpec(asset="gems", amount=100),
        GrantSpec(asset="sword", kind=AssetKind.ITEM, amount=1),
    ),
)


def win(key: str, *, player: str = "p1", cap: int | None = None, day: date = DAY) -> GrantPlan:
    return GrantPlan(
        event=EventRef(player, key, f"e-{key}"),
        action=Action(ActionKind.MATCH_WON),
        rule=WIN,
        grants=WIN.grants,
        campaign=None,
        campaign_missed="",
        day=day,
        cap=cap,
    )


def purchase(key: str, ref: str = "apple:t1") -> GrantPlan:
    return GrantPlan(
        event=EventRef("p1", key, f"e-{key}"),
        action=Action(ActionKind.PURCHASE_FULFILLED, purchase_ref=ref),
        rule=PACK,
        grants=PACK.grants,
        campaign=None,
        campaign_missed="",
        day=DAY,
        cap=None,
    )


def refund(key: str, ref: str = "apple:t1") -> ClawbackPlan:
    return ClawbackPlan(EventRef("p1", key, f"e-{key}"), ref)


def kinds(out: Settlement) -> list[OutcomeKind]:
    return [result.kind for result in out.results]


def test_caps_count_earlier_grants_and_earlier_events_of_the_batch() -> None:
    state = BatchState(cap_counts={("p1", DAY, "match_won"): 1})
    out = settle([win("a", cap=3), win("b", cap=3), win("c", cap=3)], state, "debt")
    assert kinds(out) == [OutcomeKind.APPLIED, OutcomeKind.APPLIED, OutcomeKind.REJECTED]
    capped = out.results[2].refusal
    assert capped is not None and capped.code is RefusalCode.CAPPED
    assert out.results[2].reason == "capped: match_won cap of 3/day reached on 2026-11-25"
    assert out.cap_increments == {("p1", DAY, "match_won"): 2}
    assert [r.event.idempotency_key for r in out.refusals] == ["c"]
    assert out.deltas == {("p1", AssetKind.CURRENCY, "coins"): 20}


def test_caps_are_per_player_and_per_day() -> None:
    other_day = date(2026, 11, 26)
    out = settle(
        [win("a", cap=1), win("b", cap=1, player="p2"), win("c", cap=1, day=other_day)],
        BatchState(),
        "debt",
    )
    assert kinds(out) == [OutcomeKind.APPLIED] * 3


def test_grants_become_ledger_rows_and_one_delta_per_wallet_entry() -> None:
    out = settle([win("a"), win("b"), win("c", player="p2")], BatchState(), "debt")
    assert out.deltas == {
        ("p1", AssetKind.CURRENCY, "coins"): 20,
        ("p2", AssetKind.CURRENCY, "coins"): 10,
    }
    rows = out.ledger_rows
    assert [(r.grant_id, r.amount, r.rule_id, r.reason) for r in rows] == [
        (grant_id_for("a"), 10, "win", "match_won"),
        (grant_id_for("b"), 10, "win", "match_won"),
        (grant_id_for("c"), 10, "win", "match_won"),
    ]


def test_a_purchase_fulfilled_twice_is_a_duplicate_even_under_another_key() -> None:
    out = settle([purchase("v1"), purchase("v2")], BatchState(), "debt")
    assert kinds(out) == [OutcomeKind.APPLIED, OutcomeKind.DUPLICATE]
    assert f"already fulfilled by grant {grant_id_for('v1')}" in out.results[1].reason
    assert len(out.ledger_rows) == 2


def test_a_refund_reverses_exactly_the_purchase_grants() -> None:
    out = settle([purchase("v1"), win("w"), refund("r1")], BatchState(), "debt")
    assert kinds(out) == [OutcomeKind.APPLIED] * 3
    reversal = out.results[2].record
    assert reversal is not None
    assert [(r.asset_id, r.amount, r.reverses_grant_id, r.reason) for r in reversal.rows] == [
        ("gems", -100, grant_id_for("v1"), "purchase_refunded"),
        ("sword", -1, grant_id_for("v1"), "purchase_refunded"),
    ]
    assert out.deltas == {
        ("p1", AssetKind.CURRENCY, "gems"): 0,
        ("p1", AssetKind.ITEM, "sword"): 0,
        ("p1", AssetKind.CURRENCY, "coins"): 10,
    }


def earlier_purchase(player: str = "p1") -> dict[str, tuple[LedgerRow, ...]]:
    row = LedgerRow(
        grant_id="g-old",
        player_id=player,
        asset_kind=AssetKind.CURRENCY,
        asset_id="gems",
        amount=100,
        reason="purchase_fulfilled",
        idempotency_key="v-old",
        source_event_id="e-old",
        rule_id="pack",
        rule_version=1,
        purchase_ref="apple:t1",
    )
    return {"apple:t1": (row,)}


def test_a_claw_back_below_zero_becomes_debt_under_the_debt_policy() -> None:
    state = BatchState(
        nets={("p1", AssetKind.CURRENCY, "gems"): 30}, purchase_rows=earlier_purchase()
    )
    out = settle([refund("r1")], state, "debt")
    assert kinds(out) == [OutcomeKind.APPLIED]
    # The whole amount is debited; MySQL shows net -70 as balance 0 and debt 70.
    assert out.deltas == {("p1", AssetKind.CURRENCY, "gems"): -100}
    assert out.ledger_rows[0].amount == -100


def test_a_claw_back_below_zero_is_refused_under_the_reject_policy() -> None:
    state = BatchState(
        nets={("p1", AssetKind.CURRENCY, "gems"): 30}, purchase_rows=earlier_purchase()
    )
    out = settle([refund("r1")], state, "reject")
    assert kinds(out) == [OutcomeKind.REJECTED]
    assert out.results[0].reason.startswith("insufficient_balance: claw-back of apple:t1")
    assert "gems 30<100" in out.results[0].reason
    assert out.ledger_rows == [] and out.deltas == {}
    assert [r.code for r in out.refusals] == [RefusalCode.INSUFFICIENT_BALANCE]


def test_a_second_refund_of_the_same_purchase_is_refused() -> None:
    out = settle([refund("r1"), refund("r2")], BatchState(purchase_rows=earlier_purchase()), "debt")
    assert kinds(out) == [OutcomeKind.APPLIED, OutcomeKind.REJECTED]
    assert out.results[1].reason == "already_clawed_back: purchase apple:t1 was already clawed back"


def test_a_refund_before_its_purchase_is_retried_and_its_claim_released() -> None:
    out = settle([refund("r1")], BatchState(), "debt")
    assert kinds(out) == [OutcomeKind.RETRY]
    assert out.unclaimed == ["r1"]
    assert out.ledger_rows == []


def test_claw_backs_follow_the_purchase_to_its_player() -> None:
    state = BatchState(purchase_rows=earlier_purchase(player="p9"))
    out = settle([refund("r1")], state, "debt")
    assert out.ledger_rows[0].player_id == "p9"


SWORD = Rule(
    id="offer-sword",
    version=2,
    action=ActionKind.OFFER_BOUGHT,
    when=Conditions(offer_id="sword"),
    costs=(GrantSpec(asset="coins", amount=500),),
    grants=(GrantSpec(asset="sword", kind=AssetKind.ITEM, amount=1),),
)
COINS = ("p1", AssetKind.CURRENCY, "coins")
SWORDS = ("p1", AssetKind.ITEM, "sword")


def buy(key: str) -> GrantPlan:
    return GrantPlan(
        event=EventRef("p1", key, f"e-{key}"),
        action=Action(ActionKind.OFFER_BOUGHT, offer_id="sword"),
        rule=SWORD,
        grants=SWORD.grants,
        campaign=None,
        campaign_missed="",
        day=DAY,
        cap=None,
    )


def coins(balance: int) -> BatchState:
    return BatchState(nets={COINS: balance})


@pytest.mark.parametrize("policy", ["reject", "debt"])
@pytest.mark.parametrize("balance", [800, 500])
def test_a_spend_within_or_exactly_at_the_balance_debits_and_grants_as_one(
    policy: NegativeBalancePolicy, balance: int
) -> None:
    out = settle([buy("b1")], coins(balance), "debt", spends=policy)

    assert kinds(out) == [OutcomeKind.APPLIED]
    record = out.results[0].record
    assert record is not None
    assert [
        (r.grant_id, r.asset_id, r.amount, r.reason, r.rule_id, r.rule_version) for r in record.rows
    ] == [
        (grant_id_for("b1"), "coins", -500, "offer_bought", "offer-sword", 2),
        (grant_id_for("b1"), "sword", 1, "offer_bought", "offer-sword", 2),
    ]
    assert out.ledger_rows == list(record.rows)
    assert out.deltas == {COINS: -500, SWORDS: 1}
    assert out.cap_increments == {} and out.refusals == []


def test_a_spend_over_the_balance_is_refused_whole_under_the_reject_policy() -> None:
    out = settle([buy("b1")], coins(499), "debt", spends="reject")

    assert kinds(out) == [OutcomeKind.REJECTED]
    assert out.results[0].reason == (
        "insufficient_balance: offer sword (rule offer-sword v2) costs more than the balance "
        "(coins: balance 499, price 500)"
    )
    assert out.ledger_rows == [] and out.deltas == {}
    (refusal,) = out.refusals
    assert (refusal.code, refusal.rule) == (RefusalCode.INSUFFICIENT_BALANCE, SWORD)


def test_spends_are_refused_over_the_balance_by_default_whatever_the_claw_back_policy() -> None:
    # Claw-backs default to debt (the refunded coins are usually spent already); a shop spend
    # on credit would hand out items for free, so spends have their own policy: reject.
    assert RewardsSettings().negative_balance == "debt"
    assert RewardsSettings().spend_negative_balance == "reject"

    out = settle([buy("b1")], coins(499), RewardsSettings().negative_balance)

    assert kinds(out) == [OutcomeKind.REJECTED]
    assert out.ledger_rows == []


def test_a_spend_over_the_balance_becomes_debt_under_the_debt_policy() -> None:
    # The debt policy reads no nets: a spend is a relative delta, like every grant.
    out = settle([buy("b1")], BatchState(), "reject", spends="debt")

    assert kinds(out) == [OutcomeKind.APPLIED]
    # The whole price is debited; MySQL shows net -500 as balance 0 and debt 500.
    assert out.deltas == {COINS: -500, SWORDS: 1}


def test_of_two_spends_in_one_batch_only_the_one_that_fits_is_applied() -> None:
    out = settle([buy("b1"), buy("b2")], coins(900), "debt", spends="reject")

    assert kinds(out) == [OutcomeKind.APPLIED, OutcomeKind.REJECTED]
    assert "(coins: balance 400, price 500)" in out.results[1].reason
    assert out.deltas == {COINS: -500, SWORDS: 1}
    assert {r.grant_id for r in out.ledger_rows} == {grant_id_for("b1")}


def test_a_grant_earlier_in_the_batch_makes_a_spend_affordable() -> None:
    rich_win = win("w")._replace(grants=(GrantSpec(asset="coins", amount=100),))

    out = settle([buy("b0"), rich_win, buy("b1")], coins(400), "debt", spends="reject")

    assert kinds(out) == [OutcomeKind.REJECTED, OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    assert out.deltas == {COINS: -400, SWORDS: 1}


def test_a_spend_record_names_the_campaign_of_its_grants_not_of_its_price() -> None:
    campaign = Campaign(
        id="shop", version=3, starts_at=NOW, ends_at=NOW + timedelta(days=1), multiplier=Decimal(2)
    )
    plan = buy("b1")._replace(campaign=campaign)

    (result,) = settle([plan], coins(500), "debt", spends="reject").results

    assert result.record is not None
    assert [r.campaign_id for r in result.record.rows] == [None, "shop"]
    message = rewards_pb2.RewardGranted()
    result.record.fill(message)
    assert (message.campaign_id, message.campaign_version) == ("shop", "3")
    assert [(g.asset_id, g.amount) for g in message.grants] == [("coins", -500), ("sword", 1)]
    assert (message.reason, message.rule_id, message.reverses_grant_id) == (
        "offer_bought",
        "offer-sword",
        "",
    )
