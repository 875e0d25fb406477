"""Follow-up tasks of the feedback loop (see retentio.data.store.task_tables).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATUSES = "('open', 'in_progress', 'done')"
APPEND_ONLY = "feedback_task_notes is append-only: add an entry instead of changing one"


def _append_only() -> None:
    """The history is append-only in the schema too: a trigger refuses UPDATE and
    DELETE, so no other writer can rewrite who did what when."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION feedback_task_notes_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$")
        op.execute("CREATE TRIGGER feedback_task_notes_append_only BEFORE UPDATE OR DELETE ON feedback_task_notes "
                   "FOR EACH ROW EXECUTE FUNCTION feedback_task_notes_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER feedback_task_notes_no_{event.lower()} BEFORE {event} ON feedback_task_notes "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def upgrade() -> None:
    op.create_table(
        "feedback_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("occurrence", sa.String(length=200), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("triggered_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("value_basis", sa.String(length=20), nullable=False),
        sa.Column("owner_role", sa.String(length=80), nullable=False),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "occurrence", name="uq_feedback_tasks_once"),
        sa.CheckConstraint("trigger IN ('nps', 'csat', 'ces', 'ticket', 'cancellation', 'churn_risk')",
                           name="ck_feedback_tasks_trigger"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_feedback_tasks_status"),
        sa.CheckConstraint("due_at >= triggered_at", name="ck_feedback_tasks_due"),
        sa.CheckConstraint("value >= 0", name="ck_feedback_tasks_value"),
        sa.CheckConstraint("(status = 'done' AND closed_at IS NOT NULL) OR (status <> 'done' AND closed_at IS NULL)",
                           name="ck_feedback_tasks_closed"),
    )
    op.create_index("ix_feedback_tasks_status_due", "feedback_tasks", ["status", "due_at"])
    op.create_index("ix_feedback_tasks_customer", "feedback_tasks", ["customer_id"])
    op.create_table(
        "feedback_task_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=True),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["task_id"], ["feedback_tasks.id"], ondelete="RESTRICT"),
        sa.CheckConstraint("kind IN ('created', 'assigned', 'note', 'status')", name="ck_feedback_task_notes_kind"),
        sa.CheckConstraint(f"status IS NULL OR status IN {STATUSES}", name="ck_feedback_task_notes_status"),
    )
    op.create_index("ix_feedback_task_notes_task", "feedback_task_notes", ["task_id", "id"])
    _append_only()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS feedback_task_notes_append_only ON feedback_task_notes")
        op.execute("DROP FUNCTION IF EXISTS feedback_task_notes_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS feedback_task_notes_no_update")
        op.execute("DROP TRIGGER IF EXISTS feedback_task_notes_no_delete")
    op.drop_index("ix_feedback_task_notes_task", table_name="feedback_task_notes")
    op.drop_table("feedback_task_notes")
    op.drop_index("ix_feedback_tasks_customer", table_name="feedback_tasks")
    op.drop_index("ix_feedback_tasks_status_due", table_name="feedback_tasks")
    op.drop_table("feedback_tasks")
