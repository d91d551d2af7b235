"""Shop offers in the rules file: prices only on offer_bought, positive there, never changed by
campaigns; an offer's event decides to a spend, an unknown offer to the no-rule refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rewards_builders import NOW
from rewards_builders import build_envelope as envelope

from schemas.liveops.v1 import actions_pb2
from workers.processors.rewards.actions import Action, ActionKind, action_of
from workers.processors.rewards.errors import RulesFileError
from workers.processors.rewards.grants import AssetKind
from workers.processors.rewards.plan import GrantPlan, Refusal, RefusalCode, decide
from workers.processors.rewards.rules import parse_rule_book

SWORD = """
[caps]
offer_bought = 0

[[rules]]
id = "offer-sword"
version = 3
action = "offer_bought"
when = { offer_id = "sword" }
costs = [{ asset = "coins", amount = 500 }, { asset = "coins", amount = 100 }]
grants = [{ asset = "sword", kind = "item", amount = 1 }]
"""
#: Runs at NOW, for every gameplay action (offers are not gameplay) and, listed, for offers.
CAMPAIGNS = f"""
[[campaigns]]
id = "everything-double"
version = 1
starts_at = {(NOW - timedelta(days=1)).isoformat()}
ends_at = {(NOW + timedelta(days=1)).isoformat()}
multiplier = 2

[[campaigns]]
id = "shop-bonus"
version = 4
starts_at = {(NOW - timedelta(days=1)).isoformat()}
ends_at = {(NOW + timedelta(days=1)).isoformat()}
actions = ["offer_bought"]
multiplier = 3
bonus = [{{ asset = "gems", amount = 5 }}]
"""


def bought(offer_id: str) -> actions_pb2.OfferBought:
    return actions_pb2.OfferBought(offer_id=offer_id)


def test_an_offer_rule_has_positive_costs_merged_per_asset() -> None:
    book = parse_rule_book(SWORD)
    rule = book.rule_for(Action(ActionKind.OFFER_BOUGHT, offer_id="sword"))
    assert rule is not None and rule.spends
    assert [(c.asset, c.kind, c.amount) for c in rule.costs] == [("coins", AssetKind.CURRENCY, 600)]
    assert book.rule_for(Action(ActionKind.OFFER_BOUGHT, offer_id="shield")) is None


NO_SEGMENTS: frozenset[str] = frozenset()
OFFER = "[[rules]]\nid = 'o'\nversion = 1\naction = 'offer_bought'\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[rules]]\nid = 'a'\nversion = 1\naction = 'level_completed'\n"
            "costs = [{ asset = 'coins', amount = 5 }]\ngrants = [{ asset = 'x', amount = 1 }]",
            "rule a: costs are only for action offer_bought: .* level_completed earns rewards",
        ),
        (
            "[[rules]]\nid = 'p'\nversion = 1\naction = 'purchase_fulfilled'\n"
            "costs = [{ asset = 'coins', amount = 5 }]\ngrants = [{ asset = 'x', amount = 1 }]",
            "rule p: costs are only for action offer_bought",
        ),
        (
            OFFER + "when = { offer_id = 's' }\ncosts = [{ asset = 'coins', amount = -500 }]\n"
            "grants = [{ asset = 'x', amount = 1 }]",
            r"rules\.0\.costs\.0\.amount: Input should be greater than 0",
        ),
        (
            OFFER + "when = { offer_id = 's' }\ncosts = [{ asset = 'coins', amount = 0 }]\n"
            "grants = [{ asset = 'x', amount = 1 }]",
            r"rules\.0\.costs\.0\.amount",
        ),
        (
            OFFER + "when = { offer_id = 's' }\ngrants = [{ asset = 'x', amount = 1 }]",
            "rule o: an offer_bought rule needs costs",
        ),
        (
            OFFER + "costs = [{ asset = 'coins', amount = 5 }]\n"
            "grants = [{ asset = 'x', amount = 1 }]",
            "rule o: an offer_bought rule needs when.offer_id",
        ),
        (
            OFFER + "when = { offer_id = 's' }\ncosts = [{ asset = 'coins', amount = 5 }]\n"
            "grants = [{ asset = 'coins', amount = 1 }]",
            "rule o: coins both cost and granted",
        ),
        (
            SWORD + CAMPAIGNS.replace('"gems"', '"coins"'),
            "campaign shop-bonus: its bonus coins is what offer rule offer-sword costs",
        ),
    ],
)
def test_a_bad_offer_rule_is_refused_at_load_saying_why(text: str, message: str) -> None:
    with pytest.raises(RulesFileError, match=message):
        parse_rule_book(text, origin="rules.toml")


def test_a_retired_offer_needs_no_price() -> None:
    book = parse_rule_book(OFFER + "when = { offer_id = 's' }\nretired = true")
    assert book.rules[0].retired


def test_the_client_sends_the_offer_id_only() -> None:
    action = action_of(envelope("offer_bought", bought("sword")))
    assert action == Action(ActionKind.OFFER_BOUGHT, offer_id="sword")


def test_an_offer_decides_to_an_uncapped_spend_at_the_rule_price() -> None:
    decision = decide(
        parse_rule_book(SWORD), envelope("offer_bought", bought("sword")), NO_SEGMENTS, NOW
    )
    assert isinstance(decision, GrantPlan)
    assert decision.cap is None  # [caps] offer_bought = 0 would refuse every spend
    assert decision.rule.id == "offer-sword" and decision.campaign is None
    assert [(g.asset, g.amount) for g in decision.grants] == [("sword", 1)]


def test_an_unknown_offer_gets_the_no_rule_outcome() -> None:
    decision = decide(
        parse_rule_book(SWORD), envelope("offer_bought", bought("shield")), NO_SEGMENTS, NOW
    )
    assert isinstance(decision, Refusal)
    assert decision.code is RefusalCode.NO_RULE
    assert decision.detail == "no rule for offer_bought(offer_id='shield')"


def test_campaigns_change_offer_grants_only_when_listed_and_never_the_costs() -> None:
    book = parse_rule_book(SWORD + CAMPAIGNS)
    decision = decide(book, envelope("offer_bought", bought("sword")), NO_SEGMENTS, NOW)
    assert isinstance(decision, GrantPlan)
    # "everything-double" lists no actions: offers are not gameplay, it is skipped.
    assert decision.campaign is not None and decision.campaign.id == "shop-bonus"
    assert [(g.asset, g.amount) for g in decision.grants] == [("sword", 3), ("gems", 5)]
    assert [(c.asset, c.amount) for c in decision.rule.costs] == [("coins", 600)]
