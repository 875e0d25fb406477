"""The churn classifier: gradient-boosted trees with calibrated probabilities, and the
two baselines it must beat.

* :class:`ChurnModel` — LightGBM (Ke et al. 2017, "LightGBM: a highly efficient gradient
  boosting decision tree"), deterministic for a seed and thread count, with native
  categorical and missing-value handling; early stopping and isotonic calibration
  (Zadrozny & Elkan 2002) on a *later* slice than the training data, so the probability
  means what it says out of time. ``contributions`` are LightGBM's per-row SHAP values
  (``pred_contrib``, Lundberg et al. 2020) in log-odds.
* :func:`logistic_baseline` — scikit-learn logistic regression on median-imputed,
  standardised numeric features and one-hot categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from retentio.data.errors import NotFitted, RetentioError


class ChurnModel(BaseEstimator):
    """Binary churn classifier: gradient-boosted trees with isotonic calibration and SHAP
    reasons (a scikit-learn estimator: ``clone``, ``get_params``; ``fit(X, y, X_cal, y_cal)``
    returns self).

    Parameters
    ----------
    n_estimators : int, default 300
        Most boosting rounds; early stopping on the calibration slice usually ends sooner.
    learning_rate : float, default 0.15
        Shrinkage of each tree.
    num_leaves : int, default 15
        Leaves per tree.
    min_child_samples : int, default 40
        Fewest customers in a leaf.
    max_depth : int, default 5
        Deepest tree.
    min_delta : float, default 1e-4
        Fall of the calibration log-loss that counts as progress for early stopping.
    seed : int, default 0
        Seed of bagging and feature sampling (results are deterministic per thread count).
    threads : int, default 1
        LightGBM threads.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The trained trees, stopped at the best calibration round.
    features_ : list[str]
        The feature columns, in the order the trees read them.
    categories_ : dict[str, list[str]]
        The categories of each categorical feature, as seen in training.
    calibration_ : dict or None
        The Laplace-corrected isotonic map from raw scores to probabilities, as its knots
        ``{"x": [...], "y": [...]}`` (None when fitted without a calibration slice).

    References
    ----------
    Ke, G. et al. (2017). "LightGBM: a highly efficient gradient boosting decision tree".
    *NeurIPS* 30. Zadrozny, B. & Elkan, C. (2002). "Transforming classifier scores into
    accurate multiclass probability estimates". *KDD* (isotonic calibration). Lundberg, S. M.
    et al. (2020). "From local explanations to global understanding with explainable AI for
    trees". *Nature Machine Intelligence* 2, 56–67 (TreeSHAP contributions).
    """

    #: Defaults chosen for explainability at scale: shallow trees (15 leaves, depth ≤ 5) and a
    #: learning rate of 0.15 with early stopping give the same out-of-time AUC as 31-leaf trees at
    #: 0.05 (demo: 0.770 against 0.771; 250k customers: 0.970 against 0.970) with about a tenth
    #: of the TreeSHAP cost, which grows with trees × leaves × depth². Early stopping counts a
    #: round as progress only when the calibration log-loss falls by ``min_delta`` (1e-4): on
    #: large data the loss keeps creeping down by less, and each further tree costs every
    #: scored customer SHAP time — at 1M customers 50 trees instead of 214, out-of-time AUC
    #: 0.9707 against 0.9708; on the demo the stop is unchanged (about 20 trees).
    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.15, num_leaves: int = 15,
                 min_child_samples: int = 40, max_depth: int = 5, min_delta: float = 1e-4, seed: int = 0,
                 threads: int = 1):
        self.n_estimators = n_estimators
        self.min_delta = min_delta
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed
        self.threads = threads

    def _params(self) -> dict:
        return {
            "objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "max_depth": self.max_depth, "feature_fraction": 0.9, "bagging_fraction": 0.9,
            "bagging_freq": 1, "lambda_l2": 1.0, "seed": self.seed, "deterministic": True,
            "force_col_wise": True, "num_threads": self.threads, "verbosity": -1,
        }

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=X.index)
        for f in self.features_:
            if f in self.categories_:
                out[f] = pd.Categorical(X[f].astype("string") if f in X else None, categories=self.categories_[f])
            else:
                out[f] = pd.to_numeric(X[f], errors="coerce").astype("float64") if f in X else np.nan
        return out

    def fit(self, X: pd.DataFrame, y, X_cal: pd.DataFrame | None = None, y_cal=None) -> ChurnModel:
        import lightgbm as lgb

        y = np.asarray(y, int)
        if len(np.unique(y)) < 2:
            raise RetentioError("the training data hold only one class: every eligible customer churned, "
                                "or none did — widen the data or change the horizon")
        self.features_ = list(X.columns)
        self.categories_ = {c: sorted(X[c].dropna().astype(str).unique().tolist())
                            for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])}
        train = lgb.Dataset(self._frame(X), y, categorical_feature=list(self.categories_) or "auto",
                            free_raw_data=False)
        callbacks, valid = [], []
        if X_cal is not None and len(np.unique(y_cal)) == 2:
            valid = [lgb.Dataset(self._frame(X_cal), np.asarray(y_cal, int), reference=train)]
            callbacks = [lgb.early_stopping(40, verbose=False, min_delta=self.min_delta)]
        self.booster_ = lgb.train(self._params(), train, num_boost_round=self.n_estimators,
                                  valid_sets=valid, callbacks=callbacks)
        self.calibration_ = None
        if X_cal is not None and len(np.unique(y_cal)) == 2:
            self.calibration_ = _smoothed_isotonic(self.predict_raw(X_cal), np.asarray(y_cal, float))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFitted(self)

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        return self.booster_.predict(self._frame(X), num_iteration=self.booster_.best_iteration or None)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(churn) per row (isotonic map of the raw score)."""
        raw = self.predict_raw(X)
        if not self.calibration_:
            return raw
        return np.interp(raw, self.calibration_["x"], self.calibration_["y"])

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row, per-feature contributions to the raw log-odds (SHAP values)."""
        self._check_fitted()
        c = self.booster_.predict(self._frame(X), pred_contrib=True,
                                  num_iteration=self.booster_.best_iteration or None)
        return pd.DataFrame(c[:, :-1], columns=self.features_, index=X.index)

    def importance(self) -> dict[str, float]:
        gain = self.booster_.feature_importance("gain")
        return dict(sorted(zip(self.features_, (gain / max(gain.sum(), 1e-12)).tolist()), key=lambda kv: -kv[1]))

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {"params": {k: getattr(self, k) for k in ("n_estimators", "learning_rate", "num_leaves",
                                                          "min_child_samples", "max_depth", "min_delta", "seed",
                                                          "threads")},
                "features": self.features_, "categories": self.categories_, "calibration": self.calibration_,
                "best_iteration": int(self.booster_.best_iteration or 0),
                "booster": self.booster_.model_to_string()}

    @classmethod
    def from_dict(cls, d: dict) -> ChurnModel:
        import lightgbm as lgb

        m = cls(**d["params"])
        m.features_, m.categories_, m.calibration_ = d["features"], d["categories"], d["calibration"]
        m.booster_ = lgb.Booster(model_str=d["booster"])
        m.booster_.best_iteration = d.get("best_iteration", 0)
        return m


def _smoothed_isotonic(raw: np.ndarray, y: np.ndarray) -> dict:
    """The isotonic map raw score → P(churn) (Zadrozny & Elkan 2002) with each block's
    frequency Laplace-corrected to (k + 1) / (n + 2) (Zadrozny & Elkan 2001, "Obtaining
    calibrated probability estimates from decision trees and naive Bayesian classifiers").

    Plain isotonic regression gives its top block the raw frequency: 38 of 38 churned in
    the calibration slice becomes a probability of exactly 1, which no later slice
    bears out. The corrected block values are pooled once more (weighted isotonic fit)
    where the correction broke their order. Returns the map's knots {"x", "y"}."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    block = np.unique(iso.predict(raw), return_inverse=True)[1]
    n = np.bincount(block).astype(float)
    k = np.bincount(block, weights=y)
    target = ((k + 1) / (n + 2))[block]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, target)
    return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}


