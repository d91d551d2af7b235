"""Alembic environment: revisions are plain SQL run through PyMySQL, online only.

Run by `liveops migrate` (workers/db.py), which passes the URL in the Alembic config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.get_main_option("sqlalchemy.url")
if url is None:
    raise RuntimeError("sqlalchemy.url is not set; run migrations through `liveops migrate`")
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=False)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
