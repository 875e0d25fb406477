"""The store's follow-up task tables: closing the feedback loop.

* ``feedback_tasks`` — one row per trigger occurrence that needs a person to follow up a
  customer: a detractor's NPS answer, a low CSAT, a high-effort CES, a complaint ticket,
  a cancellation with a reason, a valuable customer entering the high churn band. It
  keeps the rule that created it, the source row (the survey answer, the ticket, the
  subscription, the score), the value that sets its priority and where that value came
  from, the owner role, the due time (the rule's SLA), the assignee, the status and when
  it was closed. ``(customer_id, occurrence)`` is unique in the schema, so re-running the
  sync over the same data never opens a second task for the same occurrence — whichever
  process writes first wins, the other's insert is refused by the database.
* ``feedback_task_notes`` — the task's history, append-only: created, assigned, notes
  and status changes, each with its author and time. Nothing in it is updated or
  deleted — a database trigger (migration ``0006``) refuses UPDATE and DELETE, so no
  writer can rewrite who did what when; the task row's ``status``/``assignee`` are the
  latest of these entries.

Times of the business (trigger, due, closed, note) are naive, in the workspace's
timezone, like the canonical tables they come from; ``created_at`` is UTC. Created by
migration ``0006``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from retentio.data.store.tables import Base, check_in

#: what can open a task
TASK_TRIGGERS = ("nps", "csat", "ces", "ticket", "cancellation", "churn_risk")
#: a task's life: open → in progress → done
TASK_STATUSES = ("open", "in_progress", "done")
#: what a history entry records
NOTE_KINDS = ("created", "assigned", "note", "status")


class FeedbackTask(Base):
    """One follow-up of one customer for one trigger occurrence."""

    __tablename__ = "feedback_tasks"
    __table_args__ = (
        UniqueConstraint("customer_id", "occurrence", name="uq_feedback_tasks_once"),
        CheckConstraint(check_in("trigger", TASK_TRIGGERS), name="ck_feedback_tasks_trigger"),
        CheckConstraint(check_in("status", TASK_STATUSES), name="ck_feedback_tasks_status"),
        CheckConstraint("due_at >= triggered_at", name="ck_feedback_tasks_due"),
        CheckConstraint("value >= 0", name="ck_feedback_tasks_value"),
        # closed exactly when done: a done task without a closing time could not be measured
        CheckConstraint("(status = 'done' AND closed_at IS NOT NULL) OR (status <> 'done' AND closed_at IS NULL)",
                        name="ck_feedback_tasks_closed"),
        Index("ix_feedback_tasks_status_due", "status", "due_at"),
        Index("ix_feedback_tasks_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(80))
    trigger: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(String(200))
    #: the trigger occurrence: its kind and the source row's key (e.g. ``nps@2026-03-01T10:15:00``)
    occurrence: Mapped[str] = mapped_column(String(200))
    #: the source row as read (score, comment, topic, reason, band, value at risk, ...)
    source: Mapped[dict] = mapped_column(JSON)
    triggered_at: Mapped[dt.datetime] = mapped_column(DateTime())
    due_at: Mapped[dt.datetime] = mapped_column(DateTime())
    #: money at stake, which sets the priority (higher first)
    value: Mapped[float] = mapped_column(Float)
    #: where ``value`` came from: value_at_risk, revenue_12m, mrr_12m or none
    value_basis: Mapped[str] = mapped_column(String(20))
    owner_role: Mapped[str] = mapped_column(String(80))
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(12))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class FeedbackTaskNote(Base):
    """One entry of a task's append-only history."""

    __tablename__ = "feedback_task_notes"
    __table_args__ = (
        CheckConstraint(check_in("kind", NOTE_KINDS), name="ck_feedback_task_notes_kind"),
        CheckConstraint(f"status IS NULL OR {check_in('status', TASK_STATUSES)}", name="ck_feedback_task_notes_status"),
        Index("ix_feedback_task_notes_task", "task_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("feedback_tasks.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))
    #: when it happened (business time)
    at: Mapped[dt.datetime] = mapped_column(DateTime())
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text, default="")
    #: the new status (kind status) or the new assignee (kind assigned)
    status: Mapped[str | None] = mapped_column(String(12), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


__all__ = ["NOTE_KINDS", "TASK_STATUSES", "TASK_TRIGGERS", "FeedbackTask", "FeedbackTaskNote"]
