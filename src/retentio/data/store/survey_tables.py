"""The store's survey tables: who was asked what, by which playbook and channel, and
what they answered (migration ``0005``).

* ``survey_invitations`` — one row per survey message of a survey playbook
  (``nps_survey``, ``csat_after_ticket``, ``exit_survey``): the campaign assignment it
  belongs to (so the outbox row, the channel and the send status are one join away),
  the survey kind, the token's id (the signed answer link carries it) and when the link
  expires. Throttling reads ``(customer_id, invited_at)``: nobody is asked twice within
  a playbook's ``min_days_between``, across every survey playbook.
* ``survey_answers`` — at most one per invitation (unique in the schema, so two racing
  answers cannot both land), the score (checked against the kind's scale in the schema
  as well as in code), the comment as plain text, and whether it has been appended to
  the workspace's canonical ``surveys`` table yet (``exported_at``).

Scales (inclusive): NPS 0–10 (Reichheld 2003), CSAT 1–5, CES 1–7 (Dixon, Freeman &
Toman 2010) — the same as :data:`retentio.data.schema.SURVEY_SCALES`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from retentio.data.store.tables import Base, check_in

#: survey kinds a playbook can ask
SURVEY_KINDS = ("nps", "csat", "ces")
#: how an answer reached the store
ANSWER_SOURCES = ("link", "cli", "import")
#: the kinds' scales in the schema (kept equal to retentio.data.schema.SURVEY_SCALES; a test checks)
SCORE_CHECK = ("(kind = 'nps' AND score BETWEEN 0 AND 10) OR (kind = 'csat' AND score BETWEEN 1 AND 5) "
               "OR (kind = 'ces' AND score BETWEEN 1 AND 7)")


class SurveyInvitation(Base):
    """A survey sent (or withheld for a control customer) to one customer."""

    __tablename__ = "survey_invitations"
    __table_args__ = (
        CheckConstraint(check_in("kind", SURVEY_KINDS), name="ck_survey_invitations_kind"),
        Index("ix_survey_invitations_customer", "customer_id", "invited_at"),
        Index("ix_survey_invitations_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the random id the signed token carries (the token itself is never stored)
    token_id: Mapped[str] = mapped_column(String(40), unique=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="RESTRICT"), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    customer_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10))
    #: what the survey is about: an order, a ticket, a subscription's end, a half-year
    occurrence: Mapped[str] = mapped_column(String(200))
    invited_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class SurveyAnswer(Base):
    """The one answer to an invitation."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        CheckConstraint(check_in("kind", SURVEY_KINDS), name="ck_survey_answers_kind"),
        CheckConstraint(SCORE_CHECK, name="ck_survey_answers_score"),
        CheckConstraint(check_in("source", ANSWER_SOURCES), name="ck_survey_answers_source"),
        Index("ix_survey_answers_customer", "customer_id", "answered_at"),
        Index("ix_survey_answers_exported", "exported_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("survey_invitations.id", ondelete="RESTRICT"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    #: plain text as typed; never rendered as HTML (templates autoescape it)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(10))
    #: when the answer was appended to the workspace's canonical surveys table (None: not yet)
    exported_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


__all__ = ["ANSWER_SOURCES", "SCORE_CHECK", "SURVEY_KINDS", "SurveyAnswer", "SurveyInvitation"]
