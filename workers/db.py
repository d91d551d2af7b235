"""MySQL: the DSN, the connection pool and the migrations (Alembic, revisions in migrations/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import aiomysql

from schemas.errors import LiveopsError

if TYPE_CHECKING:
    # Imported where used: Alembic pulls in SQLAlchemy, a fifth of a worker's start-up time
    # (about 190 ms of 750), and only `liveops migrate` needs them.
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseConfigError(LiveopsError):
    """The MySQL DSN cannot be understood."""


@dataclass(frozen=True)
class MySQLTarget:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_dsn(cls, dsn: str) -> MySQLTarget:
        parts = urlsplit(dsn)
        if parts.scheme not in ("mysql", "mariadb") or not parts.path.strip("/"):
            raise DatabaseConfigError("expected mysql://user[:password]@host[:port]/database")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/"),
        )

    def sqlalchemy_url(self) -> str:
        from sqlalchemy.engine import URL

        return URL.create(
            "mysql+pymysql",
            username=self.user,
            password=self.password or None,
            host=self.host,
            port=self.port,
            database=self.database,
        ).render_as_string(hide_password=False)


def alembic_config(target: MySQLTarget) -> Config:
    """The Alembic configuration of our migrations against `target` (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", target.sqlalchemy_url().replace("%", "%%"))
    return config


def migrate(target: MySQLTarget, revision: str = "heads") -> None:
    """Bring the schema to `revision`. Idempotent: a second run changes nothing.

    Each domain (runtime, leaderboards, rewards, ...) keeps its own branch of revisions
    starting at 0001, so the default target is every head.
    """
    from alembic import command

    command.upgrade(alembic_config(target), revision)


async def create_pool(target: MySQLTarget, *, maxsize: int = 10) -> aiomysql.Pool:
    """A pool whose connections never autocommit: every effect is an explicit transaction."""
    return await aiomysql.create_pool(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        db=target.database,
        autocommit=False,
        maxsize=maxsize,
        charset="utf8mb4",
    )
