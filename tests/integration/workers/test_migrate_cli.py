"""`liveops migrate`, the command itself, against a real MariaDB database of its own.

The first run creates the schema at every head of the Alembic revisions; a second run changes
nothing; a full downgrade drops it all, and the command brings back the very same schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from workers.db import MySQLTarget, alembic_config

pytestmark = pytest.mark.integration

MYSQL_ROOT = MySQLTarget(host="127.0.0.1", port=3306, user="root", password="", database="test")
LIVEOPS = Path(sys.executable).with_name("liveops")


@dataclass(frozen=True)
class Schema:
    """What a migration leaves behind: each table's definition, the triggers, the revisions."""

    tables: dict[str, str]
    triggers: dict[str, str]
    revisions: frozenset[str]


def admin() -> pymysql.Connection[pymysql.cursors.Cursor]:
    return pymysql.connect(
        host=MYSQL_ROOT.host,
        port=MYSQL_ROOT.port,
        user=MYSQL_ROOT.user,
        password=MYSQL_ROOT.password,
        autocommit=True,
    )


@pytest.fixture
def scratch() -> Iterator[MySQLTarget]:
    """An empty database of its own, dropped after the test."""
    name = f"liveops_migrate_{uuid.uuid4().hex[:10]}"
    connection = admin()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
        yield MySQLTarget(MYSQL_ROOT.host, MYSQL_ROOT.port, MYSQL_ROOT.user, "", name)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


def run_migrate(target: MySQLTarget) -> subprocess.CompletedProcess[str]:
    """`liveops migrate` as an operator runs it, with only the DSN set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEOPS_")}
    env["LIVEOPS_MYSQL__DSN"] = (
        f"mysql://{target.user}@{target.host}:{target.port}/{target.database}"
    )
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [str(LIVEOPS), "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def schema_of(target: MySQLTarget) -> Schema:
    connection = admin()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (target.database,),
            )
            names = sorted(row[0] for row in cursor.fetchall())
            tables = {}
            for name in names:
                cursor.execute(f"SHOW CREATE TABLE `{target.database}`.`{name}`")
                row = cursor.fetchone()
                assert row is not None, name
                tables[name] = row[1]
            cursor.execute(
                "SELECT trigger_name, action_statement FROM information_schema.triggers "
                "WHERE trigger_schema = %s",
                (target.database,),
            )
            triggers = dict(cursor.fetchall())
            revisions: frozenset[str] = frozenset()
            if "alembic_version" in tables:
                # The scratch database's own name, not input: safe to format into the query.
                query = f"SELECT version_num FROM `{target.database}`.alembic_version"  # noqa: S608
                cursor.execute(query)
                revisions = frozenset(row[0] for row in cursor.fetchall())
    finally:
        connection.close()
    return Schema(tables, triggers, revisions)


def newest_revisions(target: MySQLTarget) -> frozenset[str]:
    """The heads of the revision graph: one per domain branch."""
    return frozenset(ScriptDirectory.from_config(alembic_config(target)).get_heads())


def test_migrate_creates_the_newest_schema_then_changes_nothing(scratch: MySQLTarget) -> None:
    # Given an empty database
    assert schema_of(scratch).tables == {}

    # When `liveops migrate` runs
    first = run_migrate(scratch)

    # Then it succeeds, and the schema is at every head, with each domain's tables
    assert (first.returncode, first.stdout.strip()) == (0, "migrations applied"), first.stderr
    created = schema_of(scratch)
    assert created.revisions == newest_revisions(scratch)
    assert len(created.revisions) > 1  # one head per domain branch, all of them applied
    assert {"processed_events", "probe_effects", "leaderboard_submissions", "reward_ledger"} <= (
        created.tables.keys()
    )
    assert set(created.triggers) == {"reward_ledger_no_update", "reward_ledger_no_delete"}

    # When it runs again
    second = run_migrate(scratch)

    # Then it succeeds and changes nothing: same tables, same definitions, same revisions
    assert (second.returncode, second.stdout.strip()) == (0, "migrations applied"), second.stderr
    assert schema_of(scratch) == created


def test_a_full_downgrade_then_migrate_gives_back_the_same_schema(scratch: MySQLTarget) -> None:
    # Given a database migrated by the command
    assert run_migrate(scratch).returncode == 0
    created = schema_of(scratch)

    # When every revision is downgraded (Alembic's own command: `liveops` has no downgrade)
    command.downgrade(alembic_config(scratch), "base")

    # Then only Alembic's empty version table is left
    emptied = schema_of(scratch)
    assert (set(emptied.tables), emptied.triggers, emptied.revisions) == (
        {"alembic_version"},
        {},
        frozenset(),
    )

    # And the command brings back exactly the schema it made the first time
    again = run_migrate(scratch)
    assert again.returncode == 0, again.stderr
    assert schema_of(scratch) == created


def test_migrate_fails_with_one_line_when_the_database_does_not_exist() -> None:
    missing = MySQLTarget(MYSQL_ROOT.host, MYSQL_ROOT.port, "root", "", "liveops_missing_db_x")

    result = run_migrate(missing)

    assert result.returncode == 1
    assert result.stderr.startswith("liveops migrate: OperationalError: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
