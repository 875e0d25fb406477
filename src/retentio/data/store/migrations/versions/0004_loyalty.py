"""Loyalty ledger (see retentio.data.store.loyalty_tables).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KINDS = "kind IN ('earn', 'redeem', 'release', 'expire', 'reverse', 'adjust', 'transfer', 'reward')"


def upgrade() -> None:
    op.create_table(
        "loyalty_operations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program", "key", name="uq_loyalty_operations_key"),
        sa.CheckConstraint(KINDS, name="ck_loyalty_operations_kind"),
    )
    # customer first: an index led by program would match any key lookup on its first column,
    # and PostgreSQL's generic plan for the entries' foreign-key check picked it on a new store
    # (before statistics), reading every operation of the program per entry
    op.create_index("ix_loyalty_operations_customer", "loyalty_operations", ["customer_id", "program"])
    op.create_table(
        "loyalty_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=80), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("negative_ok", sa.Boolean(), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=True),
        sa.Column("tier_override", sa.String(length=40), nullable=True),
        sa.Column("tier_reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("discount_level", sa.Integer(), nullable=True),
        sa.Column("spend", sa.Numeric(18, 4), nullable=False),
        sa.Column("last_purchase_at", sa.DateTime(), nullable=True),
        sa.Column("card_started_at", sa.DateTime(), nullable=True),
        sa.Column("member_until", sa.DateTime(), nullable=True),
        sa.Column("referral_code", sa.String(length=20), nullable=True),
        sa.Column("referred_by", sa.String(length=200), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program", "customer_id", name="uq_loyalty_accounts_member"),
        sa.UniqueConstraint("program", "referral_code", name="uq_loyalty_accounts_referral_code"),
        sa.CheckConstraint("available >= 0 OR negative_ok", name="ck_loyalty_accounts_no_overdraft"),
        sa.CheckConstraint("pending >= 0", name="ck_loyalty_accounts_pending"),
    )
    op.create_table(
        "loyalty_lots",
        sa.Column("id", sa.String(length=220), nullable=False),
        sa.Column("program", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("earned_at", sa.DateTime(), nullable=False),
        sa.Column("available_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("reversed", sa.Boolean(), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("spend", sa.Numeric(18, 4), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["account_id"], ["loyalty_accounts.id"], ondelete="RESTRICT"),
        sa.CheckConstraint("points > 0", name="ck_loyalty_lots_points"),
        sa.CheckConstraint("remaining >= 0 AND remaining <= points", name="ck_loyalty_lots_remaining"),
        sa.CheckConstraint("spent >= 0 AND spent + remaining <= points", name="ck_loyalty_lots_spent"),
    )
    op.create_index("ix_loyalty_lots_account", "loyalty_lots", ["account_id", "expires_at"])
    op.create_index("ix_loyalty_lots_order", "loyalty_lots", ["program", "order_id"])
    op.create_table(
        "loyalty_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=80), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.String(length=220), nullable=True),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("policy", sa.String(length=20), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["program", "key"], ["loyalty_operations.program", "loyalty_operations.key"],
                                name="fk_loyalty_entries_operation", ondelete="RESTRICT"),
        sa.CheckConstraint("amount <> 0", name="ck_loyalty_entries_amount"),
        sa.CheckConstraint("account IN ('available', 'pending', 'issued', 'redeemed', 'expired', 'written_off')",
                           name="ck_loyalty_entries_account"),
        sa.CheckConstraint(KINDS, name="ck_loyalty_entries_kind"),
        sa.CheckConstraint("policy IS NULL OR policy IN ('negative', 'other_lots', 'write_off')",
                           name="ck_loyalty_entries_policy"),
    )
    op.create_index("ix_loyalty_entries_customer", "loyalty_entries", ["customer_id", "program"])
    op.create_index("ix_loyalty_entries_operation", "loyalty_entries", ["program", "key"])
    op.create_table(
        "loyalty_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=80), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("from_value", sa.String(length=60), nullable=True),
        sa.Column("to_value", sa.String(length=60), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=220), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program", "key", name="uq_loyalty_events_key"),
    )
    op.create_index("ix_loyalty_events_customer", "loyalty_events", ["customer_id", "program"])


def downgrade() -> None:
    for table in ("loyalty_events", "loyalty_entries", "loyalty_lots", "loyalty_accounts", "loyalty_operations"):
        op.drop_table(table)
