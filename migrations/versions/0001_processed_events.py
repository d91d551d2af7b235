"""Durable dedup keys: one row per (processor, idempotency key) ever applied.

Redis is the fast path for dedup; this table is the guard that survives a Redis flush. Effects
in MySQL insert their row here in the same transaction, so a duplicate fails the unique key.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE processed_events (
            processor VARCHAR(64) NOT NULL,
            idempotency_key VARCHAR(191) NOT NULL,
            event_id VARCHAR(64) NOT NULL,
            processed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (processor, idempotency_key)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE processed_events")
