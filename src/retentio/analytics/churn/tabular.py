"""Churn from a snapshot: one row per customer, a churn column, no timestamps (the
telecom-style tables many companies hold). The same LightGBM model, evaluated by 5-fold
stratified cross-validation (out-of-fold predictions pooled), beside a logistic
regression and the best single column as baselines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retentio.analytics.churn.evaluate import baseline_auc, calibration_table, scores
from retentio.analytics.churn.model import ChurnModel, logistic_baseline
from retentio.data.errors import RetentioError

_TRUE = {"1", "yes", "y", "true", "t", "churn", "churned"}
_FALSE = {"0", "no", "n", "false", "f", "stay", "stayed", "retained"}


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise RetentioError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, sep=None, engine="python")
    if df.empty:
        raise RetentioError(f"{path}: the file holds no rows")
    return df


def binary_label(df: pd.DataFrame, label: str, source: str) -> np.ndarray:
    if label not in df.columns:
        raise RetentioError(f"{source}: no column {label!r}; the columns are: {', '.join(map(str, df.columns))}")
    raw = df[label]
    text = raw.astype("string").str.strip().str.lower()
    y = pd.Series(np.where(text.isin(_TRUE), 1, np.where(text.isin(_FALSE), 0, -1)), index=df.index)
    bad = (y < 0) | raw.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise RetentioError(f"{source}, line {i + 2}, column {label!r}: {raw.iloc[i]!r} is not a churn flag "
                            "(expected 1/0, yes/no or true/false)")
    if y.nunique() < 2:
        raise RetentioError(f"{source}: column {label!r} holds only one class")
    return y.to_numpy()


def prepare(df: pd.DataFrame, label: str) -> pd.DataFrame:
    """Features: every column but the label and identifier-like columns (text unique per
    row); numbers stored as text (e.g. ' ' for missing) become numbers."""
    X = df.drop(columns=[label])
    keep = {}
    for c in X.columns:
        col = X[c]
        if not pd.api.types.is_numeric_dtype(col):
            num = pd.to_numeric(col.astype("string").str.strip().replace("", pd.NA), errors="coerce")
            if num.notna().sum() >= 0.95 * col.notna().sum() and num.notna().any():
                col = num.astype("float64")
            elif col.nunique(dropna=True) > 0.5 * len(col):
                continue  # an identifier, not a feature
            else:
                col = col.astype("string")
        keep[c] = col
    return pd.DataFrame(keep, index=df.index)


def cross_validate(path: str | Path, label: str, *, folds: int = 5, seed: int = 0, threads: int = 1) -> dict:
    """The churn train report for a snapshot table, from stratified k-fold CV."""
    from sklearn.model_selection import StratifiedKFold

    source = str(path)
    df = read_table(path)
    y = binary_label(df, label, source)
    X = prepare(df, label)
    if X.shape[1] == 0:
        raise RetentioError(f"{source}: no feature columns besides {label!r}")
    oof, oof_lr = np.zeros(len(y)), np.zeros(len(y))
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        Xt, yt = X.iloc[train_idx], y[train_idx]
        # the fold's own hold-out of 20 % (stratified by position) stops the boosting and calibrates
        inner = np.random.default_rng(seed).random(len(train_idx)) < 0.2
        model = ChurnModel(seed=seed, threads=threads).fit(Xt[~inner], yt[~inner], Xt[inner], yt[inner])
        oof[test_idx] = model.predict_proba(X.iloc[test_idx])
        oof_lr[test_idx] = logistic_baseline(Xt, yt, X.iloc[test_idx], seed)
    res = scores(y, oof)
    best = max((abs(baseline_auc(y, X[c]) - 0.5) + 0.5, c) for c in X.columns
               if pd.api.types.is_numeric_dtype(X[c]) and X[c].notna().any()) if any(
        pd.api.types.is_numeric_dtype(X[c]) for c in X.columns) else (float("nan"), None)
    return {
        "roc_auc": res["roc_auc"], "pr_auc": res["pr_auc"], "brier": res["brier"],
        "top_decile_lift": res["top_decile_lift"], "baseline_roc_auc": best[0],
        "logistic_roc_auc": scores(y, oof_lr)["roc_auc"], "n_train": int(len(y) * (folds - 1) / folds),
        "n_test": int(len(y)), "positive_rate": res["positive_rate"],
        "label": {"kind": "table", "column": label, "source": source,
                  "definition": f"the {label!r} column of {Path(source).name} ({folds}-fold stratified CV)",
                  "baseline": f"best single column: {best[1]}"},
        "calibration": calibration_table(y, oof),
    }


__all__ = ["cross_validate", "prepare", "read_table"]
