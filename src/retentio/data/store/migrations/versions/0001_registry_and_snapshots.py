"""Model registry and churn score snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("kind", "version", name="uq_model_versions_kind_version"),
        sa.CheckConstraint("version >= 1", name="ck_model_versions_version"),
        sa.CheckConstraint("kind IN ('churn', 'clv')", name="ck_model_versions_kind"),
    )
    op.create_table(
        "score_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.UniqueConstraint("model_version_id", "as_of", "data_fingerprint", name="uq_score_snapshots_inputs"),
        sa.CheckConstraint("customers >= 0", name="ck_score_snapshots_customers"),
    )
    op.create_table(
        "customer_scores",
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("score_snapshots.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("value_at_risk", sa.Float, nullable=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.CheckConstraint("probability >= 0 AND probability <= 1", name="ck_customer_scores_probability"),
        sa.CheckConstraint("score >= 0 AND score <= 100", name="ck_customer_scores_score"),
        sa.CheckConstraint("band IN ('low', 'medium', 'high')", name="ck_customer_scores_band"),
    )


def downgrade() -> None:
    op.drop_table("customer_scores")
    op.drop_table("score_snapshots")
    op.drop_table("model_versions")
