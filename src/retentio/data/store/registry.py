"""The model registry and churn score snapshots, on the operational store.

Every trained model is kept with a version counting up per kind, its settings, metrics
and the fingerprint of the data it saw; a snapshot keeps the scores one model version
gave as of one day on data with one fingerprint. Nothing is overwritten: retraining adds
a version, and an old snapshot still says which model made it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retentio.data.errors import RetentioError
from retentio.data.store.tables import BANDS, MODEL_KINDS, ModelVersion, ScoreSnapshot

if TYPE_CHECKING:
    import pandas as pd

    from retentio.data.store import Store


@dataclass(frozen=True)
class RegisteredModel:
    """A model version as stored (``payload`` is the estimator's own serialisation)."""

    id: int
    kind: str
    version: int
    created_at: dt.datetime
    settings: dict
    metrics: dict
    data_fingerprint: str
    payload: str


@dataclass(frozen=True)
class Snapshot:
    """A score snapshot's facts; its rows come from :func:`snapshot_scores`."""

    id: int
    model_kind: str
    model_version: int
    as_of: dt.date
    created_at: dt.datetime
    data_fingerprint: str
    customers: int
    facts: dict


#: the advisory lock key that serialises version numbering on PostgreSQL ("RTNT")
_REGISTRY_LOCK = 0x52544E54


def _registered(row: ModelVersion) -> RegisteredModel:
    return RegisteredModel(row.id, row.kind, row.version, row.created_at, row.settings, row.metrics,
                           row.data_fingerprint, row.payload)


def register_model(store: Store, kind: str, payload: str, *, settings: dict[str, Any], metrics: dict[str, Any],
                   data_fingerprint: str) -> RegisteredModel:
    """Store a newly trained model as the next version of its kind.

    The version is the kind's largest plus one, inside the inserting transaction, which
    holds the write lock (SQLite) or an advisory lock (PostgreSQL) so writers take turns;
    the unique constraint stays the last guard, and a writer that meets it retries.
    """
    from sqlalchemy import func, select, text
    from sqlalchemy.exc import IntegrityError

    if kind not in MODEL_KINDS:
        raise RetentioError(f"unknown model kind {kind!r}; the registry keeps {', '.join(MODEL_KINDS)}")
    for _attempt in range(5):
        try:
            with store.session() as session:
                if session.get_bind().dialect.name == "postgresql":
                    # writers take turns for the next number (SQLite's BEGIN IMMEDIATE already does)
                    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REGISTRY_LOCK})
                latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.kind == kind))
                row = ModelVersion(kind=kind, version=(latest or 0) + 1, created_at=dt.datetime.now(dt.UTC),
                                   settings=settings, metrics=metrics, data_fingerprint=data_fingerprint,
                                   payload=payload)
                session.add(row)
                session.flush()
                return _registered(row)
        except IntegrityError:
            continue
    raise RetentioError(f"could not register a new {kind} model: other writers kept taking the next version")


def latest_model(store: Store, kind: str) -> RegisteredModel | None:
    """The newest version of ``kind``, or None when none was trained."""
    from sqlalchemy import select

    with store.reading() as session:
        row = session.scalars(select(ModelVersion).where(ModelVersion.kind == kind)
                              .order_by(ModelVersion.version.desc()).limit(1)).first()
        return _registered(row) if row is not None else None


def model_versions(store: Store, kind: str) -> list[RegisteredModel]:
    """Every version of ``kind``, oldest first."""
    from sqlalchemy import select

    with store.reading() as session:
        return [_registered(r) for r in session.scalars(
            select(ModelVersion).where(ModelVersion.kind == kind).order_by(ModelVersion.version))]


def _snapshot(row: ScoreSnapshot) -> Snapshot:
    return Snapshot(row.id, row.model.kind, row.model.version, row.as_of, row.created_at, row.data_fingerprint,
                    row.customers, row.facts)


