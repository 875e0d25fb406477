"""Uplift modelling: sklift's metrics on a hand-worked example, meta-learners that find
a known heterogeneous effect, and cross-fitting that is genuinely out of fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone

from retentio.analytics.uplift import (
    TLearner,
    XLearner,
    ate,
    feature_matrix,
    fit_uplift,
    perfect_qini_curve,
    qini_auc_score,
    qini_curve,
    uplift_at_k,
)
from retentio.data.errors import InvalidParameter, NotFitted

# ----------------------------------------------------------------------------- metrics
# Eight customers; rows 1 and 2 tie at 0.8.
Y = np.array([1, 0, 1, 1, 0, 1, 1, 0])
T = np.array([1, 1, 0, 1, 0, 1, 0, 0])
U = np.array([0.9, 0.8, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1])
# Worked by hand. Order by uplift, descending; sklift reverses a stable ascending sort, so
# the tie comes out as row 2 before row 1: rows 0, 2, 1, 3, 4, 5, 6, 7. One point per
# distinct score, Q(n) = Y_T − Y_C · n_T / n_C (ratio 0 when n_C = 0):
#   n=1 {0}:        n_T=1 Y_T=1, n_C=0 Y_C=0  → 1
#   n=3 {0,2,1}:    n_T=2 Y_T=1, n_C=1 Y_C=1  → 1 − 1·2/1 = −1
#   n=4 +3 (T,1):   n_T=3 Y_T=2, n_C=1 Y_C=1  → 2 − 3     = −1
#   n=5 +4 (C,0):   n_T=3 Y_T=2, n_C=2 Y_C=1  → 2 − 3/2   = 0.5
#   n=6 +5 (T,1):   n_T=4 Y_T=3, n_C=2 Y_C=1  → 3 − 4/2   = 1
#   n=7 +6 (C,1):   n_T=4 Y_T=3, n_C=3 Y_C=2  → 3 − 8/3   = 1/3
#   n=8 +7 (C,0):   n_T=4 Y_T=3, n_C=4 Y_C=2  → 3 − 2     = 1
HAND_X = [0, 1, 3, 4, 5, 6, 7, 8]
HAND_Q = [0, 1, -1, -1, 0.5, 1, 1 / 3, 1]
# Trapezoids: 0.5 + 0 − 1 − 0.25 + 0.75 + 2/3 + 2/3 = 4/3.
# Perfect curve (negative effects): score y·t − y·(1−t) = [1, 0, −1, 1, 0, 1, −1, 0];
# points n=3 (treated responders 0, 3, 5: Q=3), n=6 (+1, 4, 7, no responders: n_T=4,
# n_C=2, Y_C=0 → 3), n=8 (+ control responders 2, 6: 3 − 2·4/4 = 1).
HAND_PERFECT = ([0, 3, 6, 8], [0, 3, 3, 1])
# Its area 4.5 + 9 + 4 = 17.5; the random line (0,0)–(8,1) has area 4.
# Qini = (4/3 − 4) / (17.5 − 4) = (−8/3) / (27/2) = −16/81.
# Without negative effects: R = 3 − 4·2/4 = 1, points (0,0), (1,1), (8,1), area 7.5:
# Qini = (−8/3) / 3.5 = −16/21.


def test_qini_curve_hand_worked_example_with_a_tie():
    x, q = qini_curve(Y, T, U)
    assert x.tolist() == HAND_X
    np.testing.assert_allclose(q, HAND_Q)
    px, pq = perfect_qini_curve(Y, T)
    assert px.tolist() == HAND_PERFECT[0]
    np.testing.assert_allclose(pq, HAND_PERFECT[1])
    np.testing.assert_allclose(perfect_qini_curve(Y, T, negative_effect=False), [[0, 1, 8], [0, 1, 1]])
    assert qini_auc_score(Y, T, U) == pytest.approx(-16 / 81)
    assert qini_auc_score(Y, T, U, negative_effect=False) == pytest.approx(-16 / 21)


def test_uplift_at_k_hand_worked_example():
    # k=0.5: top int(8·0.5)=4 rows 0, 2, 1, 3 → treated 0,1,3: 2/3; control 2: 1 → −1/3
    assert uplift_at_k(Y, T, U, k=0.5) == pytest.approx(-1 / 3)
    # k=0.3: top int(2.4)=2 rows are 0 and 2 (sklift's tie order): 1 − 1 = 0. The other
    # tie order (0, 1) would leave no control row in the top.
    assert uplift_at_k(Y, T, U, k=0.3) == pytest.approx(0.0)
    assert uplift_at_k(Y, T, U, k=4) == pytest.approx(-1 / 3)
    # by group, k=0.5: treated in order 0, 1 → 1/2; control in order 2, 4 → 1/2
    assert uplift_at_k(Y, T, U, k=0.5, strategy="by_group") == pytest.approx(0.0)
    with pytest.raises(InvalidParameter, match="k"):
        uplift_at_k(Y, T, U, k=1.5)


def _experiment(n=6000, seed=0):
    """A randomised 50/50 experiment: conversion +0.15 in segment a, 0 in b, −0.05 in c."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["a", "b", "c"], n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 0.5).astype(int)
    effect = np.select([segment == "a", segment == "b"], [0.15, 0.0], -0.05)
    y = (rng.random(n) < 0.2 + 0.1 * np.tanh(x1) + t * effect).astype(int)
    return pd.DataFrame({"segment": segment, "x1": x1, "x2": x2}), y, t, effect


