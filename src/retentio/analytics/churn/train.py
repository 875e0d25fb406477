"""Training, honest evaluation and scoring of the churn model on a workspace.

The time plan for an ``as_of`` date A and horizon H (step s between cutoffs):

* test cutoff  t = A − H (its label window closes at A);
* calibration cutoff  k = t − H (window closes at t, before the test cutoff);
* training cutoffs  k − H − i·s, i = 0 … n−1 (every window closes by k).

Cutoffs in a business's first months see only brand-new customers. Leaving them out
(and halving the step after the first horizon), weighting cutoffs by recency (half-lives
of 1–3 cutoffs) or training on the four latest only were each tried on the CDNOW sample
(out of time at three test cutoffs): none moved either model's ROC-AUC by more than
±0.015 on 390–409 test customers, against a standard error near 0.027 — so the plan stays
as it is, and the choice between models (below) is what protects a user. What does change
on a short history: training cutoffs on or before the first day of the data hold nobody,
so the step is halved (down to a week) until the ``n`` cutoffs, or as many as the label
windows allow, fall inside the data.

Three candidates are trained on the same rows — LightGBM, a regularised logistic
regression and their average (:mod:`~retentio.analytics.churn.model`) — and the one with
the highest ROC-AUC on the calibration slice is kept (ties go to the simpler model). The
test slice then scores all three, so the report shows what the choice cost or gained.
LightGBM stops early on the same calibration slice, which flatters its calibration AUC a
little: the choice leans towards trees only when they are really better.

So training labels never see the calibration or test periods and calibration never sees
the test period: validation is strictly out of time. The backtest repeats the whole plan
with the test cutoff moved back by s, 2s, … and reports each. Features come from
:mod:`~retentio.analytics.churn.features` (data strictly before each cutoff).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retentio.analytics.base import span
from retentio.analytics.churn.evaluate import baseline_auc, calibration_table, safe_auc, scores
from retentio.analytics.churn.features import AUX, FEATURES, FIT_SAMPLE_ROWS, add_p_alive, build_features
from retentio.analytics.churn.labels import LabelSpec, eligible, labels
from retentio.analytics.churn.model import MODEL_NAMES, AnyChurnModel, AverageChurnModel, model_from_dict
from retentio.analytics.churn.reasons import ENGLISH, Phrasebook, top_reasons
from retentio.data.errors import ModelMissing, RetentioError

if TYPE_CHECKING:
    from retentio.data.store.registry import RegisteredModel
    from retentio.data.workspace import Workspace

MODEL_FILE = "churn_model.json"
#: probability bands
BANDS = ((0.5, "high"), (0.25, "medium"), (0.0, "low"))
#: a model at or below this out-of-time ROC-AUC ranks customers no better than chance
WEAK_AUC = 0.55
#: a model trained on fewer distinct labelled customers is too thin to trust
FEW_CUSTOMERS = 300
#: ties on the calibration slice go to the simpler model
SIMPLEST_FIRST = ("logistic", "average", "lightgbm")


@dataclass(frozen=True)
class CutoffPlan:
    train: tuple[pd.Timestamp, ...]
    calibration: pd.Timestamp
    test: pd.Timestamp

    def as_dict(self) -> dict:
        return {"train": [c.date().isoformat() for c in self.train],
                "calibration": self.calibration.date().isoformat(), "test": self.test.date().isoformat()}


def data_start(ws: Workspace) -> pd.Timestamp | None:
    """The first day of recorded activity (None when nothing is loaded)."""
    sp = span(ws, ("orders", "subscriptions", "events"))
    return None if sp is None else sp[0].normalize()


def data_end(ws: Workspace) -> pd.Timestamp:
    """The day after the last recorded activity: the default ``as_of``."""
    sp = span(ws, ("orders", "subscriptions", "events"))
    if sp is None:
        raise RetentioError("churn needs orders, subscriptions or events: load them first")
    return sp[1].normalize() + pd.Timedelta(days=1)


def plan(as_of: pd.Timestamp, horizon: int, n_train: int = 6, step: int = 30,
         data_start: pd.Timestamp | None = None) -> CutoffPlan:
    """The cutoffs for ``as_of`` (see the module docstring). With ``data_start``, training
    cutoffs that would see no history are replaced by ones at a shorter step inside the
    data (the latest training cutoff is always kept)."""
    h = pd.Timedelta(days=horizon)
    test = pd.Timestamp(as_of).normalize() - h
    cal = test - h
    first = cal - h

    def cutoffs(every: int) -> list[pd.Timestamp]:
        return [first - pd.Timedelta(days=every * i) for i in range(n_train)]

    train = cutoffs(step)
    if data_start is not None:
        start = pd.Timestamp(data_start).normalize()
        while train[-1] <= start and step > 7:
            step = max(step // 2, 7)
            train = cutoffs(step)
        train = [c for c in train if c > start] or [first]
    return CutoffPlan(tuple(train), cal, test)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model's inputs: known features present in the frame plus customer attributes."""
    known = [f.name for f in FEATURES if f.name in frame]
    extra = [c for c in frame.columns if c not in known and c not in AUX and c not in ("customer_id", "churned", "cutoff")]
    return [c for c in known + extra if frame[c].notna().any()]


