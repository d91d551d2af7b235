"""`liveops rewards rules check`: validate a rules file before shipping it."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr
from typer.testing import CliRunner

from topics.devbroker import free_port
from workers.processors.rewards.cli import rewards_app
from workers.settings import FleetSettings, MySQLSettings


def test_the_packaged_rules_check_out() -> None:
    result = CliRunner().invoke(rewards_app, ["rules", "check"])
    assert result.exit_code == 0, result.output
    assert re.match(r"ok: \d+ rules \(\d+ retired\), \d+ caps, \d+ campaigns$", result.output)


def test_a_broken_file_exits_1_naming_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "rules.toml"
    broken.write_text("[[campaigns]]\nid = 'x'\nversion = 1\n", encoding="utf-8")
    result = CliRunner().invoke(rewards_app, ["rules", "check", str(broken)])
    assert result.exit_code == 1
    assert f"invalid: {broken}: campaigns.0.starts_at: Field required" in result.output


def test_an_unreachable_database_is_one_line_and_exit_2() -> None:
    nobody = f"mysql://root@127.0.0.1:{free_port()}/game"
    settings = FleetSettings(mysql=MySQLSettings(dsn=SecretStr(nobody)))
    result = CliRunner().invoke(rewards_app, ["verify"], obj=settings)
    assert result.exit_code == 2
    assert result.output.startswith("liveops rewards: mysql: (2003,")
