"""Whom to target: an uplift model trained on a randomised experiment — a table of one
row per customer, or a past campaign of the workspace — chosen by cross-fitted Qini,
with its out-of-fold predictions compared against a random and a churn-risk ranking.

The learners and metrics are :mod:`retentio.analytics.uplift`; this service reads the
experiment, builds features and returns typed facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retentio.data.errors import InvalidParameter, RetentioError

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace


@dataclass(frozen=True)
class TableExperiment:
    """A randomised experiment in a file: which column holds the arm (and which values
    mean treated and control — default 1/0, true/false, treatment/control), the outcome
    column, and optionally a column with a churn-risk score to compare against."""

    table: Path
    treatment: str
    outcome: str
    treated: str | None = None
    control: str | None = None
    risk: str | None = None


@dataclass(frozen=True)
class UpliftParams:
    """Folds of the cross-fitting, the random seed, LightGBM threads, the top share for
    uplift@k, and where to write the out-of-fold predictions (CSV)."""

    folds: int = 5
    seed: int = 0
    threads: int = 1
    top: float = 0.3
    out: Path | None = None


@dataclass
class UpliftResult:
    """The chosen model's out-of-fold quality next to a random and a churn-risk ranking."""

    model: str
    scores: dict[str, float]
    qini: float
    uplift_at_k: float
    top: float
    ate: dict[str, float | None]
    random: dict[str, float]
    churn_risk: dict[str, float] | None
    churn_risk_note: str | None
    n_treated: int
    n_control: int
    outcome: str
    dropped_columns: list[str]
    out: str | None
    #: the saved model's version (``--save``), else None
    version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        key = f"uplift_at_{round(self.top * 100)}"
        return {"model": self.model, "qini": self.qini, key: self.uplift_at_k, "ate": self.ate,
                "random": self.random, "churn_risk": self.churn_risk, "churn_risk_note": self.churn_risk_note,
                "n_treated": self.n_treated, "n_control": self.n_control, "candidates": self.scores,
                "outcome": self.outcome, "dropped_columns": self.dropped_columns, "out": self.out,
                "saved_version": self.version}


_TREATED = {"1", "true", "yes", "treatment", "treated", "t"}
_CONTROL = {"0", "false", "no", "control", "c"}


