"""The operational store's tables: what Retentio owns rather than reads.

The canonical input tables stay in the analytics engine (DuckDB or Spark). Here live the
things Retentio itself decides and must remember: every trained model with its version,
settings, metrics and the fingerprint of the data it saw (the *model registry*), and the
churn scores it gave on a day (*score snapshots*), so later steps — a campaign that
targets "who was high risk on 1 March", its measurement weeks later — read what was
decided instead of recomputing it.

Constraints live in the schema (checks, foreign keys, uniqueness), not only in Python,
so a second writer (another process, the web app) cannot store what this code would
refuse. SQLAlchemy 2 declarative mapping; the migrations in ``migrations/`` create the
same schema on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: churn bands, lowest risk first (the snapshot column's CHECK)
BANDS = ("low", "medium", "high")
#: kinds of model the registry keeps
MODEL_KINDS = ("churn", "clv")


class Base(DeclarativeBase):
    pass


def check_in(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a CHECK constraint: ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ModelVersion(Base):
    """One trained model: ``kind`` and a version counting up per kind from 1."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("kind", "version", name="uq_model_versions_kind_version"),
        CheckConstraint("version >= 1", name="ck_model_versions_version"),
        CheckConstraint("kind IN ('churn', 'clv')", name="ck_model_versions_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: the estimator's name and parameters, the label definition, the training plan
    settings: Mapped[dict] = mapped_column(JSON)
    #: held-out quality: ROC-AUC, Brier, log-likelihood, ...
    metrics: Mapped[dict] = mapped_column(JSON)
    #: fingerprint of the data the model was trained on (see Workspace.data_fingerprint)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    #: the fitted model itself (the estimator's own serialisation)
    payload: Mapped[str] = mapped_column(Text)

    snapshots: Mapped[list[ScoreSnapshot]] = relationship(back_populates="model")


class ScoreSnapshot(Base):
    """The churn scores one model gave every eligible customer as of one day."""

    __tablename__ = "score_snapshots"
    __table_args__ = (
        UniqueConstraint("model_version_id", "as_of", "data_fingerprint", name="uq_score_snapshots_inputs"),
        CheckConstraint("customers >= 0", name="ck_score_snapshots_customers"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="RESTRICT"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    customers: Mapped[int] = mapped_column(Integer)
    #: the label definition and value basis the scores were stated with
    facts: Mapped[dict] = mapped_column(JSON)

    model: Mapped[ModelVersion] = relationship(back_populates="snapshots")
    scores: Mapped[list[CustomerScore]] = relationship(back_populates="snapshot", cascade="all, delete-orphan")


class CustomerScore(Base):
    """One customer's churn score in a snapshot."""

    __tablename__ = "customer_scores"
    __table_args__ = (
        CheckConstraint("probability >= 0 AND probability <= 1", name="ck_customer_scores_probability"),
        CheckConstraint("score >= 0 AND score <= 100", name="ck_customer_scores_score"),
        CheckConstraint("band IN ('low', 'medium', 'high')", name="ck_customer_scores_band"),
    )

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("score_snapshots.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
    score: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(10))
    value_at_risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    reasons: Mapped[list] = mapped_column(JSON)

    snapshot: Mapped[ScoreSnapshot] = relationship(back_populates="scores")
