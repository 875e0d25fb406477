"""How good a churn score is: discrimination, calibration and usefulness at the top.

* ROC-AUC and PR-AUC (average precision) — scikit-learn's definitions;
* Brier score — mean squared error of the probabilities (Brier 1950);
* top-decile lift — churn rate among the 10 % highest scores over the overall rate (the
  classic churn-modelling measure, Neslin et al. 2006, "Defection detection");
* calibration table — customers in ten equal-width probability bins: mean predicted
  against observed churn rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) == 0 or y.mean() == 0:
        return float("nan")
    k = max(int(np.ceil(len(y) * 0.1)), 1)
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            rows.append({"bin": f"{edges[b]:.1f}–{edges[b + 1]:.1f}", "customers": int(sel.sum()),
                         "predicted": float(p[sel].mean()), "observed": float(y[sel].mean())})
    return rows


def safe_auc(y, s) -> float:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    s = np.nan_to_num(np.asarray(s, float), nan=np.nanmax(np.asarray(s, float)) if np.isfinite(s).any() else 0.0)
    return float(roc_auc_score(y, s))


def scores(y: np.ndarray, p: np.ndarray) -> dict:
    """roc_auc, pr_auc, brier, top_decile_lift, positive_rate, n."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    two = len(np.unique(y)) == 2
    return {
        "roc_auc": safe_auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if two else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "top_decile_lift": top_decile_lift(y, p),
        "positive_rate": float(y.mean()) if len(y) else float("nan"),
        "n": int(len(y)),
    }


def baseline_auc(y: np.ndarray, recency: pd.Series | np.ndarray) -> float:
    """ROC-AUC of 'longer since the last activity = more likely to leave' (missing = longest)."""
    return safe_auc(y, recency)


__all__ = ["baseline_auc", "calibration_table", "safe_auc", "scores", "top_decile_lift"]
