"""Rewards: the append-only ledger, the wallet and inventory derived from it, daily cap counters,
refused events and player segments.

The ledger is the truth: one row per change of one asset of one player, unique on
(source, idempotency key, asset), never updated or deleted (triggers refuse it). A purchase is
fulfilled once and refunded once: (purchase_ref, reason, asset) is unique too, so even two
deliveries of one purchase under different idempotency keys cannot both grant.
Wallet and inventory rows hold `net = SUM(ledger amounts)`, moved by relative updates
(`net = net + delta`, never lost under concurrency); what the player sees is the generated
`balance`/`quantity` = max(net, 0) and `debt` = max(-net, 0): never negative, and a claw-back
below zero shows up as debt, not clipped. `liveops rewards verify` recomputes net from the ledger.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = ("rewards",)
depends_on = None

_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE reward_ledger (
            id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
            grant_id CHAR(32) NOT NULL,
            player_id VARCHAR(64) NOT NULL,
            asset_kind ENUM('currency', 'item') NOT NULL,
            asset_id VARCHAR(64) NOT NULL,
            amount BIGINT NOT NULL,
            reason VARCHAR(32) NOT NULL,
            source VARCHAR(64) NOT NULL,
            idempotency_key VARCHAR(191) NOT NULL,
            source_event_id VARCHAR(64) NOT NULL,
            rule_id VARCHAR(64) NULL,
            rule_version INT UNSIGNED NULL,
            campaign_id VARCHAR(64) NULL,
            campaign_version INT UNSIGNED NULL,
            purchase_ref VARCHAR(191) NULL,
            reverses_grant_id CHAR(32) NULL,
            created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (id),
            UNIQUE KEY uq_ledger_source_key_asset (source, idempotency_key, asset_kind, asset_id),
            KEY ix_ledger_player (player_id, id),
            UNIQUE KEY uq_ledger_purchase_step (purchase_ref, reason, asset_kind, asset_id),
            KEY ix_ledger_grant (grant_id)
        ) {_TABLE_OPTIONS}
        """
    )
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"""
            CREATE TRIGGER reward_ledger_no_{event.lower()} BEFORE {event} ON reward_ledger
            FOR EACH ROW SIGNAL SQLSTATE '45000'
                SET MESSAGE_TEXT = 'reward_ledger is append-only: add a correcting row instead'
            """
        )
    for table, asset, amount in (
        ("wallet_balances", "currency", "balance"),
        ("inventory_items", "item_id", "quantity"),
    ):
        op.execute(
            f"""
            CREATE TABLE {table} (
                player_id VARCHAR(64) NOT NULL,
                {asset} VARCHAR(64) NOT NULL,
                net BIGINT NOT NULL DEFAULT 0,
                {amount} BIGINT AS (GREATEST(net, 0)) STORED,
                debt BIGINT AS (GREATEST(-net, 0)) STORED,
                updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                    ON UPDATE CURRENT_TIMESTAMP(6),
                PRIMARY KEY (player_id, {asset})
            ) {_TABLE_OPTIONS}
            """
        )
    op.execute(
        f"""
        CREATE TABLE reward_daily_counts (
            player_id VARCHAR(64) NOT NULL,
            day DATE NOT NULL,
            reward_type VARCHAR(64) NOT NULL,
            grants INT UNSIGNED NOT NULL,
            PRIMARY KEY (player_id, day, reward_type)
        ) {_TABLE_OPTIONS}
        """
    )
    op.execute(
        f"""
        CREATE TABLE reward_refusals (
            source VARCHAR(64) NOT NULL,
            idempotency_key VARCHAR(191) NOT NULL,
            player_id VARCHAR(64) NOT NULL,
            source_event_id VARCHAR(64) NOT NULL,
            reason VARCHAR(32) NOT NULL,
            detail VARCHAR(255) NOT NULL,
            rule_id VARCHAR(64) NULL,
            rule_version INT UNSIGNED NULL,
            created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (source, idempotency_key),
            KEY ix_refusals_player (player_id, created_at)
        ) {_TABLE_OPTIONS}
        """
    )
    op.execute(
        f"""
        CREATE TABLE player_segments (
            player_id VARCHAR(64) NOT NULL,
            segment VARCHAR(64) NOT NULL,
            PRIMARY KEY (player_id, segment)
        ) {_TABLE_OPTIONS}
        """
    )


def downgrade() -> None:
    for table in (
        "player_segments",
        "reward_refusals",
        "reward_daily_counts",
        "inventory_items",
        "wallet_balances",
        "reward_ledger",
    ):
        op.execute(f"DROP TABLE {table}")