class _Features:
    """Features and labels per cutoff, computed once per training run."""

    def __init__(self, ws: Workspace, spec: LabelSpec, progress: Callable[[str], None] | None):
        self.ws, self.spec, self.progress = ws, spec, progress
        self._cache: dict[pd.Timestamp, pd.DataFrame] = {}

    def at(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        if cutoff not in self._cache:
            if self.progress:
                self.progress(f"features at {cutoff.date()}")
            lab = labels(self.ws, cutoff, self.spec)
            feats = add_p_alive(build_features(self.ws, cutoff))
            frame = lab.merge(feats, on="customer_id", how="left")
            frame["cutoff"] = cutoff
            # engines return rows in no fixed order; a fixed order keeps training deterministic
            frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
            self._cache[cutoff] = frame
        return self._cache[cutoff]

    def stacked(self, cutoffs) -> pd.DataFrame:
        return pd.concat([self.at(c) for c in cutoffs], ignore_index=True)


def _recency(frame: pd.DataFrame, spec: LabelSpec) -> pd.Series:
    col = "days_since_login" if spec.kind == "event" and spec.event_type == "login" else "recency_days"
    if col not in frame:
        col = "tenure_days"
    return frame[col]


def choose(calibration_auc: dict[str, float]) -> str:
    """The candidate with the highest calibration ROC-AUC (rounded to 4 places, so ties
    go to the simpler model); the average when the slice cannot rank (one class)."""
    ranked = [n for n in SIMPLEST_FIRST if n in calibration_auc and np.isfinite(calibration_auc[n])]
    if not ranked:
        return "average"
    return max(ranked, key=lambda n: (round(calibration_auc[n], 4), -SIMPLEST_FIRST.index(n)))


def _fit_and_test(data: _Features, p: CutoffPlan, threads: int, seed: int) -> tuple[AnyChurnModel, dict]:
    train = data.stacked(p.train)
    cal, test = data.at(p.calibration), data.at(p.test)
    if len(test) == 0 or len(cal) == 0:
        raise RetentioError("no eligible customers at the calibration or test cutoff: the data are too short "
                            f"for a {data.spec.horizon_days}-day horizon (need about {3 + len(p.train)} horizons)")
    cols = feature_columns(train)
    both = AverageChurnModel(seed=seed, threads=threads).fit(train[cols], train.churned, cal[cols], cal.churned)
    candidates: dict[str, AnyChurnModel] = {"lightgbm": both.trees_, "logistic": both.linear_, "average": both}
    y_cal, y = cal.churned.to_numpy(), test.churned.to_numpy()
    cal_auc = {n: safe_auc(y_cal, m.predict_raw(cal[cols])) for n, m in candidates.items()}
    probs = {n: m.predict_proba(test[cols]) for n, m in candidates.items()}
    chosen = choose(cal_auc)
    res = scores(y, probs[chosen])
    others = [v for n, v in cal_auc.items() if n != chosen and np.isfinite(v)]
    res["model"] = chosen
    res["candidates"] = [{"model": n, "calibration_roc_auc": cal_auc[n], "roc_auc": scores(y, probs[n])["roc_auc"],
                          "chosen": n == chosen} for n in SIMPLEST_FIRST]
    res["selection"] = {"by": f"ROC-AUC on the calibration slice ({p.calibration.date()}, {len(cal):,} customers)",
                        "margin": cal_auc[chosen] - max(others) if others and np.isfinite(cal_auc[chosen]) else None}
    res.update({f"{n}_roc_auc": c["roc_auc"] for n, c in zip(SIMPLEST_FIRST, res["candidates"])})
    res["baseline_roc_auc"] = baseline_auc(y, _recency(test, data.spec))
    res["calibration"] = calibration_table(y, probs[chosen])
    res["n_train"], res["n_test"] = int(len(train)), int(len(test))
    res["n_customers"] = int(train.customer_id.nunique())
    return candidates[chosen], res


def weakness(roc_auc: float, n_customers: int) -> str | None:
    """Why a trained model must not be used to target anyone, or None: an out-of-time
    ROC-AUC at or below :data:`WEAK_AUC` (or none: the test slice holds one class), or
    fewer than :data:`FEW_CUSTOMERS` labelled customers behind it."""
    if not np.isfinite(roc_auc):
        return ("this model could not be tested out of time (the test slice holds one class); "
                "do not target with it")
    if roc_auc <= WEAK_AUC:
        return (f"this model ranks no better than chance (out-of-time ROC-AUC {roc_auc:.2f}); "
                "do not target with it")
    if n_customers < FEW_CUSTOMERS:
        return (f"this model was trained on only {n_customers} labelled customers (fewer than {FEW_CUSTOMERS}); "
                "its scores are not reliable — do not target with it")
    return None


def _backtest_row(p: CutoffPlan, res: dict) -> dict:
    return {"test_cutoff": p.test.date().isoformat(),
            **{k: res[k] for k in ("model", "roc_auc", "pr_auc", "brier", "top_decile_lift", "baseline_roc_auc",
                                   "lightgbm_roc_auc", "logistic_roc_auc", "average_roc_auc", "n_test",
                                   "positive_rate")}}


def train(ws: Workspace, as_of: dt.date | None = None, horizon: int | None = None, event: str | None = None,
          *, threads: int = 1, seed: int = 0, n_cutoffs: int = 6, step_days: int = 30, backtest: int = 3,
          progress: Callable[[str], None] | None = None) -> dict:
    """Train, evaluate out of time, backtest and save the churn model in the workspace.
    Returns the report (the CLI's JSON keys plus calibration, backtest, plan, importance)."""
    spec = LabelSpec.for_workspace(ws, horizon, event)
    as_of = pd.Timestamp(as_of) if as_of else data_end(ws)
    data = _Features(ws, spec, progress)
    start = data_start(ws)
    main_plan = plan(as_of, spec.horizon_days, n_cutoffs, step_days, start)
    model, res = _fit_and_test(data, main_plan, threads, seed)
    history = [_backtest_row(main_plan, res)]
    for i in range(1, backtest):
        p = plan(as_of - pd.Timedelta(days=step_days * i), spec.horizon_days, n_cutoffs, step_days, start)
        try:
            _, r = _fit_and_test(data, p, threads, seed)
        except RetentioError as exc:
            history.append({"test_cutoff": p.test.date().isoformat(), "error": str(exc)})
            continue
        history.append(_backtest_row(p, r))
    aucs = [r["roc_auc"] for r in history if "roc_auc" in r and np.isfinite(r["roc_auc"])]
    report = {
        "model": res["model"], "model_name": MODEL_NAMES[res["model"]], "candidates": res["candidates"],
        "selection": res["selection"], "warning": weakness(res["roc_auc"], res["n_customers"]),
        "roc_auc": res["roc_auc"], "pr_auc": res["pr_auc"], "brier": res["brier"],
        "top_decile_lift": res["top_decile_lift"], "baseline_roc_auc": res["baseline_roc_auc"],
        "logistic_roc_auc": res["logistic_roc_auc"], "lightgbm_roc_auc": res["lightgbm_roc_auc"],
        "average_roc_auc": res["average_roc_auc"], "n_train": res["n_train"], "n_test": res["n_test"],
        "n_customers": res["n_customers"], "backtest_spread": max(aucs) - min(aucs) if len(aucs) > 1 else None,
        "positive_rate": res["positive_rate"], "label": spec.as_dict(),
        "as_of": as_of.date().isoformat(), "plan": main_plan.as_dict(), "calibration": res["calibration"],
        "backtest": history, "features": model.features_, "importance": model.importance(),
    }
    save(ws, model, report)
    return report


# ----------------------------------------------------------------------------- persistence
def save(ws: Workspace, model: AnyChurnModel, report: dict) -> int:
    """Register the model as the next churn version in the workspace's store (with its
    label, plan, metrics and the fingerprint of the data it was trained on); returns the
    version. Earlier versions and their snapshots stay."""
    from retentio.data.store.registry import register_model

    settings = {"label": report["label"], "plan": report.get("plan"), "as_of": report.get("as_of"),
                "estimator": {"name": MODEL_NAMES[report.get("model", "lightgbm")] + ", isotonic calibration",
                              "features": report.get("features")}}
    metrics = {k: report[k] for k in ("roc_auc", "pr_auc", "brier", "top_decile_lift", "baseline_roc_auc",
                                      "lightgbm_roc_auc", "logistic_roc_auc", "average_roc_auc", "n_train",
                                      "n_test", "positive_rate") if k in report}
    registered = register_model(ws.store, "churn", json.dumps({"report": report, "model": model.to_dict()}),
                                settings=settings, metrics=metrics, data_fingerprint=ws.data_fingerprint())
    report["model_version"] = registered.version
    return registered.version


def load(ws: Workspace, version: int | None = None) -> tuple[AnyChurnModel, dict]:
    """The newest churn model of the workspace (or ``version``) and its training report."""
    return _unpack(_registered(ws, version))


def _unpack(registered: RegisteredModel) -> tuple[AnyChurnModel, dict]:
    d = json.loads(registered.payload)
    report = d["report"] | {"model_version": registered.version, "model_id": registered.id}
    return model_from_dict(d["model"]), report


def _registered(ws: Workspace, version: int | None = None) -> RegisteredModel:
    """The registry entry of the newest churn model (or ``version``). A model saved by an
    earlier Retentio as ``churn_model.json`` is registered once as a version, so nothing
    trained before is lost."""
    from retentio.data.store.registry import latest_model, model_versions

    registered = latest_model(ws.store, "churn")
    legacy = ws.path / MODEL_FILE
    if registered is None and legacy.exists():
        d = json.loads(legacy.read_text())
        save(ws, model_from_dict(d["model"]), d["report"])
        registered = latest_model(ws.store, "churn")
    if version is not None:
        registered = next((m for m in model_versions(ws.store, "churn") if m.version == version), None)
        if registered is None:
            raise RetentioError(f"no churn model version {version} in {ws.path}")
    if registered is None:
        raise ModelMissing("churn", ws.path)
    return registered


# ----------------------------------------------------------------------------- scoring
def band(p: float, high: float = BANDS[0][0], medium: float = BANDS[1][0]) -> str:
    """The risk band of a churn probability (thresholds: ``[analysis]`` churn_band_high
    and churn_band_medium)."""
    return "high" if p >= high else "medium" if p >= medium else "low"


def _clv(ws: Workspace, as_of: pd.Timestamp) -> pd.Series | None:
    """CLV per customer over the workspace's horizon ([analysis] clv_horizon_months) from BG/NBD + Gamma-Gamma fitted on the orders before
    ``as_of`` (so a score never depends on later data); None when they do not fit. The
    models' few parameters are fitted on a seeded sample of at most
    :data:`FIT_SAMPLE_ROWS` customers and applied to all."""
    from retentio.analytics.clv.from_orders import value_customers

    if not ws.is_loaded("orders"):
        return None
    last_day = (as_of - pd.Timedelta(days=1)).date()
    try:
        v = value_customers(ws, calibration_end=last_day, fit_sample=FIT_SAMPLE_ROWS).frame
    except (RetentioError, ValueError, FloatingPointError):
        return None
    return v.set_index(v.customer_id.astype(str)).clv


def score(ws: Workspace, as_of: dt.date | None = None, top: int | None = None,
          with_groups: bool = False, phrases: Phrasebook = ENGLISH, *, snapshot: bool = True) -> pd.DataFrame:
    """Per eligible customer at ``as_of``: churn_probability, score, band, value_at_risk,
    reasons (top three, worded by ``phrases``), sorted by probability; the label
    definition, the model version, its training warning (if any) and the snapshot in ``attrs``. With ``with_groups`` also
    ``reason_groups``, the kind of each reason (for counting them).

    English scores are kept as a snapshot in the workspace's store: the same model on the
    same data as of the same day reads it back instead of scoring again, and later steps
    (campaigns, their measurement) read what was decided on that day."""
    registered = _registered(ws)  # read once: the payload holds the whole booster
    model, report = _unpack(registered)
    as_of = pd.Timestamp(as_of) if as_of else data_end(ws)
    if not snapshot or with_groups or phrases is not ENGLISH:
        out = _score(ws, model, report, as_of, top, with_groups, phrases)
        out.attrs["model_warning"] = report.get("warning")
        return out
    from retentio.data.store.registry import find_snapshot, save_snapshot, snapshot_scores

    fingerprint = ws.data_fingerprint()
    found = find_snapshot(ws.store, registered, as_of.date(), fingerprint)
    if found is not None:
        out = snapshot_scores(ws.store, found)
        out.attrs.update(found.facts)
        reused = True
    else:
        out = _score(ws, model, report, as_of, None, False, ENGLISH)
        facts = {k: out.attrs[k] for k in ("label", "as_of", "value_basis") if k in out.attrs}
        try:
            found = save_snapshot(ws.store, registered, as_of.date(), fingerprint, facts, out)
        except Exception as exc:  # noqa: BLE001 - a read-only store still gets its scores
            out.attrs["snapshot_error"] = str(exc).splitlines()[0]
        reused = False
    if top:
        out = out.head(top).reset_index(drop=True)
    out.attrs.update({"model_version": registered.version, "snapshot_reused": reused,
                      "model_warning": report.get("warning"),
                      "snapshot_id": found.id if found is not None else None})
    return out


def _score(ws: Workspace, model: AnyChurnModel, report: dict, as_of: pd.Timestamp, top: int | None,
           with_groups: bool, phrases: Phrasebook) -> pd.DataFrame:
    lab = report["label"]
    spec = LabelSpec(lab["kind"], lab["horizon_days"], lab["window_days"], lab.get("event_type"))
    who = eligible(ws, as_of, spec)
    frame = add_p_alive(build_features(ws, as_of)).merge(
        who.to_pandas().astype({"customer_id": str}), on="customer_id", how="inner").sort_values(
        "customer_id", kind="stable").reset_index(drop=True)
    if frame.empty:
        out = pd.DataFrame(columns=["customer_id", "churn_probability", "score", "band", "value_at_risk", "reasons"])
        out.attrs.update({"label": spec.describe(), "as_of": as_of.date().isoformat()})
        return out
    prob = model.predict_proba(frame)
    clv = _clv(ws, as_of)
    if clv is not None:
        value = frame.customer_id.map(clv).fillna(0.0).to_numpy()
        basis = f"{ws.settings.analysis.clv_horizon_months}-month CLV (BG/NBD + Gamma-Gamma)"
    else:
        value = frame["revenue_365"].fillna(0.0).to_numpy() if "revenue_365" in frame else np.zeros(len(frame))
        basis = "revenue of the last 365 days"
    order = np.argsort(-prob, kind="stable")
    if top:
        order = order[:top]
    chosen = frame.iloc[order].reset_index(drop=True)
    p = prob[order]
    reasons, groups = top_reasons(model.contributions(chosen), chosen, with_groups=True, phrases=phrases)
    out = pd.DataFrame({
        "customer_id": chosen.customer_id,
        "churn_probability": p,
        "score": np.round(100 * p).astype(int),
        "band": [band(x, ws.settings.analysis.churn_band_high, ws.settings.analysis.churn_band_medium) for x in p],
        "value_at_risk": np.round(p * value[order], 2),
        "reasons": reasons,
    })
    if with_groups:
        out["reason_groups"] = groups
    out.attrs.update({"label": spec.describe(), "as_of": as_of.date().isoformat(), "value_basis": basis})
    return out


__all__ = ["BANDS", "CutoffPlan", "choose", "data_end", "data_start", "weakness", "feature_columns", "load", "plan", "save", "score", "train"]