#: the logistic baseline trains on at most this many rows (a seeded random sample)
LOGISTIC_MAX_ROWS = 300_000


def logistic_baseline(X: pd.DataFrame, y, X_test: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """P(churn) of a logistic regression trained on X, y (sampled to
    :data:`LOGISTIC_MAX_ROWS` rows when larger), for X_test."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if len(X) > LOGISTIC_MAX_ROWS:  # a baseline: a large random sample estimates it as well
        keep = np.random.default_rng(seed).choice(len(X), LOGISTIC_MAX_ROWS, replace=False)
        X, y = X.iloc[keep], np.asarray(y)[keep]
    nums = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    cats = [c for c in X.columns if c not in nums]
    # columns with no values at all carry nothing (and the imputer would drop them)
    nums = [c for c in nums if X[c].notna().any()]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), nums),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore", min_frequency=20)), cats),
    ])

    def prep(df):
        df = df[nums + cats].copy()
        for c in cats:
            df[c] = df[c].astype("object").where(df[c].notna(), "missing")
        for c in nums:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64").clip(-1e9, 1e9)
        return df

    model = make_pipeline(pre, LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    model.fit(prep(X), np.asarray(y, int))
    return model.predict_proba(prep(X_test))[:, 1]


__all__ = ["ChurnModel", "logistic_baseline"]
