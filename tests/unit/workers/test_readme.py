"""The README is the newcomer's manual: it must not drift from the code it describes."""

from __future__ import annotations

from pathlib import Path

from topics.catalog import DATA_TOPICS
from workers.cli import app
from workers.settings import FleetSettings, reference_rows

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [env for env, _, _ in reference_rows(FleetSettings()) if f"`{env}`" not in README]
    assert missing == [], f"run `liveops settings --reference` and update README: {missing}"


def test_every_data_topic_is_in_the_readme() -> None:
    missing = [topic.name for topic in DATA_TOPICS if f"`{topic.name}`" not in README]
    assert missing == []


def test_every_command_is_in_the_readme() -> None:
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    missing = [name for name in names if f"liveops {name}" not in README]
    assert missing == []
