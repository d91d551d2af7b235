"""The demo checks its own story: a summary that looks fine but is wrong must not exit 0."""

from __future__ import annotations

from dataclasses import dataclass

from workers.demo.players import SessionReport
from workers.demo.season import SeasonStory


@dataclass(frozen=True)
class ShopStory:
    """Shop purchases as rewards settled them: bought, or refused for insufficient balance."""

    bought: int
    refused: int


@dataclass(frozen=True)
class Observed:
    report: SessionReport
    expected_accepted: int
    drained: bool
    republished: int
    duplicates: dict[str, int]
    dead_letters: dict[str, int]
    applied: dict[str, int]
    ledger_consistent: bool
    board_players: int
    season: SeasonStory
    prize_winners: int
    shop: ShopStory


EXPECTED_REFUSALS = {400: 2, 401: 1, 403: 1, 413: 1, 422: 1}


def failed_checks(seen: Observed) -> list[str]:
    """Each check that does not hold, in words; empty when the story played out."""
    report = seen.report
    refusals: dict[int, int] = {}
    for _beat, status, _detail in report.refusals:
        refusals[status] = refusals.get(status, 0) + 1
    rewards_duplicates = seen.duplicates.get("rewards", 0)
    rewards_dead_letters = seen.dead_letters.get("rewards", 0)
    checks = {
        "every worker committed its inputs": seen.drained,
        f"{seen.expected_accepted} valid requests accepted (got {report.statuses[202]})": (
            report.statuses[202] == seen.expected_accepted
        ),
        f"hostile requests refused as {EXPECTED_REFUSALS} (got {refusals})": (
            refusals == EXPECTED_REFUSALS
        ),
        "every retried request got its first event id back": (
            report.retried_same_event_id == report.retried_total > 0
        ),
        f"{seen.republished} republished records skipped as duplicates by rewards "
        f"(got {rewards_duplicates})": rewards_duplicates == seen.republished > 0,
        f"the garbage record dead-lettered by rewards (got {rewards_dead_letters})": (
            rewards_dead_letters == 1
        ),
        "rewards applied grants": seen.applied.get("rewards", 0) > 0,
        f"each of {report.shop_requests} shop purchases bought or refused for insufficient "
        f"balance, at least one of each (got {seen.shop.bought} bought, "
        f"{seen.shop.refused} refused)": (
            seen.shop.bought + seen.shop.refused == report.shop_requests
            and seen.shop.bought > 0
            and seen.shop.refused > 0
        ),
        "ledger and wallets agree": seen.ledger_consistent,
        f"every player ranked on the board (got {seen.board_players} of "
        f"{len(report.players)})": seen.board_players == len(report.players),
        "leaderboard reads through the gateway equal Redis": seen.season.http_top_matches_redis,
        "the board rebuilt from MySQL has identical ranks": seen.season.rebuilt_identical,
        f"the season archived every player (got {seen.season.archived})": (
            seen.season.archived == len(report.players)
        ),
        f"rewards paid a prize to each archived player (got {seen.prize_winners})": (
            seen.prize_winners == seen.season.prizes_published == seen.season.archived
        ),
    }
    return [name for name, holds in checks.items() if not holds]
