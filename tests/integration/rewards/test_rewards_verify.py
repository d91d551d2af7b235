"""`liveops rewards verify` recomputes the wallet from the ledger and reports every mismatch."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from workers.db import MySQLTarget
from workers.processors.rewards.cli import rewards_app
from workers.settings import FleetSettings, MySQLSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def db(mysql_target: MySQLTarget) -> Iterator[pymysql.Connection]:
    conn = pymysql.connect(
        host=mysql_target.host,
        port=mysql_target.port,
        user=mysql_target.user,
        password=mysql_target.password,
        database=mysql_target.database,
        autocommit=True,
    )
    yield conn
    conn.close()


def grant(db: pymysql.Connection, player: str, key: str, asset: str, amount: int) -> None:
    """What the processor writes for one grant: a ledger row and the wallet row it moves."""
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO reward_ledger (grant_id, player_id, asset_kind, asset_id, amount, reason,"
            " source, idempotency_key, source_event_id) VALUES (%s, %s, 'currency', %s, %s,"
            " 'level_completed', 'rewards', %s, %s)",
            (key[:32], player, asset, amount, key, key),
        )
        cursor.execute(
            "INSERT INTO wallet_balances (player_id, currency, net)"
            " VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE net = net + VALUES(net)",
            (player, asset, amount),
        )


def settings_for(target: MySQLTarget) -> FleetSettings:
    dsn = f"mysql://{target.user}@{target.host}:{target.port}/{target.database}"
    return FleetSettings(mysql=MySQLSettings(dsn=SecretStr(dsn)))


def verify(mysql_target: MySQLTarget) -> tuple[int, str]:
    """`liveops rewards verify`, with the settings the root command would hand down.

    The root command itself is not invoked: it configures logging process-wide onto the
    runner's temporary stderr, which later tests would then write to after it is closed.
    """
    result = CliRunner().invoke(rewards_app, ["verify"], obj=settings_for(mysql_target))
    return result.exit_code, result.output


def test_verify_finds_an_injected_mismatch_and_exits_1(
    db: pymysql.Connection, mysql_target: MySQLTarget, unique_name: str
) -> None:
    grant(db, unique_name, f"{unique_name}-1", "coins", 70)
    grant(db, unique_name, f"{unique_name}-2", "coins", 30)
    grant(db, unique_name, f"{unique_name}-3", "gems", 5)
    clean_code, clean_output = verify(mysql_target)
    with db.cursor() as cursor:
        # Corrupt the derived rows behind the ledger's back: one changed, one orphan row.
        cursor.execute(
            "UPDATE wallet_balances SET net = 90 WHERE player_id = %s AND currency = 'coins'",
            (unique_name,),
        )
        cursor.execute(
            "INSERT INTO wallet_balances (player_id, currency, net) VALUES (%s, 'stars', 3)",
            (unique_name,),
        )
    try:
        code, output = verify(mysql_target)
    finally:
        # Other tests of the session verify this database too: put it back.
        with db.cursor() as cursor:
            cursor.execute(
                "UPDATE wallet_balances SET net = 100 WHERE player_id = %s AND currency = 'coins'",
                (unique_name,),
            )
            cursor.execute(
                "DELETE FROM wallet_balances WHERE player_id = %s AND currency = 'stars'",
                (unique_name,),
            )

    assert clean_code == 0, clean_output
    assert "ledger consistent" in clean_output
    assert code == 1
    mine = sorted(line for line in output.splitlines() if unique_name in line)
    assert mine == [
        f"MISMATCH {unique_name} currency coins: ledger says 100, wallet says 90",
        f"MISMATCH {unique_name} currency stars: ledger says 0, wallet says 3",
    ]
    # Other tests' players are consistent, so ours are the only mismatches.
    assert output.splitlines()[-1].startswith("ledger 2 mismatches: ")
    assert verify(mysql_target)[0] == 0


def test_the_ledger_refuses_updates_and_deletes(db: pymysql.Connection, unique_name: str) -> None:
    grant(db, unique_name, f"{unique_name}-1", "coins", 10)
    with db.cursor() as cursor:
        for statement in (
            "UPDATE reward_ledger SET amount = 1000 WHERE player_id = %s",
            "DELETE FROM reward_ledger WHERE player_id = %s",
        ):
            with pytest.raises(pymysql.err.OperationalError, match="append-only"):
                cursor.execute(statement, (unique_name,))
        cursor.execute("SELECT SUM(amount) FROM reward_ledger WHERE player_id = %s", (unique_name,))
        assert cursor.fetchone() == (10,)


def test_wallet_shows_balances_and_recent_grants(
    db: pymysql.Connection, mysql_target: MySQLTarget, unique_name: str
) -> None:
    grant(db, unique_name, f"{unique_name}-1", "coins", 70)
    grant(db, unique_name, f"{unique_name}-2", "gems", 5)

    result = CliRunner().invoke(
        rewards_app, ["wallet", unique_name], obj=settings_for(mysql_target)
    )

    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert ["currency", "coins", "70"] in lines
    assert ["currency", "gems", "5"] in lines
    grants = [line for line in lines if line[2:4] in (["+70", "coins"], ["+5", "gems"])]
    assert [line[2] for line in grants] == ["+5", "+70"]  # newest first
