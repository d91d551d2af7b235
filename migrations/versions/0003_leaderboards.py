"""Leaderboards: every accepted submission, and the archive of closed periods.

`leaderboard_submissions` is the durable record the sorted sets can be rebuilt from: one row per
accepted submission, unique on the idempotency key, holding the player's sort value right after
it was applied and the journal id (Redis stream id: milliseconds and sequence) that orders the
rows as they were applied. A rebuild keeps each player's last row.
`leaderboard_periods` has one row per closed period; `leaderboard_archive` its top entries with
their final ranks, from which season prizes are paid.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("leaderboards",)
depends_on = None

_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE leaderboard_submissions (
            id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            idempotency_key VARCHAR(191) NOT NULL,
            event_id VARCHAR(64) NOT NULL,
            leaderboard_id VARCHAR(64) NOT NULL,
            period VARCHAR(32) NOT NULL,
            player_id VARCHAR(128) NOT NULL,
            submitted BIGINT NOT NULL COMMENT 'the score sent, or the signed delta',
            sort_value BIGINT NOT NULL COMMENT 'the player''s sort value after this one',
            journal_ms BIGINT UNSIGNED NOT NULL,
            journal_seq BIGINT UNSIGNED NOT NULL,
            recorded_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            UNIQUE KEY uq_submission (idempotency_key),
            KEY ix_board_order (leaderboard_id, period, journal_ms, journal_seq)
        ) {_TABLE_OPTIONS}
        """
    )
    op.execute(
        f"""
        CREATE TABLE leaderboard_periods (
            leaderboard_id VARCHAR(64) NOT NULL,
            period VARCHAR(32) NOT NULL,
            starts_at DATETIME(6) NOT NULL,
            ends_at DATETIME(6) NULL,
            entries INT UNSIGNED NOT NULL,
            definitions_version VARCHAR(64) NOT NULL,
            closed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (leaderboard_id, period)
        ) {_TABLE_OPTIONS}
        """
    )
    op.execute(
        f"""
        CREATE TABLE leaderboard_archive (
            leaderboard_id VARCHAR(64) NOT NULL,
            period VARCHAR(32) NOT NULL,
            final_rank INT UNSIGNED NOT NULL,
            player_id VARCHAR(128) NOT NULL,
            score BIGINT NOT NULL,
            sort_value BIGINT NOT NULL,
            PRIMARY KEY (leaderboard_id, period, final_rank),
            UNIQUE KEY uq_archive_player (leaderboard_id, period, player_id)
        ) {_TABLE_OPTIONS}
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE leaderboard_archive")
    op.execute("DROP TABLE leaderboard_periods")
    op.execute("DROP TABLE leaderboard_submissions")
