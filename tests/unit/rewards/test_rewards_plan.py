"""Deciding per event: which rule, which campaign, or which clear refusal or failure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rewards_builders import NOW
from rewards_builders import build_envelope as envelope

from schemas.liveops.v1 import actions_pb2, purchases_pb2, rewards_pb2
from schemas.liveops.v1.envelope_pb2 import Envelope, Platform
from workers.processors.rewards.plan import (
    ClawbackPlan,
    Failure,
    GrantPlan,
    Refusal,
    RefusalCode,
    decide,
)
from workers.processors.rewards.rules import RuleBook, parse_rule_book

RULES = """
[caps]
match_won = 2

[[rules]]
id = "win"
version = 7
action = "match_won"
grants = [{ asset = "coins", amount = 100 }]

[[rules]]
id = "streak-7"
version = 1
action = "daily_login"
when = { min_streak_days = 7 }
grants = [{ asset = "gems", amount = 5 }]

[[rules]]
id = "gone"
version = 2
action = "quest_completed"
when = { quest_id = "harvest" }
retired = true

[[rules]]
id = "gems"
version = 1
action = "purchase_fulfilled"
when = { product_id = "gems.small" }
grants = [{ asset = "gems", amount = 100 }]

[[rules]]
id = "old-pack"
version = 1
action = "purchase_fulfilled"
when = { product_id = "old.pack" }
retired = true

[[rules]]
id = "champion"
version = 1
action = "season_prize"
when = { max_rank = 1 }
grants = [{ asset = "crown", kind = "item", amount = 1 }]

