"""Churn use cases: train the model (on a workspace, or cross-validated on a snapshot
table) and score customers. Typed results: the faces read fields, not ``DataFrame.attrs``.

The model, its features, labels and calibration are in :mod:`retentio.analytics.churn`;
scores are kept as snapshots in the workspace's store (:mod:`retentio.data.store`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retentio.data.errors import InvalidParameter

if TYPE_CHECKING:
    import pandas as pd

    from retentio.analytics.churn.reasons import Phrasebook
    from retentio.data.workspace import Workspace


@dataclass(frozen=True)
class TrainParams:
    """``as_of`` (default: the end of the data), the label's horizon in days (default:
    the activity window) or an event type, LightGBM threads and the seed."""

    as_of: dt.date | None = None
    horizon: int | None = None
    event: str | None = None
    threads: int = 1
    seed: int = 0


def train_churn(ws: Workspace, params: TrainParams = TrainParams(), progress=None) -> dict:
    """Train, test out of time, backtest and register a new churn model version; returns
    the training report (metrics, label definition, plan, calibration, backtest, version)."""
    from retentio.analytics.churn.train import train

    return train(ws, params.as_of, params.horizon, params.event, threads=params.threads, seed=params.seed,
                 progress=progress)


def cross_validate_table(table: Path, label: str | None, *, threads: int = 1, seed: int = 0) -> dict:
    """The same model on a one-row-per-customer snapshot, 5-fold stratified cross-validation."""
    from retentio.analytics.churn.tabular import cross_validate

    if not label:
        raise InvalidParameter("label", label, "the churn column of the table (1/0, yes/no, true/false)")
    return cross_validate(table, label, threads=threads, seed=seed)


@dataclass(frozen=True)
class ChurnScores:
    """Scores per customer (customer_id, churn_probability, score, band, value_at_risk,
    reasons), most likely to leave first, with what they were stated with."""

    frame: pd.DataFrame
    as_of: str | None
    label: str | None
    value_basis: str | None
    model_version: int | None
    snapshot_id: int | None
    snapshot_reused: bool
    #: why the model must not be used to target anyone (from its training), or None
    warning: str | None = None


def score_churn(ws: Workspace, as_of: dt.date | None = None, top: int | None = None, *,
                phrases: Phrasebook | None = None, with_groups: bool = False) -> ChurnScores:
    """Score every eligible customer with the newest model (or read the snapshot the same
    model made on the same day and data). ``phrases`` words the reasons in another
    language; ``with_groups`` adds ``reason_groups``, the kind of each reason (scores
    asked for either are computed, not kept as a snapshot). An ``as_of`` on or before the
    first day of the data has no history to score and is refused, naming that day."""
    import pandas as pd

    from retentio.analytics.base import span
    from retentio.analytics.churn.reasons import ENGLISH
    from retentio.analytics.churn.train import score

    # the first day of the activity the features and labels read (as the training plan does)
    found = span(ws, ("orders", "subscriptions", "events")) if as_of is not None else None
    start = found[0].normalize() if found is not None else None
    if as_of is not None and start is not None and pd.Timestamp(as_of) <= start:
        # the features look back from as_of, where there is nothing: an empty table would mislead
        raise InvalidParameter("as_of", as_of.isoformat(),
                               f"a day after the first day of the data, {start.date().isoformat()}: scores use "
                               "the activity before the as-of day")
    frame = score(ws, as_of, top, with_groups=with_groups, phrases=phrases or ENGLISH)
    facts = dict(frame.attrs)
    frame.attrs.clear()
    return ChurnScores(frame, facts.get("as_of"), facts.get("label"), facts.get("value_basis"),
                       facts.get("model_version"), facts.get("snapshot_id"), bool(facts.get("snapshot_reused")),
                       facts.get("model_warning"))


__all__ = ["ChurnScores", "TrainParams", "cross_validate_table", "score_churn", "train_churn"]