def find_snapshot(store: Store, model: RegisteredModel, as_of: dt.date, data_fingerprint: str) -> Snapshot | None:
    """The snapshot this model already made as of ``as_of`` on the same data, if any."""
    from sqlalchemy import select

    with store.reading() as session:
        row = session.scalars(select(ScoreSnapshot).where(
            ScoreSnapshot.model_version_id == model.id, ScoreSnapshot.as_of == as_of,
            ScoreSnapshot.data_fingerprint == data_fingerprint)).first()
        return _snapshot(row) if row is not None else None


def save_snapshot(store: Store, model: RegisteredModel, as_of: dt.date, data_fingerprint: str, facts: dict,
                  scores: pd.DataFrame) -> Snapshot:
    """Store one snapshot: ``scores`` has customer_id, churn_probability, score (0–100),
    band, value_at_risk and reasons (a list of statements) per customer."""
    bad = set(scores.band.dropna().unique()) - set(BANDS)
    if bad:
        raise RetentioError(f"unknown churn band(s) {sorted(bad)}; bands are {', '.join(BANDS)}")
    with store.session() as session:
        row = ScoreSnapshot(model_version_id=model.id, as_of=as_of, created_at=dt.datetime.now(dt.UTC),
                            data_fingerprint=data_fingerprint, customers=len(scores), facts=facts)
        session.add(row)
        session.flush()
        records = [
            (row.id, str(c), float(p), int(s), b, None if v is None or v != v else float(v), json.dumps(list(r)))
            for c, p, s, b, v, r in zip(scores.customer_id, scores.churn_probability, scores.score,
                                        scores.band, scores.value_at_risk, scores.reasons)
        ]
        _bulk_insert_scores(session, records)
        return Snapshot(row.id, model.kind, model.version, as_of, row.created_at, data_fingerprint, len(scores),
                        facts)


_SCORE_COLUMNS = ("snapshot_id", "customer_id", "probability", "score", "band", "value_at_risk", "reasons")


def _bulk_insert_scores(session, records: list[tuple]) -> None:
    """Write the rows inside the session's transaction with the driver's fastest path:
    COPY on PostgreSQL (psycopg 3), executemany on SQLite — a million rows in seconds,
    where ORM inserts take minutes. The schema's constraints check every row all the same."""
    raw = session.connection().connection.driver_connection
    columns = ", ".join(_SCORE_COLUMNS)
    if session.get_bind().dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY customer_scores ({columns}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)
    else:
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO customer_scores ({columns}) VALUES ({', '.join('?' * 7)})", records)
        finally:
            cursor.close()


def snapshots(store: Store) -> list[Snapshot]:
    """Every snapshot, newest first."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    with store.reading() as session:
        return [_snapshot(r) for r in session.scalars(
            select(ScoreSnapshot).options(joinedload(ScoreSnapshot.model)).order_by(ScoreSnapshot.id.desc()))]


def snapshot_scores(store: Store, snapshot: Snapshot) -> pd.DataFrame:
    """The scores of a snapshot, most likely to leave first (read with the driver's own
    cursor: the ORM's per-row processing costs seconds at a million rows)."""
    import pandas as pd

    with store.reading() as session:
        raw = session.connection().connection.driver_connection
        marker = "%s" if session.get_bind().dialect.name == "postgresql" else "?"
        cursor = raw.cursor()
        try:
            cursor.execute("SELECT customer_id, probability, score, band, value_at_risk, reasons FROM customer_scores "
                           f"WHERE snapshot_id = {marker}", (snapshot.id,))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    frame = pd.DataFrame(rows, columns=["customer_id", "churn_probability", "score", "band", "value_at_risk",
                                        "reasons"])
    # SQLite hands JSON back as text, psycopg already decoded
    frame["reasons"] = [json.loads(r) if isinstance(r, str) else r for r in frame.reasons]
    frame["value_at_risk"] = frame.value_at_risk.astype("float64")
    return frame.sort_values(["churn_probability", "customer_id"], ascending=[False, True], ignore_index=True)
