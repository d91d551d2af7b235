"""Runtime: the probe processor's effects, one row per applied event.

The probe (workers/processors/probe.py) is the runtime's own test and demo processor; fault
tests compare this table with what they published to prove each event applied exactly once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = ("runtime",)
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE probe_effects (
            idempotency_key VARCHAR(191) NOT NULL PRIMARY KEY,
            player_id VARCHAR(191) NOT NULL,
            event_id VARCHAR(64) NOT NULL,
            applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE probe_effects")