def test_qini_is_one_for_the_perfect_ranking_about_zero_at_random_and_negative_reversed():
    _, y, t, _ = _experiment(n=3000, seed=5)
    perfect = y * t - y * (1 - t)
    assert qini_auc_score(y, t, perfect) == pytest.approx(1.0)
    assert qini_auc_score(y, t, -perfect) < -0.3
    rng = np.random.default_rng(0)
    random = np.array([qini_auc_score(y, t, rng.random(len(y))) for _ in range(200)])
    assert abs(random.mean()) < 4 * random.std() / np.sqrt(len(random))
    assert abs(random.mean()) < 0.01


def test_matches_sklift_when_installed():
    sklift = pytest.importorskip("sklift.metrics")
    _, y, t, effect = _experiment(n=2000, seed=3)
    u = np.round(effect + np.random.default_rng(0).normal(0, 0.05, len(y)), 2)  # with ties
    for ours, theirs in zip(qini_curve(y, t, u), sklift.qini_curve(y, u, t)):
        np.testing.assert_allclose(ours, theirs)
    for neg in (True, False):
        assert qini_auc_score(y, t, u, neg) == pytest.approx(sklift.qini_auc_score(y, u, t, neg))
    assert uplift_at_k(y, t, u, 0.3) == pytest.approx(sklift.uplift_at_k(y, u, t, "overall", 0.3))


def test_metrics_refuse_a_treatment_that_is_not_0_1():
    with pytest.raises(InvalidParameter, match="treatment"):
        qini_curve(Y, T * 2, U)
    with pytest.raises(InvalidParameter, match="treatment"):
        qini_auc_score(Y, np.ones(8), U)


# ----------------------------------------------------------------------------- learners
@pytest.fixture(scope="module")
def experiment():
    return _experiment()


@pytest.fixture(scope="module")
def chosen(experiment):
    X, y, t, _ = experiment
    heard: list[str] = []
    fit = fit_uplift(X, y, t, progress=heard.append)
    assert len(heard) == 4 * 5 + 1 and heard[-1] == f"fitting {fit.name} on all rows"
    return fit


def test_cross_fitted_choice_finds_the_heterogeneous_effect(experiment, chosen):
    X, y, t, effect = experiment
    assert set(chosen.scores) == {"t_lightgbm", "t_linear", "x_lightgbm", "x_linear"}
    assert chosen.scores[chosen.name] == max(chosen.scores.values())
    assert (chosen.n_treated, chosen.n_control) == (int(t.sum()), int(len(t) - t.sum()))
    assert chosen.propensity == pytest.approx(t.mean())
    assert chosen.oof.shape == (len(y),) and not np.isnan(chosen.oof).any()
    assert chosen.oof is chosen.oof_all[chosen.name]
    # clearly above random rankings (whose Qini here has a spread of about 0.015)
    rng = np.random.default_rng(1)
    random = np.array([qini_auc_score(y, t, rng.random(len(y))) for _ in range(100)])
    assert chosen.scores[chosen.name] > random.mean() + 4 * random.std()
    assert np.corrcoef(chosen.oof, effect)[0, 1] > 0.5
    # the refitted model ranks segment a first and c last
    u = chosen.model.predict(X)
    by_segment = pd.Series(u).groupby(X.segment.to_numpy()).mean()
    assert by_segment["a"] > by_segment["b"] > by_segment["c"]
    assert uplift_at_k(y, t, chosen.oof, 0.3) > uplift_at_k(y, t, -chosen.oof, 0.3)


def test_pure_noise_scores_about_zero_out_of_fold_but_overfits_in_sample(experiment):
    X, _, t, _ = experiment
    y = (np.random.default_rng(7).random(len(t)) < 0.2).astype(int)
    fit = fit_uplift(X, y, t, candidates={"t": TLearner("lightgbm")}, folds=3)
    in_sample = qini_auc_score(y, t, TLearner("lightgbm").fit(X, y, t).predict(X))
    # a noise model's ranking is still structured (by the features), so its Qini strays
    # further from 0 than a shuffle's (spread about 0.015 here): a few hundredths
    assert abs(fit.scores["t"]) < 0.08
    assert in_sample > 0.3


