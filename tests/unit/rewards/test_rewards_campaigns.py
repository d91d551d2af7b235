"""Campaigns: windows, audiences, clients too old, multipliers and bonuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from rewards_builders import NOW, build_envelope

from schemas.liveops.v1.actions_pb2 import DailyLogin
from schemas.liveops.v1.envelope_pb2 import Platform
from workers.processors.rewards.actions import ActionKind, time_window
from workers.processors.rewards.campaigns import (
    Campaign,
    PlayerProfile,
    choose_campaign,
    parse_app_version,
)
from workers.processors.rewards.grants import AssetKind, GrantSpec
from workers.processors.rewards.rules import RuleBook

START = datetime(2026, 11, 20, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
IOS_NEW = PlayerProfile("ios", "2.14.0")


def campaign(**fields: Any) -> Campaign:
    base: dict[str, Any] = {
        "id": "winter",
        "version": 3,
        "starts_at": START,
        "ends_at": END,
        "multiplier": Decimal("1.5"),
    }
    return Campaign.model_validate(base | fields)


def test_the_window_includes_its_start_and_excludes_its_end() -> None:
    c = campaign()
    assert c.runs_at(START)
    assert c.runs_at(END - timedelta(microseconds=1))
    assert not c.runs_at(END)
    assert not c.runs_at(START - timedelta(seconds=1))


def test_no_actions_listed_means_gameplay_but_not_purchases() -> None:
    everything = campaign()
    assert everything.covers(ActionKind.MATCH_WON)
    assert not everything.covers(ActionKind.PURCHASE_FULFILLED)
    assert campaign(actions=["purchase_fulfilled"]).covers(ActionKind.PURCHASE_FULFILLED)
    assert not campaign(actions=["level_completed"]).covers(ActionKind.MATCH_WON)


@pytest.mark.parametrize(
    ("audience", "player", "inside"),
    [
        ({}, PlayerProfile("web", ""), True),
        ({"platforms": ["ios"]}, PlayerProfile("ios", "1.0"), True),
        ({"platforms": ["ios"]}, PlayerProfile("android", "9.0"), False),
        ({"segments": ["vip"]}, PlayerProfile("ios", "1.0", frozenset({"vip", "eu"})), True),
        ({"segments": ["vip"]}, PlayerProfile("ios", "1.0", frozenset({"eu"})), False),
    ],
)
def test_audience_by_platform_and_segment(
    audience: dict[str, Any], player: PlayerProfile, inside: bool
) -> None:
    assert campaign(audience=audience).audience.contains(player) is inside


@pytest.mark.parametrize(
    ("have", "too_old"),
    [
        ("2.14.0", ""),
        ("2.14", ""),
        ("2.15.1-beta", ""),
        ("10.0", ""),
        ("2.9.9", "2.9.9"),
        ("", "no version"),
        ("latest", "no version"),
    ],
)
def test_min_app_version_compares_numerically(have: str, too_old: str) -> None:
    reason = campaign(audience={"min_app_version": "2.14.0"}).audience.too_old_for(
        PlayerProfile("ios", have)
    )
    assert (reason == "") is (too_old == "")
    assert too_old in reason


def test_versions_parse_as_numbers() -> None:
    assert parse_app_version("2.10.0") == (2, 10)
    assert parse_app_version("2.9") < parse_app_version("2.10")  # type: ignore[operator]  # both parse
    assert parse_app_version("v2") is None


def test_a_client_too_old_gets_the_base_grant_and_a_reason() -> None:
    running = campaign(audience={"min_app_version": "3.0"})
    choice = choose_campaign((running,), ActionKind.MATCH_WON, START, IOS_NEW)
    assert choice.campaign is None
    assert choice.missed == "campaign winter: needs app >= 3.0, client has 2.14.0"


def test_the_first_eligible_campaign_applies_and_none_is_missed() -> None:
    too_new = campaign(id="a", audience={"min_app_version": "3.0"})
    fits = campaign(id="b")
    choice = choose_campaign((too_new, fits), ActionKind.MATCH_WON, START, IOS_NEW)
    assert choice.campaign is fits
    assert choice.missed == ""


def test_outside_the_window_or_the_audience_nothing_is_missed() -> None:
    other_platform = campaign(audience={"platforms": ["android"], "min_app_version": "3.0"})
    for at, c in ((END, campaign()), (START, other_platform)):
        choice = choose_campaign((c,), ActionKind.MATCH_WON, at, IOS_NEW)
        assert choice.campaign is None and choice.missed == ""


def test_multiplier_rounds_down_and_bonus_merges() -> None:
    c = campaign(
        multiplier=Decimal("1.5"),
        bonus=[{"asset": "coins", "amount": 5}, {"asset": "hat", "kind": "item", "amount": 1}],
    )
    grants = c.apply((GrantSpec(asset="coins", amount=99), GrantSpec(asset="gems", amount=1)))
    assert [(g.asset, g.kind, g.amount) for g in grants] == [
        ("coins", AssetKind.CURRENCY, 148 + 5),
        ("gems", AssetKind.CURRENCY, 1),
        ("hat", AssetKind.ITEM, 1),
    ]


def test_a_fractional_multiplier_never_grants_zero() -> None:
    grants = campaign(multiplier=Decimal("0.1")).apply((GrantSpec(asset="coins", amount=3),))
    assert grants[0].amount == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ends_at": START}, "ends_at must be after starts_at"),
        ({"multiplier": Decimal(1)}, "needs a multiplier other than 1 or a bonus"),
        ({"starts_at": datetime(2026, 11, 20)}, "timezone"),  # naive: refused
        ({"audience": {"min_app_version": "new"}}, "not a version"),
        ({"audience": {"platforms": ["switch"]}}, "platforms"),
        ({"actions": ["purchase_refunded"]}, "refunds"),
    ],
)
def test_bad_campaigns_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        campaign(**fields)


def test_segments_are_read_only_for_batches_a_segment_campaign_overlaps() -> None:
    book = RuleBook(campaigns=(campaign(id="vip", audience={"segments": ["vip"]}),))
    before = (START - timedelta(days=2), START - timedelta(seconds=1))
    across = (START - timedelta(seconds=1), START + timedelta(seconds=1))
    assert not book.needs_segments(*before)
    assert book.needs_segments(*across)
    assert not RuleBook(campaigns=(campaign(),)).needs_segments(*across)


def test_a_batch_time_window_spans_its_events_to_the_second() -> None:
    early, late = (
        build_envelope("daily_login", DailyLogin()),
        build_envelope("daily_login", DailyLogin(), received_at=NOW + timedelta(seconds=90)),
    )
    late_floor = (NOW + timedelta(seconds=90)).replace(microsecond=0)
    assert time_window([late, early], END) == (NOW, late_floor + timedelta(seconds=1))
    assert time_window([], END) == (END, END)


def test_a_platform_newer_than_this_build_is_in_no_platform_audience() -> None:
    # Given an event from a platform the schema gained after this worker was built
    envelope = build_envelope("daily_login", DailyLogin(), platform=Platform.PLATFORM_IOS)
    envelope.client.platform = 42  # type: ignore[assignment]  # proto3 enums are open

    # When its profile is read for a running campaign
    profile = PlayerProfile.of(envelope, frozenset())

    # Then it is an unknown platform: campaigns for every platform take it, others do not
    assert profile.platform == "unknown"
    assert campaign().audience.contains(profile)
    ios_only = campaign(audience={"platforms": ["ios"]})
    assert not ios_only.audience.contains(profile)
