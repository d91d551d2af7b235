"""The definitions file: the shipped one loads, and every mistake is named at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.processors.leaderboards.definitions import (
    DEFAULT_EPOCH,
    load_definitions,
    parse_definitions,
)
from workers.processors.leaderboards.errors import LeaderboardConfigError

VALID = """
version = "7"
[[leaderboards]]
id = "arena"
operator = "increment"
reset = "weekly"
timezone = "Europe/Paris"
max_score = 500
max_submissions_per_period = 3
top_thresholds = [100, 10, 10]
"""


def test_the_shipped_file_loads() -> None:
    definitions = load_definitions()
    assert definitions.version
    assert len(definitions) >= 5
    assert {b.operator for b in definitions} == {"best", "latest", "increment"}
    assert {b.reset for b in definitions} == {"none", "daily", "weekly", "monthly", "cron"}


def test_a_file_at_a_path_loads(tmp_path: Path) -> None:
    path = tmp_path / "boards.toml"
    path.write_text(VALID)
    definitions = load_definitions(path)
    arena = definitions.get("arena")
    assert arena is not None
    assert definitions.version == "7"
    assert arena.top_thresholds == (10, 100)
    assert arena.better == "higher"
    assert arena.epoch == DEFAULT_EPOCH
    assert definitions.get("nope") is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('reset = "cron"', "cron"),
        ('cron = "0 0 * * *"', "cron"),
        ('reset = "cron"\ncron = "every friday"', "invalid cron"),
        ('timezone = "Mars/Olympus"', "unknown time zone"),
        ("min_score = 10\nmax_score = 5", "min_score"),
        ("max_score = 40_000_000", "53-bit"),
        ("starts_at = 2026-12-01T00:00:00", "UTC offset"),
        ("top_thresholds = [0]", "thresholds"),
        ('operator = "max"', "operator"),
        ("colour = 1", "colour"),
    ],
)
def test_mistakes_are_refused_with_the_reason(extra: str, message: str) -> None:
    text = f'version = "1"\n[[leaderboards]]\nid = "b"\n{extra}\n'
    if "max_score" not in extra:
        text += "max_score = 100\n"
    with pytest.raises(LeaderboardConfigError, match=message):
        parse_definitions(text)


def test_duplicate_ids_are_refused() -> None:
    text = 'version = "1"\n' + '[[leaderboards]]\nid = "a"\nmax_score = 1\n' * 2
    with pytest.raises(LeaderboardConfigError, match="duplicate leaderboard ids: a"):
        parse_definitions(text)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LeaderboardConfigError, match="cannot read"):
        load_definitions(tmp_path / "missing.toml")
