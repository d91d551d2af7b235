"""Rules: first match in file order, conditions, retired rules, caps, a validated file."""

from __future__ import annotations

import pytest

from workers.processors.rewards.actions import Action, ActionKind
from workers.processors.rewards.errors import RulesFileError
from workers.processors.rewards.grants import AssetKind, GrantSpec, grant_id_for, merge_grants
from workers.processors.rewards.rules import RuleBook, load_rule_book, parse_rule_book
from workers.processors.rewards.settings import PACKAGED_RULES

BOOK = parse_rule_book(
    """
    [caps]
    level = 3

    [[rules]]
    id = "three-stars"
    version = 2
    action = "level_completed"
    reward_type = "level"
    when = { min_stars = 3 }
    grants = [{ asset = "coins", amount = 150 }]

    [[rules]]
    id = "level"
    version = 1
    action = "level_completed"
    reward_type = "level"
    grants = [{ asset = "coins", amount = 100 }]

    [[rules]]
    id = "old-quest"
    version = 4
    action = "quest_completed"
    when = { quest_id = "old" }
    retired = true

    [[rules]]
    id = "top-10"
    version = 1
    action = "season_prize"
    when = { max_rank = 10 }
    grants = [{ asset = "crown", kind = "item", amount = 1 }]
    """
)


def test_the_first_matching_rule_wins() -> None:
    three = BOOK.rule_for(Action(ActionKind.LEVEL_COMPLETED, stars=3))
    one = BOOK.rule_for(Action(ActionKind.LEVEL_COMPLETED, stars=1))
    assert three is not None and (three.id, three.version) == ("three-stars", 2)
    assert one is not None and one.id == "level"


def test_retired_rules_still_match_so_the_outcome_can_say_so() -> None:
    rule = BOOK.rule_for(Action(ActionKind.QUEST_COMPLETED, quest_id="old"))
    assert rule is not None and rule.retired
    assert BOOK.rule_for(Action(ActionKind.QUEST_COMPLETED, quest_id="new")) is None


def test_rank_conditions_exclude_unranked_players() -> None:
    assert BOOK.rule_for(Action(ActionKind.SEASON_PRIZE, rank=10)) is not None
    assert BOOK.rule_for(Action(ActionKind.SEASON_PRIZE, rank=11)) is None
    assert BOOK.rule_for(Action(ActionKind.SEASON_PRIZE, rank=0)) is None


def test_caps_are_per_reward_type() -> None:
    rule = BOOK.rule_for(Action(ActionKind.LEVEL_COMPLETED))
    assert rule is not None
    assert rule.cap_type == "level"
    assert BOOK.cap_for(rule) == 3


def test_the_packaged_rules_file_is_valid_and_covers_every_action() -> None:
    book = load_rule_book(PACKAGED_RULES)
    covered = {rule.action for rule in book.rules}
    assert covered == set(ActionKind) - {ActionKind.PURCHASE_REFUNDED}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rules]]\nid = 'a'\nversion = 1\naction = 'level_completed'", "needs grants"),
        (
            "[[rules]]\nid = 'a'\nversion = 1\naction = 'purchase_refunded'\n"
            "grants = [{ asset = 'x', amount = 1 }]",
            "refunds reverse",
        ),
        (
            "[[rules]]\nid = 'a'\nversion = 1\naction = 'level_completed'\n"
            "grants = [{ asset = 'x', amount = 0 }]",
            r"rules\.0\.grants\.0\.amount",
        ),
        ("[[rules]]\nid = 'a'\nversion = 1\naction = 'dance'", r"rules\.0\.action"),
        ("[caps]\nlevel = 'many'", r"caps\.level"),
        ("rules = [", "not TOML"),
        (
            "[[rules]]\nid = 'a'\nversion = 1\naction = 'level_completed'\nretired = true\n"
            "[[rules]]\nid = 'a'\nversion = 1\naction = 'level_completed'\nretired = true",
            "repeated: a",
        ),
    ],
)
def test_a_broken_file_is_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(RulesFileError, match=message):
        parse_rule_book(text, origin="rules.toml")


def test_a_missing_file_is_a_rules_file_error() -> None:
    with pytest.raises(RulesFileError, match="cannot read"):
        load_rule_book(PACKAGED_RULES.with_name("absent.toml"))


def test_grants_of_one_asset_merge_into_one_ledger_row() -> None:
    merged = merge_grants(
        [
            GrantSpec(asset="coins", amount=10),
            GrantSpec(asset="sword", kind=AssetKind.ITEM, amount=1),
            GrantSpec(asset="coins", amount=5),
        ]
    )
    assert [(g.asset, g.kind, g.amount) for g in merged] == [
        ("coins", AssetKind.CURRENCY, 15),
        ("sword", AssetKind.ITEM, 1),
    ]


def test_grant_ids_are_derived_from_the_idempotency_key() -> None:
    assert grant_id_for("k1") == grant_id_for("k1")
    assert grant_id_for("k1") != grant_id_for("k2")
    assert len(grant_id_for("k1")) == 32


def test_an_empty_book_has_no_rules() -> None:
    assert RuleBook().rule_for(Action(ActionKind.MATCH_WON)) is None


def test_season_rules_name_the_board_because_season_ids_recur() -> None:
    book = parse_rule_book(
        """
        [[rules]]
        id = "arena-champion"
        version = 1
        action = "season_prize"
        when = { leaderboard_id = "arena-weekly", max_rank = 1 }
        grants = [{ asset = "gems", amount = 500 }]
        """
    )
    first = Action(
        ActionKind.SEASON_PRIZE,
        leaderboard_id="arena-weekly",
        season_id="arena-weekly:2026-W48",
        rank=1,
    )
    winner = book.rule_for(first)
    assert winner is not None and winner.id == "arena-champion"
    assert book.rule_for(first._replace(leaderboard_id="duel-daily")) is None
    assert book.rule_for(first._replace(rank=2)) is None
