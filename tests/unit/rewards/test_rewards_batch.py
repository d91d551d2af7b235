"""The batch fast paths agree with the plain per-event ones: decide_batch with decide(), the
one-pass SQL rendering with the driver's own escaping."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pymysql.converters
import pytest
from google.protobuf.message import Message
from pymysql.constants import SERVER_STATUS
from rewards_builders import NOW
from rewards_builders import build_envelope as envelope

from schemas.liveops.v1 import actions_pb2, purchases_pb2
from schemas.liveops.v1.envelope_pb2 import Envelope, Platform
from workers.processors.rewards.actions import Action, ActionKind
from workers.processors.rewards.grants import AssetKind
from workers.processors.rewards.plan import EventRef, decide, decide_batch
from workers.processors.rewards.rules import CONDITION_FACTS, Conditions, RuleBook, parse_rule_book
from workers.processors.rewards.sql import render_rows

RULES = """
[caps]
match_won = 2

[[rules]]
id = "win"
version = 7
action = "match_won"
grants = [{ asset = "coins", amount = 100 }]

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

[[campaigns]]
id = "double"
version = 4
starts_at = 2026-11-25T12:00:00Z
ends_at = 2026-11-26T00:00:00Z
multiplier = 2
audience = { min_app_version = "2.14", platforms = ["ios"], segments = ["vip"] }
"""

SEGMENTS = {"p1": frozenset({"vip"}), "p3": frozenset({"vip", "whale"})}


@pytest.fixture
def book() -> RuleBook:
    return parse_rule_book(RULES, origin="test")


def some_action(rng: random.Random, n: int) -> tuple[str, Message]:
    """A win, a loss, a (retired) quest, a purchase (good, unknown, malformed) or a refund."""
    draw = rng.randrange(6)
    if draw < 2:
        won = actions_pb2.MATCH_OUTCOME_WIN if draw == 0 else actions_pb2.MATCH_OUTCOME_LOSS
        return "match_result", actions_pb2.MatchResult(outcome=won)
    if draw == 2:
        return "quest_completed", actions_pb2.QuestCompleted(quest_id=rng.choice(("harvest", "x")))
    if draw == 3:
        verified = purchases_pb2.PurchaseVerified(
            store=purchases_pb2.STORE_APPLE,
            product_id=rng.choice(("gems.small", "nothing")),
            transaction_id=rng.choice((f"t{n}", "")),
        )
        return "purchase_verified", verified
    if draw == 4:
        refunded = purchases_pb2.PurchaseRefunded(
            store=purchases_pb2.STORE_APPLE, transaction_id=f"t{n}"
        )
        return "purchase_refunded", refunded
    return "daily_login", actions_pb2.DailyLogin()


def mixed_batch(received: list[datetime], seed: int = 3) -> list[Envelope]:
    """Some action per event, from several players, platforms and app versions."""
    rng = random.Random(seed)
    return [
        envelope(
            *some_action(rng, n),
            player_id=f"p{rng.randrange(4)}",
            received_at=at,
            platform=rng.choice((Platform.PLATFORM_IOS, Platform.PLATFORM_ANDROID)),
            app_version=rng.choice(("2.14.0", "2.13", "")),
        )
        for n, at in enumerate(received)
    ]


@pytest.mark.parametrize(
    "received",
    [
        pytest.param([NOW + timedelta(milliseconds=7 * n) for n in range(300)], id="steady"),
        pytest.param(
            [NOW - timedelta(seconds=1) + timedelta(milliseconds=7 * n) for n in range(300)],
            id="campaign-starts-inside",
        ),
        pytest.param(
            [datetime(2026, 11, 25, 23, 59, 59, 500_000, tzinfo=NOW.tzinfo)] * 150
            + [datetime(2026, 11, 26, 0, 0, 0, 500_000, tzinfo=NOW.tzinfo)] * 150,
            id="day-and-campaign-end-inside",
        ),
    ],
)
def test_batch_decisions_equal_one_by_one_decisions(
    book: RuleBook, received: list[datetime]
) -> None:
    batch = mixed_batch(received)
    one_by_one = [decide(book, e, SEGMENTS.get(e.player_id, frozenset()), NOW) for e in batch]
    assert decide_batch(book, batch, SEGMENTS, NOW) == one_by_one


def test_batch_decisions_keep_each_events_own_ids(book: RuleBook) -> None:
    win = actions_pb2.MatchResult(match_id="m", outcome=actions_pb2.MATCH_OUTCOME_WIN)
    batch = [envelope("match_result", win, player_id="p1") for _ in range(3)]
    decisions = decide_batch(book, batch, {}, NOW)
    assert [d.event for d in decisions] == [EventRef.of(e) for e in batch]


def test_steady_between_sees_day_and_campaign_edges(book: RuleBook) -> None:
    second = timedelta(seconds=1)
    assert book.steady_between(NOW - 10 * second, NOW)  # the campaign starts at the end
    assert book.steady_between(NOW, NOW + second)  # ... or at the start
    assert not book.steady_between(NOW - second, NOW + second)
    midnight = datetime(2026, 11, 27, tzinfo=NOW.tzinfo)
    assert book.steady_between(midnight - second, midnight)
    assert not book.steady_between(midnight - second, midnight + second)


def driver_literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return "'" + value.isoformat() + "'"
    if isinstance(value, str):
        return "'" + pymysql.converters.escape_string(str.__str__(value)) + "'"
    return str(value)


@pytest.mark.parametrize(
    "odd", ["plain", "quo'te \\ back\nslash\r\x00\x1a\"", "sep\x01arator", "100% %s %(x)s"]
)
def test_rendered_rows_escape_as_the_driver_does(odd: str) -> None:
    cursor = SimpleNamespace(connection=SimpleNamespace(server_status=0))
    rows = [
        (odd, 1, None, date(2026, 11, 25), AssetKind.ITEM, None, None),
        ("x", -7, odd, None, "\x01", None, 3),
    ]
    expected = ", ".join("(" + ", ".join(map(driver_literal, row)) + ")" for row in rows)
    assert render_rows(cursor, rows) == expected


def test_rendered_rows_double_quotes_without_backslash_escapes() -> None:
    no_backslash_escapes = SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
    cursor = SimpleNamespace(connection=SimpleNamespace(server_status=no_backslash_escapes))
    assert render_rows(cursor, [("it's \\", 2)]) == "('it''s \\', 2)"


def test_rendering_refuses_unknown_types() -> None:
    cursor = SimpleNamespace(connection=SimpleNamespace(server_status=0))
    with pytest.raises(TypeError):
        render_rows(cursor, [(1.5,)])


def test_every_condition_names_the_fact_it_tests() -> None:
    assert set(CONDITION_FACTS) == set(Conditions.model_fields)
    assert set(CONDITION_FACTS.values()) <= set(Action._fields)


def test_actions_with_equal_rule_keys_match_the_same_rule() -> None:
    book = parse_rule_book(
        """
        [[rules]]
        id = "three-stars"
        version = 1
        action = "level_completed"
        when = { min_stars = 3 }
        grants = [{ asset = "gems", amount = 1 }]

        [[rules]]
        id = "level"
        version = 1
        action = "level_completed"
        grants = [{ asset = "coins", amount = 1 }]
        """
    )
    one = Action(ActionKind.LEVEL_COMPLETED, level_id="1", stars=3)
    other = Action(ActionKind.LEVEL_COMPLETED, level_id="2", stars=3)
    fewer = Action(ActionKind.LEVEL_COMPLETED, level_id="1", stars=2)
    assert book.rule_key(one) == book.rule_key(other) != book.rule_key(fewer)
    assert book.rule_for(one) is book.rule_for(other) is not book.rule_for(fewer)
