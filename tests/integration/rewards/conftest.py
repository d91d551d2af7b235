"""Fixtures of the rewards integration tests (real MariaDB: the session's migrated database)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiomysql
import pytest

from workers.db import MySQLTarget, create_pool


@pytest.fixture
async def pool(mysql_target: MySQLTarget) -> AsyncIterator[aiomysql.Pool]:
    """A pool on the session's database; four connections, for tests that run two workers."""
    created = await create_pool(mysql_target, maxsize=4)
    yield created
    created.close()
    await created.wait_closed()
