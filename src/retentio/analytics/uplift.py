"""Uplift modelling for randomised experiments: who is moved by a treatment, not who
responds anyway. Arrays and frames in, arrays and frames out.

* **Metrics** — the Qini curve, its perfect counterpart, the normalised area between
  them (Qini coefficient) and uplift at k, with scikit-uplift's (sklift 0.5.1)
  definitions, so numbers compare with the literature (Radcliffe 2007). Rows are ranked
  by predicted uplift, descending; the curve has one point per *distinct* score, so
  tied customers enter together (as scikit-learn's ROC curve does). At the top ``n``
  rows with ``n_T`` treated and ``n_C`` control rows and outcome sums ``Y_T``, ``Y_C``:

  ``Q(n) = Y_T(n) − Y_C(n) · n_T(n) / n_C(n)``  (0 for the ratio when ``n_C(n) = 0``),

  the incremental outcome the top ``n`` would have given had they all been treated at
  the treated arm's size. The Qini coefficient is
  ``(AUC_model − AUC_random) / (AUC_perfect − AUC_random)`` with trapezoid areas; the
  random ranking is the straight line from (0, 0) to the curve's last point.
* **Learners** — meta-learners on any base model (Künzel et al. 2019): the T-learner
  fits one outcome model per arm, ``τ(x) = μ₁(x) − μ₀(x)``; the X-learner imputes each
  customer's effect with the *other* arm's model and regresses it, which helps when
  one arm is much smaller or the effect is simpler than the outcome.
* **Model choice** — :func:`fit_uplift` cross-fits every candidate (stratified folds,
  each row predicted by a model that never saw it), scores the out-of-fold predictions
  by Qini coefficient and refits the best on all rows.
* :func:`ate` — the average effect with its confidence interval, from
  :func:`retentio.analytics.experiments.mean_difference` (Welch).

References
----------
Radcliffe, N. J. (2007). "Using control groups to target on predicted lift: building
and assessing uplift models". *Direct Marketing Analytics Journal* 1:14–21.
Künzel, S. R., Sekhon, J. S., Bickel, P. J. & Yu, B. (2019). "Metalearners for
estimating heterogeneous treatment effects using machine learning". *PNAS*
116(10):4156–4165.
Gutierrez, P. & Gérardy, J.-Y. (2017). "Causal inference and uplift modelling: a review
of the literature". *Proceedings of Machine Learning Research* 67:1–13 (PAPIs 2016).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from retentio.analytics.experiments import Effect, mean_difference
from retentio.data.errors import InvalidParameter, NotFitted

#: LightGBM settings of every base model: modest trees, since an arm of an experiment is
#: often a few thousand rows and uplift is a small signal on top of the outcome
LIGHTGBM_PARAMS: dict = {
    "n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 50,
    "deterministic": True, "force_col_wise": True, "verbosity": -1,
}
#: a category with fewer rows at fit gets no column of its own in the linear base (it
#: counts as unseen): rare levels only add noise, and identifier-like text would add a
#: column per row
MIN_CATEGORY_ROWS = 10
#: the fewest rows per arm :func:`fit_uplift` accepts
MIN_ARM_ROWS = 50

_BASES = {"lightgbm": "lightgbm", "linear": "linear", "logistic": "linear"}


# ---------------------------------------------------------------------------- inputs
def _shown(values: np.ndarray, most: int = 5) -> list:
    """Up to ``most`` distinct values, as plain Python objects for a message."""
    return [v.item() if isinstance(v, np.generic) else v for v in pd.unique(pd.Series(values, dtype=object))[:most]]


def _treatment(treatment, n: int | None = None) -> np.ndarray:
    """``treatment`` as 0/1 integers; both arms must be present (as sklift's check)."""
    t = np.asarray(treatment)
    if t.ndim != 1:
        raise InvalidParameter("treatment", f"an array of shape {t.shape}", "one 0/1 value per row")
    if n is not None and len(t) != n:
        raise InvalidParameter("treatment", f"{len(t)} values", f"one per row ({n} rows)")
    try:
        num = t.astype("float64")
    except (TypeError, ValueError):
        raise InvalidParameter("treatment", _shown(t), "0 (control) and 1 (treated) and nothing else") from None
    seen = np.unique(num)
    if not (len(seen) == 2 and seen[0] == 0 and seen[1] == 1):
        raise InvalidParameter("treatment", _shown(t), "both 0 (control) and 1 (treated), and nothing else")
    return num.astype(np.int64)


def _outcome(y, n: int) -> np.ndarray:
    """``y`` as floats: a number for every row."""
    try:
        out = np.asarray(y, dtype="float64")
    except (TypeError, ValueError):
        raise InvalidParameter("y", _shown(np.asarray(y, dtype=object)), "numbers (0/1 or amounts)") from None
    if out.ndim != 1 or len(out) != n:
        raise InvalidParameter("y", f"{out.size} values", f"one number per row ({n} rows)")
    bad = ~np.isfinite(out)
    if bad.any():
        raise InvalidParameter("y", f"{int(bad.sum())} missing or infinite values", "a number for every row")
    return out


def _is_binary(y: np.ndarray) -> bool:
    return bool(np.isin(y, (0.0, 1.0)).all())


def _metric_inputs(y, treatment, uplift=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = _treatment(treatment)
    yy = _outcome(y, len(t))
    if uplift is None:
        return yy, t, np.zeros(len(t))
    u = np.asarray(uplift, dtype="float64")
    if u.ndim != 1 or len(u) != len(t):
        raise InvalidParameter("uplift", f"{u.size} values", f"one score per row ({len(t)} rows)")
    if np.isnan(u).any():
        raise InvalidParameter("uplift", f"{int(np.isnan(u).sum())} missing scores", "a score for every row")
    return yy, t, u


def _area(x: np.ndarray, q: np.ndarray) -> float:
    """Trapezoid area under the points (sklearn's ``auc`` for increasing ``x``; kept
    signed, without its monotonicity check, for sklift's no-negative-effect curve)."""
    x, q = np.asarray(x, dtype="float64"), np.asarray(q, dtype="float64")
    return float(np.sum(np.diff(x) * (q[1:] + q[:-1]) / 2))


# ---------------------------------------------------------------------------- metrics
def qini_curve(y, treatment, uplift) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve of a ranking by predicted uplift (Radcliffe 2007; sklift 0.5.1's
    ``qini_curve(y_true, uplift, treatment)`` — note the argument order here).

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 0/1 (as sklift requires) or amounts (the same formula).
    treatment : array-like of shape (n,)
        1 for treated, 0 for control; both must occur.
    uplift : array-like of shape (n,)
        Predicted uplift; higher means target first.

    Returns
    -------
    x : np.ndarray of int
        Rows targeted, ``0`` then one point per distinct score (ties enter together).
    q : np.ndarray of float
        ``Q(n) = Y_T(n) − Y_C(n) · n_T(n) / n_C(n)`` at each point, starting at 0.
    """
    y, t, u = _metric_inputs(y, treatment, uplift)
    # descending with sklift's tie order (a stable ascending sort, reversed), so uplift_at_k
    # cuts ties exactly where sklift does; the curve itself only keeps the last row of a tie
    order = np.argsort(u, kind="mergesort")[::-1]
    y, t, u = y[order], t[order], u[order]
    y_t = np.where(t == 1, y, 0.0)
    y_c = np.where(t == 0, y, 0.0)
    ends = np.r_[np.flatnonzero(np.diff(u)), u.size - 1]
    n_t = np.cumsum(t, dtype=np.float64)[ends]
    sum_t = np.cumsum(y_t, dtype=np.float64)[ends]
    sum_c = np.cumsum(y_c, dtype=np.float64)[ends]
    n_all = ends + 1
    n_c = n_all - n_t
    q = sum_t - sum_c * np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    # the first point is always at n ≥ 1, so sklift always prepends the origin
    return np.r_[0, n_all], np.r_[0.0, q]


def perfect_qini_curve(y, treatment, negative_effect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The best achievable Qini curve for these outcomes (sklift 0.5.1's definition).

    With ``negative_effect`` the perfect ranking is the Qini curve of the score
    ``y·t − y·(1 − t)``: treated responders first, control responders (whom the treatment
    would have talked out of responding) last, so the curve rises and then falls back.
    Without it, every responder is persuadable: the curve rises at slope 1 to the total
    incremental outcome ``R = Y_T − n_T · Y_C / n_C`` and stays there, points
    ``(0, 0), (R, R), (n, R)``.
    """
    if not isinstance(negative_effect, bool):
        raise InvalidParameter("negative_effect", negative_effect, "True or False")
    y, t, _ = _metric_inputs(y, treatment)
    if negative_effect:
        return qini_curve(y, t, y * t - y * (1 - t))
    treated, control = t == 1, t == 0
    r = y[treated].sum() - treated.sum() * y[control].sum() / control.sum()
    return np.array([0, r, len(y)], dtype="float64"), np.array([0, r, r], dtype="float64")


def qini_auc_score(y, treatment, uplift, negative_effect: bool = True) -> float:
    """The Qini coefficient: area between the model's Qini curve and the random line,
    over the same for the perfect curve (sklift 0.5.1's ``qini_auc_score``).

    ``(AUC_model − AUC_random) / (AUC_perfect − AUC_random)``, trapezoid areas; the
    random line runs from (0, 0) to the perfect curve's last point (the total incremental
    outcome, which every curve ends at). 1 for the perfect ranking, about 0 for a random
    one, negative when the ranking is reversed. Real models score far below 1 with
    ``negative_effect`` — the perfect ranking knows every individual outcome — so compare
    models with it, not against 1. NaN when the perfect curve has no area (e.g. no
    outcomes at all). Continuous outcomes use the same formulas (sklift refuses them).

    References
    ----------
    Radcliffe, N. J. (2007). "Using control groups to target on predicted lift".
    *Direct Marketing Analytics Journal* 1:14–21.
    """
    if not isinstance(negative_effect, bool):
        raise InvalidParameter("negative_effect", negative_effect, "True or False")
    y, t, u = _metric_inputs(y, treatment, uplift)
    x_model, q_model = qini_curve(y, t, u)
    x_best, q_best = perfect_qini_curve(y, t, negative_effect)
    random = _area(np.array([0.0, x_best[-1]]), np.array([0.0, q_best[-1]]))
    best = _area(x_best, q_best) - random
    if best == 0:
        return float("nan")
    return (_area(x_model, q_model) - random) / best


def uplift_at_k(y, treatment, uplift, k: float = 0.3, strategy: str = "overall") -> float:
    """Observed uplift among the rows ranked highest by predicted uplift (sklift 0.5.1).

    ``strategy="overall"``: the top ``int(k·n)`` rows of all (``k`` rows when ``k`` is an
    integer), then mean outcome of the treated among them minus mean of the control.
    ``strategy="by_group"``: the top ``int(k·n_T)`` treated and top ``int(k·n_C)`` control
    rows, each ranked within its arm. NaN when an arm has no row in the top.
    """
    if strategy not in ("overall", "by_group"):
        raise InvalidParameter("strategy", strategy, "'overall' or 'by_group'")
    y, t, u = _metric_inputs(y, treatment, uplift)
    n = len(y)
    kind = np.asarray(k).dtype.kind
    if kind not in ("i", "f") or (kind == "i" and not 0 < k < n) or (kind == "f" and not 0 < k < 1):
        raise InvalidParameter("k", k, f"a share in (0, 1) or a number of rows from 1 to {n - 1}")
    order = np.argsort(u, kind="mergesort")[::-1]
    y, t = y[order], t[order]
    if strategy == "overall":
        size = int(n * k) if kind == "f" else int(k)
        top_y, top_t = y[:size], t[:size]
        treated, control = top_y[top_t == 1], top_y[top_t == 0]
    else:
        n_t = int((t == 1).sum() * k) if kind == "f" else int(k)
        n_c = int((t == 0).sum() * k) if kind == "f" else int(k)
        if n_t > (t == 1).sum() or n_c > (t == 0).sum():
            raise InvalidParameter("k", k, "no more rows than each arm holds")
        treated, control = y[t == 1][:n_t], y[t == 0][:n_c]
    if not len(treated) or not len(control):
        return float("nan")
    return float(treated.mean() - control.mean())


def ate(y, treatment) -> Effect:
    """The average treatment effect of a randomised experiment with its 95 % interval:
    Welch's difference of the arms' means (see :mod:`retentio.analytics.experiments`).

    Returns the :class:`~retentio.analytics.experiments.Effect` of
    :func:`~retentio.analytics.experiments.mean_difference`: ``per_customer`` is the
    estimate, ``per_customer_low``/``per_customer_high`` the interval, with ``se`` and
    ``p_value``.
    """
    t = _treatment(treatment)
    yy = _outcome(y, len(t))
    return mean_difference(yy[t == 1], yy[t == 0])


# ---------------------------------------------------------------------------- features
def feature_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """A user's table as model input, one column per column, same index.

    * numbers → float64 (missing stays NaN);
    * booleans (also ``True``/``False`` objects) → 0/1;
    * datetimes → days since 1970-01-01 (time zones converted to UTC first), timedeltas
      → days, so a date is a number the trees can split and the linear base can weigh;
    * text and other objects → pandas ``category`` (LightGBM splits categories natively;
      the linear base one-hot encodes them with the levels seen at fit).

    Idempotent: a frame it returned comes back unchanged.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameter("X", type(frame).__name__, "a pandas DataFrame of features")
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()].tolist()
        raise InvalidParameter("X", f"columns {dup[:5]} named twice", "distinct column names")
    out = {}
    for name in frame.columns:
        col = frame[name]
        dtype = col.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            out[name] = col
        elif pd.api.types.is_bool_dtype(dtype):
            out[name] = col.astype("float64")  # nullable booleans: <NA> → NaN
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            if getattr(dtype, "tz", None) is not None:
                col = col.dt.tz_convert("UTC").dt.tz_localize(None)
            out[name] = (col - pd.Timestamp(0)) / pd.Timedelta(days=1)
        elif pd.api.types.is_timedelta64_dtype(dtype):
            out[name] = col / pd.Timedelta(days=1)
        elif pd.api.types.is_numeric_dtype(dtype):
            out[name] = col.astype("float64")
        else:
            present = col.dropna()
            if len(present) and present.map(lambda v: isinstance(v, bool | np.bool_)).all():
                out[name] = col.map({True: 1.0, False: 0.0}).astype("float64")
            else:  # text as text: 1 and "1" in one object column are one level
                out[name] = col.astype("string").astype("category")
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _as_frame(X, columns: list | None = None) -> pd.DataFrame:
    """A table as a frame; an array's columns are ``columns`` (those of fit) when their
    number matches, else ``x0, x1, …``."""
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise InvalidParameter("X", f"an array of shape {arr.shape}", "a table: one row per customer")
    if columns is None or len(columns) != arr.shape[1]:
        columns = [f"x{i}" for i in range(arr.shape[1])]
    # an object array (mixed columns) holds numbers and dates as objects: give them their types back
    return pd.DataFrame(arr, columns=columns).infer_objects()


# ---------------------------------------------------------------------------- learners
class _UpliftLearner(BaseEstimator):
    """What the meta-learners share: the base model, and turning a table into its input."""

    base: str
    random_state: int
    threads: int

    # -- input ---------------------------------------------------------------------
    def _base(self) -> str:
        if self.base not in _BASES:
            raise InvalidParameter("base", self.base, "'lightgbm' or 'linear'")
        return _BASES[self.base]

    def _learn_design(self, X) -> np.ndarray | pd.DataFrame:
        """Remember the columns (and, for the linear base, medians, scales and the
        one-hot levels) of the training table; return its design."""
        X = feature_matrix(_as_frame(X))
        self.features_ = list(X.columns)
        cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        if self._base() == "lightgbm":
            self.categories_ = {c: X[c].cat.remove_unused_categories().cat.categories.tolist() for c in cats}
        else:
            counts = {c: X[c].value_counts() for c in cats}
            self.categories_ = {c: counts[c][counts[c] >= MIN_CATEGORY_ROWS].index.tolist() for c in cats}
            nums = [c for c in X.columns if c not in self.categories_]
            med = X[nums].median() if nums else pd.Series(dtype="float64")
            # an all-missing column has no median: impute 0, a constant the model ignores
            self.medians_ = med.fillna(0.0).to_dict()
            self.indicators_ = [c for c in nums if X[c].isna().any()]
            filled = X[nums].fillna(self.medians_)
            self.centers_ = filled.mean().to_dict()
            self.scales_ = filled.std(ddof=0).replace(0.0, 1.0).fillna(1.0).to_dict()
        return self._design(X)

    def _design(self, X) -> np.ndarray | pd.DataFrame:
        """The model input of any table with (a superset of) the training columns:
        a frame with positional names (LightGBM refuses some characters in names) or,
        for the linear base, the standardised numeric and one-hot matrix."""
        X = feature_matrix(_as_frame(X, self.features_))
        cols = {}
        for i, f in enumerate(self.features_):
            col = X[f] if f in X.columns else pd.Series(np.nan, index=X.index)
            if f in self.categories_:
                # the levels of fit, in fit's order: an unseen level is missing
                codes = pd.Index(self.categories_[f], dtype=object).get_indexer(col.astype(object))
                cols[f"f{i}"] = pd.Categorical.from_codes(codes, categories=self.categories_[f])
            else:
                cols[f"f{i}"] = pd.to_numeric(col, errors="coerce").astype("float64")
        frame = pd.DataFrame(cols, index=X.index)
        if self._base() == "lightgbm":
            return frame
        parts = []
        for i, f in enumerate(self.features_):
            col = frame[f"f{i}"]
            if f in self.categories_:
                codes = np.asarray(col.cat.codes)
                onehot = np.zeros((len(frame), len(self.categories_[f])))
                seen = codes >= 0
                onehot[np.flatnonzero(seen), codes[seen]] = 1.0
                parts.append(onehot)
            else:
                filled = col.fillna(self.medians_[f]).to_numpy()
                parts.append(((filled - self.centers_[f]) / self.scales_[f])[:, None])
                if f in self.indicators_:
                    parts.append(col.isna().to_numpy(dtype="float64")[:, None])
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))

    # -- models --------------------------------------------------------------------
    def _model(self, binary: bool):
        """An unfitted base model: a classifier of P(y = 1) for a 0/1 outcome, else a
        regressor of E[y]."""
        if self._base() == "lightgbm":
            import lightgbm as lgb

            cls = lgb.LGBMClassifier if binary else lgb.LGBMRegressor
            return cls(**LIGHTGBM_PARAMS, random_state=self.random_state, n_jobs=self.threads)
        if binary:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=1.0, max_iter=2000)
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0)

    @staticmethod
    def _mean(model, design, binary: bool) -> np.ndarray:
        if binary:
            return np.asarray(model.predict_proba(design)[:, 1], dtype="float64")
        return np.asarray(model.predict(design), dtype="float64")

    def _arms(self, X, y, treatment):
        """Checked inputs: the design, outcomes, 0/1 treatment, outcome kind."""
        t = _treatment(treatment)
        yy = _outcome(y, len(t))
        X = _as_frame(X)
        if len(X) != len(t):
            raise InvalidParameter("X", f"{len(X)} rows", f"one row per treatment value ({len(t)})")
        binary = _is_binary(yy)
        if binary:
            for arm, flag in (("treated", 1), ("control", 0)):
                values = np.unique(yy[t == flag])
                if len(values) < 2:
                    raise InvalidParameter("y", f"only {values[0]:g} in the {arm} arm",
                                           "both outcomes (0 and 1) in each arm")
        design = self._learn_design(X)
        return design, yy, t, binary

    def _check_fitted(self) -> None:
        if not hasattr(self, "outcome_"):
            raise NotFitted(self)

    def _take(self, design, rows: np.ndarray):
        return design.iloc[rows] if isinstance(design, pd.DataFrame) else design[rows]


class TLearner(_UpliftLearner):
    """Two-model uplift: one outcome model per arm, ``τ(x) = μ₁(x) − μ₀(x)``.

    ``μ_a(x) = E[Y | X = x, T = a]`` is fitted on arm ``a`` alone: P(y = 1) by a
    classifier for a 0/1 outcome, E[y] by a regressor otherwise. Simple and unbiased in
    a randomised experiment; its weakness is that each model fits the whole outcome,
    so the small difference between them carries both models' errors (Künzel et al.
    2019, "T-learner"; Gutierrez & Gérardy 2017, "two-model approach").

    Parameters
    ----------
    base : {"lightgbm", "linear"}, default "lightgbm"
        LightGBM trees (native categories and missing values), or a linear model on
        median-imputed, standardised numbers and one-hot categories: logistic regression
        for a 0/1 outcome, ridge regression otherwise. ``"logistic"`` is an alias of
        ``"linear"``.
    random_state : int, default 0
        Seed of LightGBM (results are deterministic per seed and thread count).
    threads : int, default 1
        LightGBM threads.

    Attributes
    ----------
    outcome_ : {"binary", "continuous"}
        The outcome kind seen at fit (binary when every value is 0 or 1).
    control_model_, treated_model_ : estimator
        ``μ₀`` and ``μ₁``.
    features_ : list
        The feature columns of fit.
    categories_ : dict
        The levels of each categorical feature kept at fit.

    References
    ----------
    Künzel, S. R. et al. (2019). "Metalearners for estimating heterogeneous treatment
    effects using machine learning". *PNAS* 116(10):4156–4165.
    """

    def __init__(self, base: str = "lightgbm", random_state: int = 0, threads: int = 1):
        self.base = base
        self.random_state = random_state
        self.threads = threads

    def fit(self, X, y, treatment) -> TLearner:
        design, yy, t, binary = self._arms(X, y, treatment)
        treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
        self.control_model_ = self._model(binary).fit(self._take(design, control), yy[control])
        self.treated_model_ = self._model(binary).fit(self._take(design, treated), yy[treated])
        self.outcome_ = "binary" if binary else "continuous"
        return self

    def predict_outcomes(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``(μ₀(x), μ₁(x))``: the expected outcome of each row untreated and treated."""
        self._check_fitted()
        design = self._design(X)
        binary = self.outcome_ == "binary"
        return self._mean(self.control_model_, design, binary), self._mean(self.treated_model_, design, binary)

    def predict(self, X) -> np.ndarray:
        """Predicted uplift ``μ₁(x) − μ₀(x)`` per row (a 1-d float array)."""
        mu0, mu1 = self.predict_outcomes(X)
        return mu1 - mu0


class XLearner(_UpliftLearner):
    """The X-learner of Künzel et al. (2019): impute each customer's effect with the
    other arm's outcome model, then regress the imputed effects.

    1. Outcome models ``μ₀`` on control, ``μ₁`` on treated (as :class:`TLearner`).
    2. Imputed effects: ``D₁ = Y₁ − μ₀(X₁)`` for the treated, ``D₀ = μ₁(X₀) − Y₀`` for
       the control (each from the model of the arm the row is not in).
    3. Effect models: regress ``D₁`` on ``X₁`` → ``τ₁``, ``D₀`` on ``X₀`` → ``τ₀``.
    4. ``τ(x) = g · τ₀(x) + (1 − g) · τ₁(x)`` with ``g`` the propensity (the chance of
       treatment). ``τ₁`` rests on ``μ₀``, fitted on the control arm, so it is the better
       estimate when the control arm is the larger one (``g`` small) and gets the weight
       ``1 − g`` — the paper's choice of ``g = e(x)``.

    In a randomised experiment the propensity is known — the share assigned to
    treatment — so it is a parameter here, never estimated.

    Parameters
    ----------
    base : {"lightgbm", "linear"}, default "lightgbm"
        As :class:`TLearner`; the effect models are always regressors (LightGBM or
        ridge), the imputed effects being real numbers.
    propensity : float, default 0.5
        ``g``: the randomisation share of treated, in (0, 1).
    random_state : int, default 0
    threads : int, default 1

    Attributes
    ----------
    outcome_ : {"binary", "continuous"}
    control_model_, treated_model_ : estimator
        ``μ₀``, ``μ₁``.
    control_effect_model_, treated_effect_model_ : estimator
        ``τ₀`` (fitted on control rows), ``τ₁`` (fitted on treated rows).
    features_, categories_
        As :class:`TLearner`.

    References
    ----------
    Künzel, S. R., Sekhon, J. S., Bickel, P. J. & Yu, B. (2019). "Metalearners for
    estimating heterogeneous treatment effects using machine learning". *PNAS*
    116(10):4156–4165.
    """

    def __init__(self, base: str = "lightgbm", propensity: float = 0.5, random_state: int = 0, threads: int = 1):
        self.base = base
        self.propensity = propensity
        self.random_state = random_state
        self.threads = threads

    def fit(self, X, y, treatment) -> XLearner:
        if not 0 < float(self.propensity) < 1:
            raise InvalidParameter("propensity", self.propensity, "the share of treated, between 0 and 1")
        design, yy, t, binary = self._arms(X, y, treatment)
        treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
        x1, x0 = self._take(design, treated), self._take(design, control)
        self.control_model_ = self._model(binary).fit(x0, yy[control])
        self.treated_model_ = self._model(binary).fit(x1, yy[treated])
        d1 = yy[treated] - self._mean(self.control_model_, x1, binary)
        d0 = self._mean(self.treated_model_, x0, binary) - yy[control]
        self.treated_effect_model_ = self._model(False).fit(x1, d1)
        self.control_effect_model_ = self._model(False).fit(x0, d0)
        self.outcome_ = "binary" if binary else "continuous"
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted uplift ``g·τ₀(x) + (1 − g)·τ₁(x)`` per row (a 1-d float array)."""
        self._check_fitted()
        design = self._design(X)
        g = float(self.propensity)
        tau0 = self._mean(self.control_effect_model_, design, False)
        tau1 = self._mean(self.treated_effect_model_, design, False)
        return g * tau0 + (1 - g) * tau1


# ---------------------------------------------------------------------------- choice
@dataclass
class UpliftFit:
    """The chosen uplift model and the cross-fitted evidence for it.

    ``scores`` are Qini coefficients (:func:`qini_auc_score`) of each candidate's
    out-of-fold predictions; ``oof`` is the chosen candidate's out-of-fold uplift per row
    in input order (each from a model that never saw the row) — the honest predictions
    for evaluating it, where ``model.predict`` on the training rows would be optimistic.
    """

    model: BaseEstimator
    name: str
    scores: dict[str, float]
    oof: np.ndarray
    oof_all: dict[str, np.ndarray]
    n_treated: int
    n_control: int
    #: ``g`` given to the X-learners: the randomisation share of treated
    propensity: float
    folds: int


def default_candidates(propensity: float = 0.5, random_state: int = 0, threads: int = 1) -> dict[str, BaseEstimator]:
    """T- and X-learner, each on LightGBM and on the linear base."""
    return {
        "t_lightgbm": TLearner("lightgbm", random_state=random_state, threads=threads),
        "t_linear": TLearner("linear", random_state=random_state, threads=threads),
        "x_lightgbm": XLearner("lightgbm", propensity=propensity, random_state=random_state, threads=threads),
        "x_linear": XLearner("linear", propensity=propensity, random_state=random_state, threads=threads),
    }


def _named(candidates: Mapping[str, BaseEstimator] | Sequence[BaseEstimator]) -> dict[str, BaseEstimator]:
    if isinstance(candidates, Mapping):
        named = dict(candidates)
    else:
        named = {}
        for est in candidates:
            name = type(est).__name__ + (f"/{est.base}" if hasattr(est, "base") else "")
            k, unique = 2, name
            while unique in named:
                unique, k = f"{name}#{k}", k + 1
            named[unique] = est
    if not named:
        raise InvalidParameter("candidates", [], "at least one uplift learner")
    return named


def fit_uplift(X, y, treatment, *, propensity: float | None = None,
               candidates: Mapping[str, BaseEstimator] | Sequence[BaseEstimator] | None = None,
               folds: int = 5, random_state: int = 0,
               progress: Callable[[str], None] | None = None) -> UpliftFit:
    """Choose an uplift model by cross-fitted Qini and fit it on all rows.

    Rows are split into ``folds`` folds stratified on (treatment, y > 0), so every fold
    keeps the arms' split and each arm's responders. Every candidate is fitted on all
    folds but one and predicts the held-out fold: each row's out-of-fold uplift comes
    from a model that never saw it. The candidate whose out-of-fold predictions have the
    highest Qini coefficient (:func:`qini_auc_score`; ties go to the earlier candidate)
    is refitted on all rows.

    Parameters
    ----------
    X : DataFrame or 2-d array
        Features, made model input by :func:`feature_matrix`.
    y : array-like
        Outcome: 0/1 (classifiers) or an amount such as revenue (regressors).
    treatment : array-like
        1 treated, 0 control.
    propensity : float, optional
        Randomisation share of treated, given to every candidate that has a
        ``propensity`` parameter (the X-learners). Default: the observed treated share,
        which is what a randomisation with that split gives up to sampling noise.
    candidates : mapping name → learner, or a list of learners, optional
        Default :func:`default_candidates` (T- and X-learner on LightGBM and linear bases).
        A learner needs ``fit(X, y, treatment)`` and ``predict(X)`` and is cloned per fold.
    folds : int, default 5
    random_state : int, default 0
        Seed of the fold split (and of the default candidates).
    progress : callable, optional
        Hears a message before each fit.

    Raises
    ------
    InvalidParameter
        Treatment not 0/1 with both values; an arm under 50 rows; for a 0/1 outcome,
        an arm with fewer than ``2 × folds`` positive outcomes (a fold would train on an
        arm without them).
    """
    from sklearn.model_selection import StratifiedKFold

    say = progress or (lambda _m: None)
    t = _treatment(treatment)
    yy = _outcome(y, len(t))
    frame = feature_matrix(_as_frame(X))
    if len(frame) != len(t):
        raise InvalidParameter("X", f"{len(frame)} rows", f"one row per treatment value ({len(t)})")
    if not isinstance(folds, int | np.integer) or folds < 2:
        raise InvalidParameter("folds", folds, "an integer of 2 or more")
    n_treated, n_control = int((t == 1).sum()), int((t == 0).sum())
    for arm, count in (("treated", n_treated), ("control", n_control)):
        if count < MIN_ARM_ROWS:
            raise InvalidParameter("treatment", f"{count} {arm} rows ({n_treated} treated, {n_control} control)",
                                   f"at least {MIN_ARM_ROWS} rows in each arm")
    binary = _is_binary(yy)
    if binary:
        for arm, flag in (("treated", 1), ("control", 0)):
            positives = int(yy[t == flag].sum())
            negatives = int((t == flag).sum()) - positives
            if min(positives, negatives) < 2 * folds:
                raise InvalidParameter(
                    "y", f"{positives} positive and {negatives} negative outcomes among {int((t == flag).sum())} {arm} rows",
                    f"at least {2 * folds} of each in each arm for {folds}-fold cross-fitting")
    g = n_treated / len(t) if propensity is None else float(propensity)
    if not 0 < g < 1:
        raise InvalidParameter("propensity", propensity, "the share of treated, between 0 and 1")
    named = default_candidates(g, random_state) if candidates is None else _named(candidates)
    named = {n: clone(est).set_params(propensity=g) if "propensity" in est.get_params() else clone(est)
             for n, est in named.items()}

    strata = t * 2 + (yy > 0)
    if np.unique(strata, return_counts=True)[1].min() < folds:
        strata = t  # a stratum too small to spread over the folds: keep just the arms' split
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
                  .split(np.zeros(len(t)), strata))
    oof_all: dict[str, np.ndarray] = {}
    scores: dict[str, float] = {}
    for name, est in named.items():
        oof = np.full(len(t), np.nan)
        for k, (train, test) in enumerate(splits, 1):
            say(f"cross-fitting {name}: fold {k} of {folds}")
            model = clone(est).fit(frame.iloc[train], yy[train], t[train])
            oof[test] = np.asarray(model.predict(frame.iloc[test]), dtype="float64").ravel()
        oof_all[name] = oof
        scores[name] = qini_auc_score(yy, t, oof)
    best = max(scores, key=lambda n: -np.inf if np.isnan(scores[n]) else scores[n])
    say(f"fitting {best} on all rows")
    model = clone(named[best]).fit(frame, yy, t)
    return UpliftFit(model=model, name=best, scores=scores, oof=oof_all[best], oof_all=oof_all,
                     n_treated=n_treated, n_control=n_control, propensity=g, folds=folds)


__all__ = [
    "LIGHTGBM_PARAMS", "TLearner", "UpliftFit", "XLearner", "ate", "default_candidates", "feature_matrix",
    "fit_uplift", "perfect_qini_curve", "qini_auc_score", "qini_curve", "uplift_at_k",
]