class _Memoriser(BaseEstimator):
    """Predicts 1 for a row it was trained on and 0 for any other (rows known by id)."""

    def fit(self, X, y, treatment):
        self.seen_ = set(X["row"].tolist())
        return self

    def predict(self, X):
        return np.array([float(r in self.seen_) for r in X["row"]])


def test_each_out_of_fold_prediction_comes_from_a_model_that_never_saw_the_row(experiment):
    X, y, t, _ = experiment
    with_id = X.assign(row=np.arange(len(X)))
    fit = fit_uplift(with_id, y, t, candidates=[_Memoriser()], folds=4)
    assert fit.name == "_Memoriser" and not fit.oof.any()
    assert fit.model.predict(with_id).all()  # the final model did see every row


def test_continuous_outcome_uses_regressors():
    rng = np.random.default_rng(2)
    X, _, t, effect = _experiment(n=4000, seed=2)
    revenue = rng.gamma(2.0, 20.0, len(t)) * (1 + 2 * X.x1.abs()) + t * 300 * effect
    fit = fit_uplift(X, revenue, t, candidates={"t_lightgbm": TLearner("lightgbm"), "t_linear": TLearner("linear")},
                     folds=3)
    assert fit.model.outcome_ == "continuous"
    assert type(fit.model.control_model_).__name__ in ("LGBMRegressor", "Ridge")
    assert np.corrcoef(fit.oof, effect)[0, 1] > 0.3
    assert fit.scores[fit.name] > 0


def test_refusals_name_the_arm_and_the_counts(experiment):
    X, y, t, _ = experiment
    few = np.zeros(len(t), dtype=int)
    few[:30] = 1
    with pytest.raises(InvalidParameter, match=r"30 treated rows .*at least 50 rows in each arm"):
        fit_uplift(X, y, few)
    rare = np.where(t == 1, 0, y)
    rare[np.flatnonzero(t == 1)[:4]] = 1
    with pytest.raises(InvalidParameter, match=r"4 positive .*treated rows.*at least 10 of each"):
        fit_uplift(X, rare, t)
    with pytest.raises(InvalidParameter, match=r"treatment \[.*2.*\]: expected both 0 \(control\) and 1"):
        fit_uplift(X, y, np.where(t == 1, 2, 0))
    with pytest.raises(InvalidParameter, match="treatment"):
        fit_uplift(X, y, np.where(t == 1, "B", "A"))


def test_ate_is_the_difference_of_means_with_an_interval(experiment):
    _, y, t, _ = experiment
    effect = ate(y, t)
    assert effect.per_customer == pytest.approx(y[t == 1].mean() - y[t == 0].mean())
    assert effect.per_customer_low < effect.per_customer < effect.per_customer_high


# ----------------------------------------------------------------------------- contract, features
@pytest.mark.parametrize("learner", [TLearner("linear", random_state=3, threads=2),
                                     XLearner("lightgbm", propensity=0.3, random_state=3)])
def test_clone_and_params_round_trip(learner):
    params = learner.get_params()
    twin = clone(learner)
    assert twin is not learner and twin.get_params() == params
    assert learner.set_params(**params) is learner
    with pytest.raises(NotFitted):
        learner.predict(pd.DataFrame({"x": [1.0]}))


@pytest.mark.parametrize("base", ["lightgbm", "linear"])
@pytest.mark.parametrize("cls", [TLearner, XLearner])
def test_categorical_text_column_with_unseen_and_missing_levels(cls, base):
    X, y, t, _ = _experiment(n=1500, seed=4)
    X = X.assign(when=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(X)) % 30, unit="D"),
                 member=np.arange(len(X)) % 2 == 0)
    model = cls(base).fit(X, y, t)
    new = X.head(4).copy()
    new["segment"] = ["a", "zzz", None, "c"]  # an unseen level and a missing one
    u = model.predict(new)
    assert u.shape == (4,) and u.dtype == np.float64 and np.isfinite(u).all()
    # the same table as model input, or as a bare array, predicts the same
    assert np.allclose(model.predict(X.head(50)), model.predict(feature_matrix(X.head(50))))
    assert np.allclose(model.predict(X.head(50)), model.predict(X.head(50).to_numpy()))
    assert model.predict(X.head(50)).std() > 0


def test_feature_matrix_types():
    frame = pd.DataFrame({
        "n": [1, 2, None], "b": [True, False, True], "o": [True, None, False], "s": ["x", None, "y"],
        "d": pd.to_datetime(["1970-01-02", None, "1970-01-01"]),
    })
    out = feature_matrix(frame)
    assert out.n.dtype == "float64" and out.b.tolist() == [1.0, 0.0, 1.0]
    assert out.o.iloc[0] == 1.0 and np.isnan(out.o.iloc[1])
    assert isinstance(out.s.dtype, pd.CategoricalDtype) and out.d.iloc[0] == 1.0 and np.isnan(out.d.iloc[1])
    pd.testing.assert_frame_equal(feature_matrix(out), out)
