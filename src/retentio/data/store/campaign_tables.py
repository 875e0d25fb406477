"""The store's campaign tables: what Retentio decided to send, to whom, and what happened.

* ``campaigns`` — one row per playbook that has been run (its name, kind and the
  definition it last ran with).
* ``campaign_runs`` — one row per run: the as-of day, the seed, the score snapshot and
  churn model version it read, and its counts.
* ``assignments`` — the unit of work: one row per (campaign, customer, trigger
  occurrence), unique in the schema, so a trigger is acted on **once** however often a
  run is repeated. It records the arm (treatment or control, randomised at eligibility),
  the gate that stopped the message (``reason``; none when it went out), the offer and
  promo code, the expected value, and the snapshot and model version used.
* ``outbox`` — the rendered message of an assignment (also for control customers: the
  message that *would* have been sent, status ``withheld``), committed before anything is
  sent; senders claim rows, deliver them and record each result.
* ``promo_codes`` — every issued code: unique, one-time, with its expiry and redemption.
* ``suppressions`` — unsubscribes, bounces, complaints and manual entries per channel
  and address (or customer).
* ``uplift_models`` — uplift models learned from a campaign's history, which playbooks
  with ``target = "uplift"`` use to pick the persuadable (migration ``0003``).

Constraints (uniqueness, allowed values, foreign keys) are in the schema, so a second
writer cannot store what this code would refuse. Created by migration ``0002``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
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

#: the two arms of a campaign's randomised holdout
ARMS = ("treatment", "control")
#: what happened to an assignment's message
OUTBOX_STATUSES = ("pending", "sending", "sent", "retry", "failed", "withheld", "cancelled")
#: why a customer is on a suppression list
SUPPRESSION_KINDS = ("unsubscribe", "hard_bounce", "soft_bounce", "complaint", "manual")
#: channels a message can go by (sms covers messengers and push: the webhook's receiver decides)
CHANNELS = ("email", "sms", "webhook", "csv")


class Campaign(Base):
    """A playbook that has been run."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: the playbook as last run (parsed TOML), for what a later reader needs to know
    definition: Mapped[dict] = mapped_column(JSON)


class CampaignRun(Base):
    """One run of a campaign on one as-of day."""

    __tablename__ = "campaign_runs"
    __table_args__ = (CheckConstraint(check_in("status", ("assigning", "sending", "done")), name="ck_campaign_runs_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    seed: Mapped[str] = mapped_column(String(100))
    holdout_pct: Mapped[float] = mapped_column(Float)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("score_snapshots.id", ondelete="RESTRICT"),
                                                    nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: eligible, treatment, control, queued, deferred, suppressed by reason, already assigned
    counts: Mapped[dict] = mapped_column(JSON)


class Assignment(Base):
    """One customer, one trigger occurrence, one campaign: arm, gate outcome, offer."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", "occurrence", name="uq_assignments_once"),
        CheckConstraint(check_in("arm", ARMS), name="ck_assignments_arm"),
        Index("ix_assignments_customer", "customer_id"),
        Index("ix_assignments_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign_runs.id", ondelete="RESTRICT"))
    customer_id: Mapped[str] = mapped_column(String(200))
    #: what triggered it: a day, an event time, a subscription's end (one action per occurrence)
    occurrence: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(10))
    #: the gate that stopped the message, or None when it was queued (treatment) or withheld (control)
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    expected_value: Mapped[float] = mapped_column(Float)
    offer: Mapped[dict] = mapped_column(JSON)
    promo_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    snapshot_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """A rendered message waiting to be sent, sent, failed, or withheld (control)."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(check_in("status", OUTBOX_STATUSES), name="ck_outbox_status"),
        CheckConstraint(check_in("channel", CHANNELS), name="ck_outbox_channel"),
        CheckConstraint("attempts >= 0", name="ck_outbox_attempts"),
        Index("ix_outbox_due", "status", "not_before"),
        Index("ix_outbox_customer_sent", "customer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="RESTRICT"), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign_runs.id", ondelete="RESTRICT"))
    customer_id: Mapped[str] = mapped_column(String(200))
    #: stable across retries: the SMTP Message-ID and the webhook's idempotency key
    message_id: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    #: marketing (consent and caps apply) or service (caps exempt, opt-out respected)
    message_class: Mapped[str] = mapped_column(String(10))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    unsubscribe_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: quiet hours and retry backoff: not sent before this time (UTC)
    not_before: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    cost: Mapped[float] = mapped_column(Float, default=0.0)


class PromoCode(Base):
    """One issued promo code: one customer, one use, an expiry."""

    __tablename__ = "promo_codes"
    __table_args__ = (Index("ix_promo_codes_customer", "customer_id"),)

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="RESTRICT"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(200))
    offer: Mapped[dict] = mapped_column(JSON)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    redeemed_order_id: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)


class Suppression(Base):
    """An address (or a customer) that a channel must not send marketing to."""

    __tablename__ = "suppressions"
    __table_args__ = (
        CheckConstraint(check_in("kind", SUPPRESSION_KINDS), name="ck_suppressions_kind"),
        CheckConstraint(check_in("channel", ("email", "sms")), name="ck_suppressions_channel"),
        CheckConstraint("address IS NOT NULL OR customer_id IS NOT NULL", name="ck_suppressions_target"),
        Index("ix_suppressions_address", "channel", "address"),
        Index("ix_suppressions_customer", "channel", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class UpliftModel(Base):
    """An uplift model learned from a campaign's randomised history (migration ``0003``):
    a version per campaign counting up, the outcome it predicts, its cross-fitted
    metrics, the feature columns it reads, and the fitted learner (a pickle, base64 —
    the store is the workspace's own; do not point a workspace at a store you do not
    trust)."""

    __tablename__ = "uplift_models"
    __table_args__ = (UniqueConstraint("campaign", "version", name="uq_uplift_models_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20))
    learner: Mapped[str] = mapped_column(String(40))
    metrics: Mapped[dict] = mapped_column(JSON)
    features: Mapped[list] = mapped_column(JSON)
    payload: Mapped[str] = mapped_column(Text)


__all__ = ["ARMS", "CHANNELS", "OUTBOX_STATUSES", "SUPPRESSION_KINDS", "Assignment", "Campaign", "CampaignRun",
           "OutboxMessage", "PromoCode", "Suppression", "UpliftModel"]