[[campaigns]]
id = "double"
version = 4
starts_at = 2026-11-25T00:00:00Z
ends_at = 2026-11-26T00:00:00Z
multiplier = 2
audience = { min_app_version = "2.14", segments = ["vip"] }
"""

WIN = actions_pb2.MatchResult(match_id="m", outcome=actions_pb2.MATCH_OUTCOME_WIN)


@pytest.fixture
def book() -> RuleBook:
    return parse_rule_book(RULES, origin="test")


def plan_of(book: RuleBook, envelope: Envelope, *segments: str) -> GrantPlan:
    decision = decide(book, envelope, frozenset(segments), NOW)
    assert isinstance(decision, GrantPlan), decision
    return decision


def test_a_won_match_in_a_campaign_records_rule_and_campaign(
    book: RuleBook,
) -> None:
    plan = plan_of(book, envelope("match_result", WIN), "vip")
    assert (plan.rule.id, plan.rule.version) == ("win", 7)
    assert plan.campaign is not None and (plan.campaign.id, plan.campaign.version) == ("double", 4)
    assert [(g.asset, g.amount) for g in plan.grants] == [("coins", 200)]
    assert (plan.cap, plan.day) == (2, NOW.date())


def test_campaign_windows_use_the_gateway_time_not_the_processing_time(
    book: RuleBook,
) -> None:
    late = envelope("match_result", WIN, received_at=NOW - timedelta(days=1))
    plan = plan_of(book, late, "vip")
    assert plan.campaign is None
    assert plan.day == (NOW - timedelta(days=1)).date()


def test_a_client_too_old_for_the_campaign_is_told_why(
    book: RuleBook,
) -> None:
    plan = plan_of(book, envelope("match_result", WIN, app_version="2.13.9"), "vip")
    assert plan.campaign is None
    assert [(g.asset, g.amount) for g in plan.grants] == [("coins", 100)]
    assert plan.campaign_missed == "campaign double: needs app >= 2.14, client has 2.13.9"


def test_players_outside_the_segment_get_the_base_grant_silently(
    book: RuleBook,
) -> None:
    plan = plan_of(book, envelope("match_result", WIN, platform=Platform.PLATFORM_WEB))
    assert plan.campaign is None and plan.campaign_missed == ""


def test_a_lost_match_earns_nothing_and_is_not_recorded(
    book: RuleBook,
) -> None:
    lost = actions_pb2.MatchResult(outcome=actions_pb2.MATCH_OUTCOME_LOSS)
    decision = decide(book, envelope("match_result", lost), frozenset(), NOW)
    assert isinstance(decision, Refusal)
    assert decision.code is RefusalCode.NOT_REWARDABLE and not decision.recorded
    assert decision.reason == "not_rewardable: match loss earns nothing"


def test_values_newer_than_this_worker_are_dead_lettered_for_replay_not_refused(
    book: RuleBook,
) -> None:
    # Given a match outcome and a store added to the schema after this worker was built
    # (proto3 enums are open: the numbers arrive as they are)
    draw = actions_pb2.MatchResult()
    draw.outcome = 42  # type: ignore[assignment]
    verified = purchases_pb2.PurchaseVerified(product_id="gems.small", transaction_id="t-1")
    verified.store = 7  # type: ignore[assignment]
    refunded = purchases_pb2.PurchaseRefunded(transaction_id="t-1")
    refunded.store = 7  # type: ignore[assignment]

    # Then each fails alone with a reason (dead-lettered, to replay after an upgrade; newer
    # rules may reward it), rather than being refused for good or failing the whole batch
    for payload, message in (
        ("match_result", draw),
        ("purchase_verified", verified),
        ("purchase_refunded", refunded),
    ):
        decision = decide(book, envelope(payload, message), frozenset(), NOW)
        assert isinstance(decision, Failure), payload
        assert "newer than this worker" in decision.detail


def test_an_event_for_a_retired_rule_gets_a_clear_refusal(
    book: RuleBook,
) -> None:
    quest = actions_pb2.QuestCompleted(quest_id="harvest")
    decision = decide(book, envelope("quest_completed", quest), frozenset(), NOW)
    assert isinstance(decision, Refusal) and decision.recorded
    assert decision.code is RefusalCode.RULE_RETIRED
    assert "rule gone v2 is retired" in decision.reason


def test_an_event_no_rule_matches_is_refused_as_no_rule(
    book: RuleBook,
) -> None:
    login = actions_pb2.DailyLogin(streak_days=2)
    decision = decide(book, envelope("daily_login", login), frozenset(), NOW)
    assert isinstance(decision, Refusal) and decision.code is RefusalCode.NO_RULE
    assert "daily_login(streak_days=2)" in decision.reason


def test_streak_and_season_rules_match_their_thresholds(
    book: RuleBook,
) -> None:
    streak = plan_of(book, envelope("daily_login", actions_pb2.DailyLogin(streak_days=9)))
    prize = rewards_pb2.SeasonPrizeAwarded(season_id="s1", rank=1)
    crown = plan_of(book, envelope("season_prize_awarded", prize))
    assert streak.rule.id == "streak-7"
    assert [(g.asset, g.kind.value) for g in crown.grants] == [("crown", "item")]


def test_purchases_carry_their_store_reference_and_are_never_capped(
    book: RuleBook,
) -> None:
    verified = purchases_pb2.PurchaseVerified(
        store=purchases_pb2.STORE_APPLE, product_id="gems.small", transaction_id="t-1"
    )
    plan = plan_of(book, envelope("purchase_verified", verified))
    assert plan.action.purchase_ref == "apple:t-1"
    assert plan.cap is None


@pytest.mark.parametrize("product", ["unknown.pack", "old.pack"])
def test_a_paid_purchase_without_a_live_rule_is_dead_lettered_not_refused(
    book: RuleBook, product: str
) -> None:
    verified = purchases_pb2.PurchaseVerified(
        store=purchases_pb2.STORE_GOOGLE, product_id=product, transaction_id="GPA.1"
    )
    decision = decide(book, envelope("purchase_verified", verified), frozenset(), NOW)
    assert isinstance(decision, Failure)
    assert "fix rules and replay" in decision.detail


def test_refunds_become_claw_backs_and_malformed_ones_fail(
    book: RuleBook,
) -> None:
    good = purchases_pb2.PurchaseRefunded(store=purchases_pb2.STORE_GOOGLE, transaction_id="GPA.1")
    bad = purchases_pb2.PurchaseRefunded(store=purchases_pb2.STORE_GOOGLE)
    claw = decide(book, envelope("purchase_refunded", good), frozenset(), NOW)
    fail = decide(book, envelope("purchase_refunded", bad), frozenset(), NOW)
    assert isinstance(claw, ClawbackPlan) and claw.purchase_ref == "google:GPA.1"
    assert isinstance(fail, Failure) and "without transaction_id" in fail.detail


def test_other_payloads_earn_nothing(book: RuleBook) -> None:
    rejected = purchases_pb2.PurchaseRejected(transaction_id="t")
    decision = decide(book, envelope("purchase_rejected", rejected), frozenset(), NOW)
    assert isinstance(decision, Refusal) and decision.code is RefusalCode.NOT_REWARDABLE
