"""Targeting by uplift: contact the customers a campaign persuades, not only those at
risk (Radcliffe 2007, "Using control groups to target on predicted lift"; Gutierrez &
Gérardy 2017, "Causal inference and uplift modelling: a review of the literature").

An uplift model is learned from a campaign's randomised history
(:func:`retentio.analytics.uplift.fit_uplift`) on the churn feature set of each run's
day, and kept in the store (``uplift_models``). A playbook with ``target = "uplift"``
scores its eligible customers on the run's day and keeps

* the ``top`` share with the highest predicted uplift, or (``target_rule = "value"``)
  everyone whose predicted uplift × value exceeds the cost of a contact; and
* a random ``explore`` share of the rest (a seeded hash, like the arms), which goes on
  into the experiment as before — so the next measurement still covers the customers
  the model passed over, and the model can be checked and retrained.

Everyone kept is then randomised into treatment and control as usual.
"""

from __future__ import annotations

import base64
import datetime as dt
import pickle
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retentio.actions import gates
from retentio.data.errors import RetentioError

if TYPE_CHECKING:
    from retentio.actions.playbooks import Playbook
    from retentio.data.store import Store
    from retentio.data.workspace import Workspace

#: columns of a campaign's measured units that a feature must not shadow
_RESERVED = ("customer_id", "as_of", "arm", "converted", "revenue")


def features_at(ws: Workspace, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The churn feature set of every customer on ``cutoff`` (one row per customer),
    with BG/NBD P(alive): what an uplift model reads."""
    from retentio.analytics.churn.features import add_p_alive, build_features

    frame = add_p_alive(build_features(ws, cutoff)).drop_duplicates("customer_id")
    frame["customer_id"] = frame.customer_id.astype(str)
    return frame.drop(columns=[c for c in _RESERVED if c != "customer_id" and c in frame.columns])


def save_model(store: Store, campaign: str, fit: Any, features: list[str], outcome: str,
               metrics: dict[str, Any]) -> int:
    """Keep ``fit.model`` as the next version of ``campaign``'s uplift model; returns the version."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import UpliftModel

    payload = base64.b64encode(pickle.dumps(fit.model, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")
    with store.session() as s:
        latest = s.scalar(select(func.max(UpliftModel.version)).where(UpliftModel.campaign == campaign)) or 0
        s.add(UpliftModel(campaign=campaign, version=latest + 1, created_at=dt.datetime.now(dt.UTC),
                          outcome=outcome, learner=fit.name, metrics=metrics, features=features, payload=payload))
    return int(latest + 1)


def load_model(store: Store, campaign: str) -> tuple[Any, list[str], int, dict[str, Any]]:
    """The newest uplift model of ``campaign``: (learner, feature columns, version, metrics)."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import UpliftModel

    with store.session() as s:
        row = s.scalars(select(UpliftModel).where(UpliftModel.campaign == campaign)
                        .order_by(UpliftModel.version.desc()).limit(1)).first()
        if row is None:
            raise RetentioError(f"No uplift model for campaign {campaign!r} yet: train one with "
                                f"`retentio uplift train --campaign {campaign} --save`")
        model = pickle.loads(base64.b64decode(row.payload))  # noqa: S301 - the workspace's own store
        return model, list(row.features), int(row.version), dict(row.metrics)


def predict_uplift(ws: Workspace, model: Any, features: list[str], customers: pd.Series,
                   cutoff: pd.Timestamp) -> np.ndarray:
    """Predicted uplift of ``customers`` on ``cutoff`` (NaN for a customer without features)."""
    from retentio.analytics.uplift import feature_matrix

    frame = features_at(ws, cutoff)
    for column in features:  # a feature the data no longer has is missing, not an error
        if column not in frame.columns:
            frame[column] = np.nan
    rows = pd.DataFrame({"customer_id": customers.astype(str).to_numpy()}).merge(
        frame[["customer_id", *features]], on="customer_id", how="left")
    known = rows[features].notna().any(axis=1).to_numpy()
    out = np.full(len(rows), np.nan)
    if known.any():
        out[known] = model.predict(feature_matrix(rows.loc[known, features].reset_index(drop=True)))
    return out


def persuadable(ws: Workspace, pb: Playbook, eligible: pd.DataFrame, instant: pd.Timestamp,
                contact_cost: float) -> tuple[np.ndarray, np.ndarray, int]:
    """For each eligible row (customer_id, value): whether it stays in the campaign, its
    predicted uplift, and the model version used (see the module notes)."""
    model, features, version, _ = load_model(ws.store, pb.uplift_model or pb.name)
    predicted = predict_uplift(ws, model, features, eligible.customer_id, instant)
    score = np.where(np.isnan(predicted), -np.inf, predicted)
    if pb.target_rule == "value":
        cost = pb.target_cost if pb.target_cost is not None else contact_cost
        chosen = score * eligible["value"].fillna(0.0).to_numpy(dtype="float64") > cost
    else:
        k = int(np.ceil((pb.top or 0.0) * len(score)))
        order = np.argsort(-score, kind="stable")
        chosen = np.zeros(len(score), dtype=bool)
        chosen[order[:k]] = True
        chosen &= np.isfinite(score)
    explore = gates.unit_hash(f"explore:{pb.name}", eligible.customer_id) < pb.explore
    return chosen | explore, predicted, version


__all__ = ["features_at", "load_model", "persuadable", "predict_uplift", "save_model"]
