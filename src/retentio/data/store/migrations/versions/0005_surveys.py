"""Surveys: invitations (one per survey message, with its token id) and their answers
(see retentio.data.store.survey_tables).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KINDS = "kind IN ('nps', 'csat', 'ces')"
SCORES = ("(kind = 'nps' AND score BETWEEN 0 AND 10) OR (kind = 'csat' AND score BETWEEN 1 AND 5) "
          "OR (kind = 'ces' AND score BETWEEN 1 AND 7)")


def upgrade() -> None:
    op.create_table(
        "survey_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=40), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("occurrence", sa.String(length=200), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_id"),
        sa.UniqueConstraint("assignment_id"),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="RESTRICT"),
        sa.CheckConstraint(KINDS, name="ck_survey_invitations_kind"),
    )
    op.create_index("ix_survey_invitations_customer", "survey_invitations", ["customer_id", "invited_at"])
    op.create_index("ix_survey_invitations_campaign", "survey_invitations", ["campaign_id"])
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invitation_id"),
        sa.ForeignKeyConstraint(["invitation_id"], ["survey_invitations.id"], ondelete="RESTRICT"),
        sa.CheckConstraint(KINDS, name="ck_survey_answers_kind"),
        sa.CheckConstraint(SCORES, name="ck_survey_answers_score"),
        sa.CheckConstraint("source IN ('link', 'cli', 'import')", name="ck_survey_answers_source"),
    )
    op.create_index("ix_survey_answers_customer", "survey_answers", ["customer_id", "answered_at"])
    op.create_index("ix_survey_answers_exported", "survey_answers", ["exported_at"])


def downgrade() -> None:
    op.drop_table("survey_answers")
    op.drop_table("survey_invitations")