def _arms(values: pd.Series, treated: str | None, control: str | None, column: str,
          path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(in the experiment, treated) per row from the treatment column's text."""
    text = values.astype(str).str.strip()
    if treated is not None or control is not None:
        if treated is None or control is None:
            raise InvalidParameter("treated" if treated is None else "control", None,
                                   "both --treated and --control, or neither")
        is_t, is_c = (text == str(treated)).to_numpy(), (text == str(control)).to_numpy()
    else:
        lower = text.str.lower()
        is_t, is_c = lower.isin(_TREATED).to_numpy(), lower.isin(_CONTROL).to_numpy()
        other = ~(is_t | is_c)
        if other.any():
            row = int(np.flatnonzero(other)[0])
            raise RetentioError(f"{path}: row {row + 2}, column {column!r}: {values.iloc[row]!r} is neither "
                                f"treated (1/true/treatment) nor control (0/false/control); name them with "
                                f"--treated and --control")
    return is_t | is_c, is_t


def _features(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Model input, without identifier-like text columns (unique on every row)."""
    from retentio.analytics.uplift import feature_matrix

    dropped = [c for c in frame.columns
               if (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])) and len(frame) > 1
               and frame[c].nunique() == len(frame)]
    return feature_matrix(frame.drop(columns=dropped)), dropped


def _evaluate(y: np.ndarray, t: np.ndarray, oof: np.ndarray, risk: np.ndarray | None,
              top: float, seed: int) -> tuple[dict, dict, dict | None]:
    from retentio.analytics.uplift import qini_auc_score, uplift_at_k

    def quality(scores: np.ndarray) -> dict[str, float]:
        return {"qini": float(qini_auc_score(y, t, scores)), "uplift_at_k": float(uplift_at_k(y, t, scores, top))}

    random = quality(np.random.default_rng(seed).random(len(y)))
    return quality(oof), random, quality(risk) if risk is not None else None


def _result(fit: Any, y: np.ndarray, t: np.ndarray, risk: np.ndarray | None, risk_note: str | None,
            params: UpliftParams, outcome: str, dropped: list[str], out: str | None) -> UpliftResult:
    from retentio.analytics.uplift import ate

    model_q, random, churn = _evaluate(y, t, fit.oof, risk, params.top, params.seed)
    e = ate(y, t)
    effect = {"estimate": e.per_customer, "low": e.per_customer_low, "high": e.per_customer_high,
              "p_value": e.p_value}
    return UpliftResult(fit.name, fit.scores, model_q["qini"], model_q["uplift_at_k"], params.top,
                        {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in effect.items()},
                        random, churn, risk_note, fit.n_treated, fit.n_control, outcome, dropped, out)


def train_on_table(experiment: TableExperiment, params: UpliftParams = UpliftParams(),
                   progress: Callable[[str], None] = lambda _m: None) -> UpliftResult:
    """Train on a file of one row per customer; ``params.out`` receives ``row`` (the
    0-based position among the file's data rows) and its out-of-fold ``uplift`` for every
    row of the two arms."""
    from retentio.analytics.churn.tabular import read_table
    from retentio.analytics.uplift import fit_uplift

    path = Path(experiment.table)
    frame = read_table(path)
    for option, column in (("treatment", experiment.treatment), ("outcome", experiment.outcome),
                           ("risk", experiment.risk)):
        if column is not None and column not in frame.columns:
            raise InvalidParameter(option, column, f"a column of {path.name}: {', '.join(map(str, frame.columns))}")
    keep, treated = _arms(frame[experiment.treatment], experiment.treated, experiment.control,
                          experiment.treatment, path)
    y_raw = pd.to_numeric(frame[experiment.outcome], errors="coerce")
    bad = keep & y_raw.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RetentioError(f"{path}: row {row + 2}, column {experiment.outcome!r}: "
                            f"{frame[experiment.outcome].iloc[row]!r} is not a number")
    rows = np.flatnonzero(keep)
    y = y_raw.to_numpy(dtype="float64")[rows]
    t = treated[rows].astype("int64")
    risk = None
    if experiment.risk:
        risk = pd.to_numeric(frame[experiment.risk], errors="coerce").to_numpy(dtype="float64")[rows]
        risk = np.where(np.isnan(risk), np.nanmedian(risk), risk)
    X, dropped = _features(frame.iloc[rows].drop(columns=[c for c in (experiment.treatment, experiment.outcome,
                                                                      experiment.risk) if c]).reset_index(drop=True))
    fit = fit_uplift(X, y, t, folds=params.folds, random_state=params.seed, progress=progress)
    out = None
    if params.out is not None:
        pd.DataFrame({"row": rows, "uplift": fit.oof}).to_csv(params.out, index=False)
        out = str(params.out)
    return _result(fit, y, t, risk, None if risk is not None else "no --risk column given", params,
                   experiment.outcome, dropped, out)


def train_on_campaign(ws: Workspace, campaign: str, outcome: str = "conversion",
                      params: UpliftParams = UpliftParams(), *, save: bool = False,
                      progress: Callable[[str], None] = lambda _m: None) -> UpliftResult:
    """Train on a past campaign: its measured customers (treated whose message went out,
    control whose message was withheld), the churn feature set on each run's as-of day
    (:func:`retentio.actions.targeting.features_at`), and the outcome over the
    campaign's attribution window. The propensity is the planned treated share. The
    churn-risk ranking is the saved churn model's probability on the same day (when a
    model is saved). ``params.out`` receives customer_id, as_of and the out-of-fold
    uplift; with ``save`` the model is kept in the store for playbooks with
    ``target = "uplift"`` (``result.version``)."""
    from retentio.actions.targeting import features_at, save_model
    from retentio.analytics.campaign_effect import window_outcomes
    from retentio.analytics.uplift import fit_uplift
    from retentio.services.measurement import MeasureParams, units_frame

    if outcome not in ("conversion", "revenue"):
        raise InvalidParameter("outcome", outcome, "conversion | revenue")
    units = units_frame(ws, MeasureParams([campaign]))
    if units.empty:
        raise RetentioError(f"Campaign {campaign!r} has no measured customers yet")
    progress("outcomes")
    units = window_outcomes(ws, units)
    units["customer_id"] = units.customer_id.astype(str)
    parts, risks = [], []
    risk_note = None
    for as_of, group in units.groupby("as_of", sort=True):
        progress(f"features as of {as_of}")
        cutoff = pd.Timestamp(as_of)
        parts.append(group[["customer_id", "as_of", "arm", "converted", "revenue"]].merge(
            features_at(ws, cutoff), on="customer_id", how="left"))
        try:
            from retentio.analytics.churn.train import score

            scores = score(ws, cutoff.date(), snapshot=False).set_index("customer_id").churn_probability
            risks.append(group.customer_id.map(scores).to_numpy(dtype="float64"))
        except RetentioError as exc:
            risk_note = str(exc).splitlines()[0]
    data = pd.concat(parts, ignore_index=True)
    y = data["converted" if outcome == "conversion" else "revenue"].to_numpy(dtype="float64")
    t = (data.arm == "treatment").to_numpy().astype("int64")
    risk = None
    if risk_note is None and risks:
        risk = np.concatenate(risks)
        risk = np.where(np.isnan(risk), np.nanmedian(risk) if np.isfinite(risk).any() else 0.0, risk)
    X, dropped = _features(data.drop(columns=["customer_id", "as_of", "arm", "converted", "revenue"]))
    propensity = 1 - float(units.holdout_pct.iloc[0]) / 100
    fit = fit_uplift(X, y, t, propensity=propensity, folds=params.folds, random_state=params.seed,
                     progress=progress)
    out = None
    if params.out is not None:
        pd.DataFrame({"customer_id": data.customer_id, "as_of": data.as_of, "uplift": fit.oof}).to_csv(
            params.out, index=False)
        out = str(params.out)
    result = _result(fit, y, t, risk, risk_note, params, outcome, dropped, out)
    if save:
        result.version = save_model(ws.store, campaign, fit, list(X.columns), outcome,
                                    {"qini": result.qini, "uplift_at_k": result.uplift_at_k, "top": result.top,
                                     "candidates": result.scores, "n_treated": result.n_treated,
                                     "n_control": result.n_control})
    return result


__all__ = ["TableExperiment", "UpliftParams", "UpliftResult", "train_on_campaign", "train_on_table"]
